//! Admin credentials, fleets, releases and targets.

use hyper::StatusCode;

use crate::fixture::{BUILDER_TOKEN, DOMAIN, HTTPS_PORT, Stack, VPN_TOKEN};

fn digest(c: char) -> String {
    c.to_string().repeat(64)
}

/// Admin routes want the admin token: none, a wrong one and another service's
/// token are 401 with WWW-Authenticate and a JSON error; the public routes answer.
#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let stack = Stack::start().await;
    for token in [None, Some("wrong"), Some(BUILDER_TOKEN), Some(VPN_TOKEN)] {
        let mut req = stack.get("/v1/fleets");
        if let Some(t) = token {
            req = req.bearer(t);
        }
        let a = req.send().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(a.header("www-authenticate"), "Bearer realm=\"turtle\"");
        assert!(a.error().contains("admin token"), "{}", a.error());
    }
    let a = stack.get("/v1/fleets").admin().send().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), serde_json::json!([]));

    // Unknown routes and methods answer JSON too.
    let a = stack.get("/v1/nothing").send().await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.error().contains("openapi.json"), "{}", a.error());
    let a = stack
        .req(hyper::Method::DELETE, "/v1/fleets")
        .admin()
        .send()
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.error().contains("DELETE"), "{}", a.error());
}

/// The landing page, the CA's root and the OpenAPI document with this stack's URL.
#[tokio::test]
async fn public_pages() {
    let stack = Stack::start().await;
    let a = stack.get("/").send().await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.header("content-type").starts_with("text/html"));
    let api_url = format!("https://api.{DOMAIN}:{HTTPS_PORT}");
    assert!(a.text().contains(&api_url), "{}", a.text());
    assert!(a.text().contains("href=\"/ca.pem\""));

    let a = stack.get("/ca.pem").send().await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.text(), stack.files.root_pem);

    let a = stack.get("/v1/openapi.json").send().await;
    assert_eq!(a.status, StatusCode::OK);
    let doc = a.json();
    assert_eq!(doc["servers"][0]["url"], api_url);
    assert!(doc["paths"]["/v1/registry/token"]["get"].is_object());
}

/// Fleets: create, list, get, duplicate 409, bad name 400, unknown 404.
#[tokio::test]
async fn fleets_are_created_listed_and_unique() {
    let stack = Stack::start().await;
    let a = stack
        .post("/v1/fleets")
        .admin()
        .json(serde_json::json!({"name": "prod"}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let prod = a.json();
    assert_eq!(prod["name"], "prod");
    assert!(prod["id"].is_i64());
    assert!(prod["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(prod["target_release_id"].is_null());
    let staging = stack.fleet("staging").await;

    let a = stack
        .post("/v1/fleets")
        .admin()
        .json(serde_json::json!({"name": "prod"}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.error().contains("\"prod\" exists"), "{}", a.error());

    for bad in [
        serde_json::json!({"name": "Prod!"}),
        serde_json::json!({"nom": "x"}),
    ] {
        let a = stack
            .post("/v1/fleets")
            .admin()
            .json(bad.clone())
            .send()
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(!a.error().is_empty());
    }

    let list = stack.get("/v1/fleets").admin().send().await.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod", "staging"]);

    let a = stack
        .get(&format!("/v1/fleets/{staging}"))
        .admin()
        .send()
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["name"], "staging");
    for missing in ["/v1/fleets/9999", "/v1/fleets/abc"] {
        let a = stack.get(missing).admin().send().await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{missing}");
        assert!(a.error().contains("no fleet"), "{}", a.error());
    }
}

/// Releases need digest-pinned images, count versions per fleet, and the newest
/// is the target unless one is pinned.
#[tokio::test]
async fn releases_are_pinned_by_digest_and_versioned() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let other = stack.fleet("other").await;
    let path = format!("/v1/fleets/{fleet}/releases");
    let compose = "services:\n  web:\n    image: web\n";

    let a = stack
        .post(&path)
        .admin()
        .json(serde_json::json!({"compose": compose, "images": {"web": "registry.turtle.test/prod/web:latest"}}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("not pinned by digest"), "{}", a.error());
    assert_eq!(
        stack.get(&path).admin().send().await.json(),
        serde_json::json!([])
    );

    let image = |c: char| {
        format!(
            "registry.{DOMAIN}:{HTTPS_PORT}/prod/web@sha256:{}",
            digest(c)
        )
    };
    let mut ids = Vec::new();
    for (n, c) in [(1, 'a'), (2, 'b')] {
        let a = stack
            .post(&path)
            .admin()
            .json(serde_json::json!({"compose": compose, "images": {"web": image(c)}}))
            .send()
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
        let r = a.json();
        assert_eq!(r["version"], n);
        assert_eq!(r["fleet_id"], fleet);
        assert_eq!(r["compose"], compose);
        assert_eq!(r["images"]["web"], image(c));
        ids.push(r["id"].as_i64().unwrap());
    }
    let other_release = stack
        .post(&format!("/v1/fleets/{other}/releases"))
        .admin()
        .json(serde_json::json!({"compose": compose, "images": {}}))
        .send()
        .await;
    assert_eq!(other_release.status, StatusCode::CREATED);
    assert_eq!(
        other_release.json()["version"],
        1,
        "versions count per fleet"
    );

    let list = stack.get(&path).admin().send().await.json();
    let versions: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);

    let target = format!("/v1/fleets/{fleet}/target");
    let a = stack
        .put(&target)
        .admin()
        .json(serde_json::json!({"release_id": ids[0]}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["target_release_id"], ids[0]);
    let a = stack
        .put(&target)
        .admin()
        .json(serde_json::json!({"release_id": other_release.json()["id"]}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "another fleet's release");
    let a = stack
        .put(&target)
        .admin()
        .json(serde_json::json!({"release_id": null}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.json()["target_release_id"].is_null());
    let a = stack
        .post("/v1/fleets/9999/releases")
        .admin()
        .json(serde_json::json!({"compose": compose, "images": {}}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
