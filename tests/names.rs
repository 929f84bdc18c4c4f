//! Names that would become paths (issue 11): `PUT
//! /v1/projects/..%2F..%2Fvictim` once made a directory outside the state
//! directory mode 0700 and wrote a secret into it, and the project was
//! stored first, so every repair did it again. Against the real daemon: the
//! API, the CLI and the store refuse a project, service or secret name that
//! is not a name, and nothing outside the state directory is created or
//! changed, then or at any later repair.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use turtle_e2e::{Env, IMAGE, wait_until};

/// A project whose service `service` lists the secret `token`, as the API
/// takes it.
fn project_json(name: &str, service: &str) -> String {
    serde_json::json!({
        "name": name,
        "working_dir": "/tmp",
        "services": {service: {
            "image": IMAGE,
            "labels": {"io.turtle.secrets": "token"},
        }},
    })
    .to_string()
}

/// What the attack must not change: the victim's mode, its files and their
/// contents; and that `absent` is still absent.
fn snapshot(victim: &Path, absent: &Path) -> String {
    let mode = std::fs::metadata(victim).unwrap().permissions().mode() & 0o7777;
    let mut files: Vec<String> = std::fs::read_dir(victim)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            format!("{}={text}", e.file_name().to_string_lossy())
        })
        .collect();
    files.sort();
    format!(
        "mode {mode:o}, files {files:?}, absent exists: {}",
        absent.exists()
    )
}

/// The projects the daemon keeps alive (other projects on the shared
/// engine are listed too, as not applied here).
fn applied(env: &Env) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_str(&env.api_get("/v1/projects")).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|p| p["applied"] == true)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn failed_with(out: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(message), "{stderr}");
}

#[test]
fn a_name_that_walks_out_of_the_state_dir_is_refused_by_api_cli_and_store() {
    let mut env = Env::new("names");
    let dir = env.dir.path().to_path_buf();
    // Secrets go to STATE_DIR/secrets/<project>: two `..` reach the test's
    // directory, where the victim waits with a known mode and file, next to
    // a name that does not exist.
    let victim = dir.join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::write(victim.join("keep"), "the victim's own").unwrap();
    let absent = dir.join("absent");
    let before = snapshot(&victim, &absent);
    let state = env.state_dir();
    let untouched = |when: &str| {
        assert_eq!(snapshot(&victim, &absent), before, "{when}");
        assert!(!state.join("secrets").exists(), "{when}");
        assert!(!state.join("ca/leaves").exists(), "{when}");
    };
    env.start_daemon();

    // The API: the attack of the issue, byte for byte, and its variants.
    for (method, path, body, message) in [
        (
            "PUT",
            "/v1/projects/..%2F..%2Fvictim".to_string(),
            project_json("ok", "web"),
            r#"invalid project name \"../../victim\""#,
        ),
        (
            "PUT",
            "/v1/projects/..%2F..%2Fabsent".to_string(),
            project_json("ok", "web"),
            r#"invalid project name \"../../absent\""#,
        ),
        (
            "PUT",
            "/v1/projects/..%2F..%2F..%2Ftmp%2Fvictim".to_string(),
            project_json("ok", "web"),
            r#"invalid project name \"../../../tmp/victim\""#,
        ),
        (
            "PUT",
            format!("/v1/projects/{}", env.project),
            project_json(&env.project, "../../victim"),
            r#"invalid service name \"../../victim\""#,
        ),
        (
            "POST",
            "/v1/projects/..%2F..%2Fvictim/plan".to_string(),
            project_json("ok", "web"),
            "invalid project name",
        ),
        (
            "DELETE",
            "/v1/projects/..%2F..%2Fvictim".to_string(),
            String::new(),
            "invalid project name",
        ),
        (
            "POST",
            format!(
                "/v1/projects/{}/services/..%2F..%2Fvictim/stop",
                env.project
            ),
            String::new(),
            r#"invalid service name \"../../victim\""#,
        ),
    ] {
        let (status, answer) = env.api_request(method, &path, &body);
        assert_eq!(status, 422, "{method} {path}: {answer}");
        assert!(answer.contains(message), "{method} {path}: {answer}");
        assert!(
            answer.contains("letters, digits"),
            "{method} {path}: the rule is not named: {answer}"
        );
    }
    untouched("after the API requests");
    assert_eq!(applied(&env), Vec::<String>::new());

    // The CLI: exit 2 with the same message, before reaching the daemon.
    let up = env.command(&["up", "-p", "../../victim"]).output().unwrap();
    failed_with(&up, 2, r#"invalid project name "../../victim""#);
    let env_name = env
        .command(&["down"])
        .env("COMPOSE_PROJECT_NAME", "../../victim")
        .output()
        .unwrap();
    failed_with(
        &env_name,
        2,
        r#"COMPOSE_PROJECT_NAME: invalid project name "../../victim""#,
    );
    let secret = env
        .command(&["secret", "-p", "ok", "../../victim/keep"])
        .output()
        .unwrap();
    failed_with(&secret, 2, r#""../../victim/keep" is not a secret name"#);
    untouched("after the CLI");

    // The store: a project an older Turtle stored before it checked names
    // (the attack's leftover) is skipped at every repair, logged, and the
    // daemon keeps running.
    env.stop_daemon();
    let db = rusqlite::Connection::open(env.state_dir().join("turtle.db")).unwrap();
    for (key, json) in [
        ("../../victim", project_json("../../victim", "web")),
        ("svc", project_json("svc", "../../absent")),
    ] {
        db.execute(
            "INSERT INTO projects (name, project, applied_at) VALUES (?1, ?2, 0)",
            rusqlite::params![key, json],
        )
        .unwrap();
    }
    drop(db);
    env.start_daemon();
    wait_until("two resyncs", Duration::from_secs(30), || {
        env.resyncs() >= 2
    });
    untouched("after the daemon's repairs");
    let log = env.daemon_log();
    assert!(
        log.contains(r#"skipping a stored project: stored project "../../victim" is unreadable"#)
            && log.contains(r#"invalid service name "../../absent""#),
        "{log}"
    );
    assert_eq!(applied(&env), Vec::<String>::new());
}
