//! The runtime side of compose's newer keys on the recording fake: copied
//! secrets, lifecycle hooks, `pull_policy`. What the engine shows is tested
//! against the real engine in `tests/docker_compose_keys.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use turtle_compose::{FileObject, FileRef, Hook, Project, PullPolicy, Service};
use turtle_engine::fake::FakeEngine;
use turtle_engine::{Engine, ExecOutcome, State};
use turtle_reconcile::test_support::{project, service};

use super::{Config, Supervisor, UpOptions};
use crate::store::Store;

fn supervisor(engine: &Arc<FakeEngine>) -> (Arc<Supervisor<FakeEngine>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    (
        Supervisor::new(engine.clone(), store, Config::default()),
        dir,
    )
}

fn hook(command: &str) -> Hook {
    Hook {
        command: vec!["sh".into(), "-c".into(), command.into()],
        ..Default::default()
    }
}

fn with_secret(content: &str) -> Project {
    let mut s = service("busybox");
    s.secrets = vec![FileRef {
        source: "token".into(),
        target: "/run/secrets/token".into(),
        mode: Some(0o400),
        uid: Some("1000".into()),
        ..Default::default()
    }];
    let mut p = project("demo", vec![("web", s)]);
    p.secrets.insert(
        "token".into(),
        FileObject {
            content: Some(content.into()),
            ..Default::default()
        },
    );
    p
}

fn count(engine: &FakeEngine, call: &str) -> usize {
    engine
        .calls()
        .iter()
        .filter(|c| c.split(' ').next() == Some(call))
        .count()
}

#[tokio::test]
async fn a_content_backed_secret_is_copied_before_start_and_a_new_content_recreates() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("busybox");
    let (sup, _dir) = supervisor(&engine);
    sup.up(&with_secret("one"), &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    let calls: Vec<String> = engine
        .mutating_calls()
        .into_iter()
        .map(|c| c.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        calls,
        [
            "create_network",
            "create_container",
            "upload_files",
            "start_container"
        ],
        "copied between create and start"
    );
    let uploads = engine.uploads();
    assert_eq!(uploads.len(), 1);
    let f = &uploads[0].1;
    assert_eq!(
        (f.path.as_str(), f.content.as_slice(), f.mode, f.uid, f.gid),
        ("/run/secrets/token", b"one".as_slice(), 0o400, 1000, 0)
    );

    engine.clear_calls();
    sup.up(&with_secret("one"), &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    assert!(engine.mutating_calls().is_empty(), "{:?}", engine.calls());

    sup.up(&with_secret("two"), &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        count(&engine, "create_container"),
        1,
        "a new content recreates"
    );
    assert_eq!(engine.uploads().last().unwrap().1.content, b"two");
    let labels = &engine.containers()[0].summary.labels;
    assert!(labels.values().all(|v| !v.contains("two")), "{labels:?}");
}

#[tokio::test]
async fn a_failing_post_start_hook_fails_up_and_leaves_the_container_running() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("busybox");
    engine.exec_result(
        "migrate",
        ExecOutcome {
            exit_code: 3,
            output_tail: "no database".into(),
            ..Default::default()
        },
    );
    let (sup, _dir) = supervisor(&engine);
    let mut s = service("busybox");
    s.post_start = vec![hook("echo first"), hook("migrate"), hook("never run")];
    let p = project("demo", vec![("web", s)]);
    let e = sup
        .up(&p, &UpOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("post_start") && e.contains("status 3") && e.contains("no database"),
        "{e}"
    );
    let execs: Vec<String> = engine
        .execs()
        .iter()
        .map(|(_, x)| x.command[2].clone())
        .collect();
    assert_eq!(
        execs,
        ["echo first", "migrate"],
        "in order, stopping at the failure"
    );
    assert_eq!(engine.containers()[0].summary.state, State::Running);
    let events = sup.store().recent_events(10).unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.kind == "apply-failed" && ev.message.contains("no database")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_failing_pre_stop_hook_is_recorded_and_the_stop_goes_on() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("busybox");
    engine.exec_result(
        "flush",
        ExecOutcome {
            exit_code: 1,
            output_tail: "disk full".into(),
            ..Default::default()
        },
    );
    let (sup, _dir) = supervisor(&engine);
    let mut s = service("busybox");
    s.pre_stop = vec![hook("flush"), hook("goodbye")];
    let p = project("demo", vec![("web", s)]);
    sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
    sup.down(&p.name, false).await.unwrap();
    assert!(engine.list_containers(&[]).await.unwrap().is_empty());
    assert_eq!(engine.execs().len(), 2, "every pre_stop hook runs");
    let calls = engine.calls();
    let exec = calls.iter().position(|c| c.starts_with("exec")).unwrap();
    let stop = calls
        .iter()
        .position(|c| c.starts_with("stop_container"))
        .unwrap();
    assert!(exec < stop, "{calls:?}");
    let events = sup.store().recent_events(10).unwrap();
    assert!(
        events
            .iter()
            .any(|ev| ev.kind == "hook-failed" && ev.message.contains("disk full")),
        "{events:?}"
    );
}

fn with_policy(policy: PullPolicy) -> Project {
    let s = Service {
        pull_policy: Some(policy),
        ..service("app:1")
    };
    project("demo", vec![("web", s)])
}

#[tokio::test]
async fn pull_policy_always_pulls_at_every_up_and_recreates_only_for_a_new_image() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1");
    let (sup, _dir) = supervisor(&engine);
    let p = with_policy(PullPolicy::Always);
    sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(count(&engine, "pull_image"), 1);
    // The fake's second pull finds the same image: nothing is recreated.
    engine.clear_calls();
    sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(count(&engine, "pull_image"), 1);
    assert_eq!(count(&engine, "tag_image"), 1, "the pull is stamped");
    assert_eq!(
        count(&engine, "create_container"),
        0,
        "{:?}",
        engine.calls()
    );
    // A repair never pulls.
    engine.clear_calls();
    sup.repair(&p.name).await.unwrap();
    assert_eq!(count(&engine, "pull_image"), 0);
}

#[tokio::test]
async fn pull_policy_every_pulls_an_image_older_than_its_period() {
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("app:1");
    let (sup, _dir) = supervisor(&engine);
    let day = turtle_compose::Duration::from_secs(24 * 3600);
    let p = with_policy(PullPolicy::Every(day));
    engine.set_image_refreshed("app:1", SystemTime::now() - Duration::from_secs(3600));
    sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(count(&engine, "pull_image"), 0, "pulled an hour ago");
    engine.set_image_refreshed("app:1", SystemTime::now() - Duration::from_secs(25 * 3600));
    sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(count(&engine, "pull_image"), 1, "pulled 25 hours ago");
    // The stamp of that pull makes the image fresh again.
    sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(count(&engine, "pull_image"), 1);
}

#[tokio::test]
async fn pull_policy_never_refuses_a_missing_image_without_pulling() {
    let engine = Arc::new(FakeEngine::new());
    let (sup, _dir) = supervisor(&engine);
    let p = with_policy(PullPolicy::Never);
    let e = sup
        .up(&p, &UpOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pull_policy: never") && e.contains("app:1"),
        "{e}"
    );
    assert_eq!(count(&engine, "pull_image"), 0);
    assert!(
        sup.store().project(&p.name).unwrap().is_none(),
        "not adopted"
    );
}
