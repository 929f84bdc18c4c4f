//! The runtime side of compose's newer keys against the real engine, through
//! the supervisor: a content-backed secret read inside a running container
//! with its mode and owner, `post_start` and `pre_stop` hooks whose effects
//! show, and `pull_policy: never` / `build` (no registry is reachable here;
//! `always` and `every_<d>` are tested on the fake, in
//! `src/supervisor/keys_tests.rs`).
//!
//! Like `docker_engine.rs`: every container runs `turtle-test-busybox:latest`
//! (built by `images/test-busybox/build.sh`), each test uses a unique project
//! and removes its containers, networks and images in `Drop`, even when it
//! fails, and waits poll with deadlines.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use turtle_compose::{
    Build, FileObject, FileRef, Hook, Mount, MountKind, Project, PullPolicy, Service,
};
use turtle_engine::docker::Docker;
use turtle_engine::{Engine, ExecSpec};
use turtle_reconcile::names;
use turtle_runtime::store::Store;
use turtle_runtime::supervisor::{Config, Supervisor, UpOptions};

use common::{IMAGE, test_image, unique};

/// Removes a project's containers and network, and the given images, even
/// when the test panics.
struct Cleanup {
    project: String,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("docker")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        let filter = format!("label={}={}", names::PROJECT, self.project);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                quiet(&["rm", "-f", "-v", id]);
            }
        }
        quiet(&["network", "rm", &format!("{}_default", self.project)]);
        for i in &self.images {
            quiet(&["rmi", "-f", i]);
        }
    }
}

struct Env {
    sup: Arc<Supervisor<Docker>>,
    engine: Arc<Docker>,
    _state: tempfile::TempDir,
    _cleanup: Cleanup,
}

fn env(project: &str, images: Vec<String>) -> Env {
    let state = tempfile::tempdir().unwrap();
    let engine = Arc::new(Docker::connect(None).expect("docker socket"));
    let store = Arc::new(Store::open(state.path()).unwrap());
    Env {
        sup: Supervisor::new(engine.clone(), store, Config::default()),
        engine,
        _state: state,
        _cleanup: Cleanup {
            project: project.to_string(),
            images,
        },
    }
}

fn sleeper(image: &str) -> Service {
    Service {
        image: Some(image.to_string()),
        command: Some(vec!["sleep".into(), "3600".into()]),
        // sleep as PID 1 ignores SIGTERM: stop at once.
        stop_signal: Some("SIGKILL".into()),
        ..turtle_reconcile::test_support::service(image)
    }
}

fn hook(script: &str) -> Hook {
    Hook {
        command: vec!["sh".into(), "-c".into(), script.into()],
        ..Default::default()
    }
}

/// Runs `sh -c script` in the container and returns its output.
async fn sh(engine: &Docker, container: &str, script: &str) -> String {
    let out = engine
        .exec(
            container,
            &ExecSpec {
                command: vec!["sh".into(), "-c".into(), format!("{{ {script}; }} 1>&2")],
                ..Default::default()
            },
        )
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 0, "{script}: {}", out.output_tail);
    out.output_tail
}

