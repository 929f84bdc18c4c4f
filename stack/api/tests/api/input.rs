//! Bad input: NUL characters, registry scopes outside Distribution's grammar,
//! labels with control characters; and no internal message ever reaches a
//! caller.

use hyper::{Method, StatusCode};
use turtle_fleet_api::{Credentials, Registration, RegistryTokenQuery};

use crate::fixture::{ADMIN_TOKEN, Captured, DOMAIN, HTTPS_PORT, Stack};

/// What PostgreSQL or a library would say; none of it may reach a caller.
const INTERNAL_WORDS: &[&str] = &[
    "db error",
    "ERROR:",
    "invalid byte sequence",
    "unsupported Unicode escape",
    "relation",
    "SQLSTATE",
    "PostgreSQL",
    "tokio",
];

fn assert_nothing_internal(text: &str) {
    for word in INTERNAL_WORDS {
        assert!(!text.contains(word), "{word:?} in {text:?}");
    }
}

/// A NUL (`\u0000`) in any JSON string, key or value, is 400 naming it, on
/// every route that takes a body, and nothing is stored.
#[tokio::test]
async fn nul_characters_are_refused_with_400() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let key = stack.provisioning_key(fleet, 3600).await;
    let digest = "b".repeat(64);
    let nul = r"\u0000";
    let cases: Vec<(Method, String, String, Option<&str>)> = vec![
        (
            Method::POST,
            "/v1/fleets".into(),
            format!(r#"{{"name": "a{nul}"}}"#),
            Some(ADMIN_TOKEN),
        ),
        (
            Method::POST,
            format!("/v1/fleets/{fleet}/provisioning-keys"),
            format!(r#"{{"description": "key {nul}"}}"#),
            Some(ADMIN_TOKEN),
        ),
        (
            Method::POST,
            "/v1/devices/register".into(),
            format!(
                r#"{{"provisioning_key": "{}", "name": "pi{nul}"}}"#,
                key.key
            ),
            None,
        ),
        (
            Method::POST,
            format!("/v1/fleets/{fleet}/releases"),
            format!(
                r#"{{"compose": "services: {{}}{nul}", "images": {{"web": "r/prod/web@sha256:{digest}"}}}}"#
            ),
            Some(ADMIN_TOKEN),
        ),
        (
            Method::POST,
            format!("/v1/fleets/{fleet}/releases"),
            format!(
                r#"{{"compose": "services: {{}}", "images": {{"w{nul}": "r/prod/web@sha256:{digest}"}}}}"#
            ),
            Some(ADMIN_TOKEN),
        ),
        (
            Method::PUT,
            "/v1/device/state".into(),
            format!(r#"{{"services": {{"web": {{"status": "run{nul}ning"}}}}}}"#),
            Some(&device.device_key),
        ),
        (
            Method::PUT,
            "/v1/device/state".into(),
            format!(r#"{{"k{nul}": 1}}"#),
            Some(&device.device_key),
        ),
        (
            Method::POST,
            "/v1/device/logs".into(),
            format!(r#"[{{"message": "hello{nul}"}}]"#),
            Some(&device.device_key),
        ),
        (
            Method::POST,
            "/v1/device/logs".into(),
            format!(r#"[{{"message": "hello", "service": "w{nul}"}}]"#),
            Some(&device.device_key),
        ),
    ];
    for (method, path, body, token) in cases {
        let mut req = stack.req(method.clone(), &path).json_text(&body);
        if let Some(token) = token {
            req = req.bearer(token);
        }
        let a = req.send().await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method} {path} {body}");
        assert_eq!(
            a.error(),
            "the body holds a NUL character (\\u0000) in a string: remove it (the api stores \
             no NUL in text)"
        );
        assert_nothing_internal(&a.text());
    }
    // Nothing of it was stored: the key is still unused, no release, no state.
    let admin = stack.admin();
    let keys = admin.provisioning_keys(fleet).await.unwrap();
    assert_eq!(keys.iter().find(|k| k.id == key.id).unwrap().uses, 0);
    assert!(admin.releases(fleet).await.unwrap().is_empty());
    assert!(admin.device(&device.uuid).await.unwrap().state.is_none());
    assert_eq!(admin.fleets().await.unwrap().len(), 1);
    // A backslash followed by "u0000" is text, not a NUL.
    stack
        .req(Method::PUT, "/v1/device/state")
        .bearer(&device.device_key)
        .json_text(r#"{"path": "C:\\u0000"}"#)
        .send()
        .await;
    let state = admin.device(&device.uuid).await.unwrap().state.unwrap();
    assert_eq!(state["path"], "C:\\u0000");
}

/// A fault inside the api (here a table gone) is 500 with an incident id; what
/// PostgreSQL said is in the log under that id, not in the answer.
#[tokio::test]
async fn an_internal_error_is_logged_not_sent() {
    let (log, _guard) = Captured::install();
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    stack
        .pg
        .client()
        .await
        .batch_execute("ALTER TABLE device_logs RENAME TO device_logs_gone")
        .await
        .unwrap();
    let e = stack
        .admin()
        .device_logs(&device.uuid, &Default::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500), "{e}");
    let message = e.api_message().unwrap();
    assert_nothing_internal(message);
    assert!(!message.contains("device_logs"), "{message}");
    let incident = message
        .strip_prefix("internal error (incident ")
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("{message}"));
    assert_eq!(incident.len(), 12);
    let logged = log.text();
    let line = logged
        .lines()
        .find(|l| l.contains(incident))
        .unwrap_or_else(|| panic!("incident {incident} is not in the log: {logged}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("\"device_logs\" does not exist"), "{line}");
}

/// Scopes are parsed by Distribution's grammar: names that could be read
/// another way are 400 for every caller, and nothing is granted.
#[tokio::test]
async fn registry_scopes_outside_the_grammar_are_refused() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("fleet-a").await;
    stack.fleet("fleet-b").await;
    let device = stack.device(fleet, None).await;
    let query = |scope: &str| RegistryTokenQuery {
        service: Some(format!("registry.{DOMAIN}:{HTTPS_PORT}")),
        scopes: vec![scope.to_string()],
        account: None,
    };
    for caller in [
        Credentials::device(&device),
        Credentials::Admin(ADMIN_TOKEN.into()),
    ] {
        let client = stack.calling(caller);
        for scope in [
            "repository:fleet-a/../fleet-b/db:pull",
            "repository:fleet-a/x:fleet-b/db:pull",
            "repository:fleet-a/./db:pull",
            "repository:fleet-a//db:pull",
            "repository:registry.turtle.test:8443/fleet-b/db:pull",
            "repository:fleet-a/DB:pull",
        ] {
            let e = client.registry_token(&query(scope)).await.unwrap_err();
            assert_eq!(e.status(), Some(400), "{scope}");
            let message = e.api_message().unwrap();
            assert!(message.contains("is not a repository name"), "{message}");
            assert!(message.contains(scope), "{message}");
        }
    }
    // The device still gets what it may have.
    let token = stack
        .as_device(&device)
        .registry_token(&query("repository:fleet-a/web:pull"))
        .await
        .unwrap();
    assert_eq!(token.expires_in, 60);
}

/// A device name holding escape sequences or other control characters is 400.
#[tokio::test]
async fn device_names_hold_no_control_characters() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let key = stack.provisioning_key(fleet, 3600).await;
    let e = stack
        .api
        .register(&Registration {
            name: Some("pi\u{1b}[2J\u{1b}]0;owned\u{7}".into()),
            provisioning_key: key.key.clone(),
            wireguard_public_key: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(
        e.api_message()
            .unwrap()
            .starts_with("name holds a control character (U+001B)"),
        "{e}"
    );
    let e = stack
        .api
        .register(&Registration {
            name: Some("x".repeat(254)),
            provisioning_key: key.key.clone(),
            wireguard_public_key: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    // The refusals used nothing: the key registers its one device.
    stack
        .api
        .register(&Registration {
            name: Some("pi in the hall".into()),
            provisioning_key: key.key,
            wireguard_public_key: None,
            ..Default::default()
        })
        .await
        .unwrap();
}
