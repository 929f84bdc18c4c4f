//! Container output of a project as prefixed lines (`web-1 | hello`), for
//! `turtle logs` and the API's log route.

use futures_util::stream::{self, StreamExt};

use turtle_engine::{BoxStream, Engine, EngineError};
use turtle_reconcile::names;
use turtle_reconcile::observe::number_of;

/// Lines of output of the project's containers (of `services` only, when not
/// empty; else of every service but the `unattached` ones, compose's
/// `attach: false`), merged as they come. With `follow`, the stream lasts as
/// long as any of the containers runs.
pub async fn lines<E: Engine>(
    engine: &E,
    project: &str,
    services: &[String],
    unattached: &[String],
    follow: bool,
    tail: Option<u64>,
) -> Result<BoxStream<Result<String, EngineError>>, EngineError> {
    let mut containers = engine
        .list_containers(&names::project_filter(project))
        .await?;
    containers.retain(|c| {
        let service = c.labels.get(names::SERVICE);
        if services.is_empty() {
            !service.is_some_and(|s| unattached.contains(s))
        } else {
            service.is_some_and(|s| services.contains(s))
        }
    });
    containers.sort_by_key(|c| (c.labels.get(names::SERVICE).cloned(), number_of(c)));
    let streams = containers.into_iter().map(|c| {
        let prefix = format!(
            "{}-{}",
            c.labels
                .get(names::SERVICE)
                .map(String::as_str)
                .unwrap_or("?"),
            number_of(&c)
        );
        let mut pending = String::new();
        engine
            .logs(&c.id, follow, tail)
            .flat_map(move |chunk| {
                let out: Vec<Result<String, EngineError>> = match chunk {
                    Err(e) => vec![Err(e)],
                    Ok(chunk) => {
                        pending.push_str(&String::from_utf8_lossy(&chunk.bytes));
                        let mut lines = Vec::new();
                        while let Some(i) = pending.find('\n') {
                            let line: String = pending.drain(..=i).collect();
                            lines.push(Ok(format!(
                                "{prefix} | {}",
                                line.trim_end_matches(['\n', '\r'])
                            )));
                        }
                        lines
                    }
                };
                stream::iter(out)
            })
            .boxed()
    });
    Ok(stream::select_all(streams).boxed())
}

/// The services of a project whose output `turtle logs` leaves out unless
/// named (`attach: false`).
pub fn unattached(project: &turtle_compose::Project) -> Vec<String> {
    project
        .services
        .iter()
        .filter(|(_, s)| s.attach == Some(false))
        .map(|(n, _)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use turtle_engine::fake::FakeEngine;
    use turtle_reconcile::test_support::{project, service};

    use crate::store::Store;
    use crate::supervisor::{Config, Supervisor, UpOptions};

    use super::*;

    #[tokio::test]
    async fn attach_false_leaves_a_service_out_unless_it_is_named() {
        let mut quiet = service("busybox");
        quiet.attach = Some(false);
        let p = project("demo", vec![("web", service("busybox")), ("quiet", quiet)]);
        assert_eq!(unattached(&p), ["quiet"]);
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(FakeEngine::new());
        engine.add_image("busybox");
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let sup = Supervisor::new(engine.clone(), store, Config::default());
        sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
        let logged = |services: Vec<String>| {
            let sup = sup.clone();
            let engine = engine.clone();
            async move {
                engine.clear_calls();
                let _ = sup
                    .log_lines(&p_name(), &services, false, None)
                    .await
                    .unwrap();
                let mut ids: Vec<String> = engine
                    .calls()
                    .into_iter()
                    .filter_map(|c| c.strip_prefix("logs ").map(str::to_string))
                    .collect();
                ids.sort();
                ids
            }
        };
        let id_of = |name: &str| {
            engine
                .containers()
                .into_iter()
                .find(|c| c.summary.name == name)
                .unwrap()
                .summary
                .id
        };
        assert_eq!(logged(vec![]).await, [id_of("demo-web-1")]);
        assert_eq!(logged(vec!["quiet".into()]).await, [id_of("demo-quiet-1")]);
    }

    fn p_name() -> turtle_compose::ProjectName {
        "demo".parse().unwrap()
    }
}
