//! Container output of a project as prefixed lines (`web-1 | hello`), for
//! `turtle logs` and the API's log route.

use futures_util::stream::{self, StreamExt};

use turtle_engine::{BoxStream, Engine, EngineError};
use turtle_reconcile::names;
use turtle_reconcile::observe::number_of;

/// Lines of output of the project's containers (of `services` only, when not
/// empty), merged as they come. With `follow`, the stream lasts as long as
/// any of the containers runs.
pub async fn lines<E: Engine>(
    engine: &E,
    project: &str,
    services: &[String],
    follow: bool,
    tail: Option<u64>,
) -> Result<BoxStream<Result<String, EngineError>>, EngineError> {
    let mut containers = engine
        .list_containers(&names::project_filter(project))
        .await?;
    containers.retain(|c| {
        services.is_empty()
            || c.labels
                .get(names::SERVICE)
                .is_some_and(|s| services.contains(s))
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