#[tokio::test]
async fn a_content_secret_is_read_inside_with_its_mode_and_owner_and_hooks_run() {
    let image = test_image();
    let name = unique("keys");
    let env = env(&name, vec![]);
    let host_dir = tempfile::tempdir().unwrap();

    let mut web = sleeper(image);
    web.secrets = vec![FileRef {
        source: "token".into(),
        target: "/run/secrets/token".into(),
        mode: Some(0o440),
        uid: Some("1000".into()),
        gid: Some("1001".into()),
    }];
    web.configs = vec![FileRef {
        source: "motd".into(),
        target: "/etc/motd".into(),
        ..Default::default()
    }];
    web.volumes = vec![Mount {
        kind: MountKind::Bind,
        source: Some(host_dir.path().display().to_string()),
        target: "/out".into(),
        ..Default::default()
    }];
    web.post_start = vec![hook("echo \"started as $WHO\" > /tmp/post_start")];
    web.post_start[0]
        .environment
        .insert("WHO".into(), "hook".into());
    web.pre_stop = vec![hook("cat /run/secrets/token > /out/pre_stop")];
    let mut p = turtle_reconcile::test_support::project(&name, vec![("web", web)]);
    let with_token = |p: &mut Project, token: &str| {
        p.secrets.insert(
            "token".into(),
            FileObject {
                content: Some(token.into()),
                environment: Some("TOKEN".into()),
                ..Default::default()
            },
        );
    };
    with_token(&mut p, "s3cret-1");
    p.configs.insert(
        "motd".into(),
        FileObject {
            content: Some("hello\n".into()),
            ..Default::default()
        },
    );

    env.sup
        .up(&p, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    let container = format!("{name}-web-1");
    assert_eq!(
        sh(
            &env.engine,
            &container,
            "stat -c '%a %u %g' /run/secrets/token"
        )
        .await,
        "440 1000 1001"
    );
    assert_eq!(
        sh(&env.engine, &container, "cat /run/secrets/token").await,
        "s3cret-1"
    );
    assert_eq!(
        sh(
            &env.engine,
            &container,
            "stat -c '%a %u %g' /etc/motd; cat /etc/motd"
        )
        .await,
        "444 0 0\nhello",
        "a config's defaults: 0444, root"
    );
    assert_eq!(
        sh(&env.engine, &container, "cat /tmp/post_start").await,
        "started as hook"
    );
    let label = env
        .engine
        .inspect_container(&container)
        .await
        .unwrap()
        .labels[names::CONFIG_HASH]
        .clone();
    assert!(!label.contains("s3cret"));

    // A new content recreates the container; the old one's pre_stop ran first.
    let first_id = env.engine.inspect_container(&container).await.unwrap().id;
    with_token(&mut p, "s3cret-2");
    env.sup
        .up(&p, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    let second = env.engine.inspect_container(&container).await.unwrap();
    assert_ne!(second.id, first_id, "a new content must recreate");
    assert_eq!(
        sh(&env.engine, &container, "cat /run/secrets/token").await,
        "s3cret-2"
    );
    let pre_stop = host_dir.path().join("pre_stop");
    assert_eq!(std::fs::read_to_string(&pre_stop).unwrap(), "s3cret-1");

    // down runs pre_stop before it stops the container.
    std::fs::remove_file(&pre_stop).unwrap();
    env.sup.down(&p.name, false).await.unwrap();
    assert_eq!(std::fs::read_to_string(&pre_stop).unwrap(), "s3cret-2");
}

#[tokio::test]
async fn pull_policy_never_refuses_a_missing_image_and_runs_a_present_one() {
    let image = test_image();
    let name = unique("never");
    let env = env(&name, vec![]);
    let missing = format!("{name}-absent:1");
    let mut s = sleeper(&missing);
    s.pull_policy = Some(PullPolicy::Never);
    let p = turtle_reconcile::test_support::project(&name, vec![("web", s)]);
    let e = env
        .sup
        .up(&p, &UpOptions::default(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pull_policy: never") && e.contains(&missing),
        "{e}"
    );

    let mut s = sleeper(image);
    s.pull_policy = Some(PullPolicy::Never);
    let p = turtle_reconcile::test_support::project(&name, vec![("web", s)]);
    env.sup
        .up(&p, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    env.sup.down(&p.name, false).await.unwrap();
}

fn context(dir: &Path, file: &str) {
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY file /file\n"),
    )
    .unwrap();
    std::fs::write(dir.join("file"), file).unwrap();
}

#[tokio::test]
async fn pull_policy_build_builds_at_every_up_and_recreates_only_for_a_new_image() {
    test_image();
    let name = unique("build");
    let tag = format!("{name}-app:1");
    let env = env(&name, vec![tag.clone()]);
    let ctx = tempfile::tempdir().unwrap();
    context(ctx.path(), "one");
    let mut s = sleeper(&tag);
    s.build = Some(Build {
        context: ctx.path().to_path_buf(),
        ..Default::default()
    });
    s.pull_policy = Some(PullPolicy::Build);
    let p = turtle_reconcile::test_support::project(&name, vec![("web", s)]);
    let container = format!("{name}-web-1");
    let builds = std::sync::Mutex::new(0);
    let count_builds = |e: turtle_runtime::apply::Event| {
        if let turtle_runtime::apply::Event::Done { what, .. } = e
            && what.starts_with("build image")
        {
            *builds.lock().unwrap() += 1;
        }
    };

    env.sup
        .up(&p, &UpOptions::default(), &count_builds)
        .await
        .unwrap();
    let first = env.engine.inspect_container(&container).await.unwrap().id;
    assert_eq!(sh(&env.engine, &container, "cat /file").await, "one");

    // Unchanged source: built again (from the cache), not recreated.
    env.sup
        .up(&p, &UpOptions::default(), &count_builds)
        .await
        .unwrap();
    assert_eq!(
        *builds.lock().unwrap(),
        2,
        "pull_policy: build builds at every up"
    );
    assert_eq!(
        env.engine.inspect_container(&container).await.unwrap().id,
        first
    );

    // A changed source: a new image, a new container.
    context(ctx.path(), "two");
    env.sup
        .up(&p, &UpOptions::default(), &count_builds)
        .await
        .unwrap();
    assert_ne!(
        env.engine.inspect_container(&container).await.unwrap().id,
        first
    );
    assert_eq!(sh(&env.engine, &container, "cat /file").await, "two");
    env.sup.down(&p.name, false).await.unwrap();
}
