//! Admin credentials, fleets, releases and targets.

use std::collections::BTreeMap;

use hyper::StatusCode;
use turtle_fleet_api::{Credentials, NewFleet, NewRelease, SetTarget};

use crate::fixture::{BUILDER_TOKEN, DOMAIN, HTTPS_PORT, Stack, VPN_TOKEN};

fn digest(c: char) -> String {
    c.to_string().repeat(64)
}

fn new_fleet(name: &str) -> NewFleet {
    NewFleet {
        name: name.parse().unwrap(),
    }
}

/// Admin routes want the admin token: none, a wrong one and another service's
/// token are 401 with WWW-Authenticate and a JSON error; the public routes answer.
#[tokio::test]
async fn admin_routes_need_the_admin_token() {
    let stack = Stack::start().await;
    for credentials in [
        Credentials::None,
        Credentials::Admin("wrong".into()),
        Credentials::Builder(BUILDER_TOKEN.into()),
        Credentials::Vpn(VPN_TOKEN.into()),
    ] {
        let e = stack
            .calling(credentials.clone())
            .fleets()
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(401), "{credentials:?}");
        assert_eq!(e.challenge(), Some("Bearer realm=\"turtle\""));
        assert!(e.api_message().unwrap().contains("admin token"), "{e}");
    }
    assert_eq!(stack.admin().fleets().await.unwrap(), []);

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
    let page = stack.api.landing_page().await.unwrap();
    assert!(page.content_type.unwrap().starts_with("text/html"));
    let api_url = format!("https://api.{DOMAIN}:{HTTPS_PORT}");
    assert!(page.text.contains(&api_url), "{}", page.text);
    assert!(page.text.contains("href=\"/ca.pem\""));

    assert_eq!(stack.api.ca_pem().await.unwrap(), stack.files.root_pem);

    let doc = stack.api.openapi().await.unwrap();
    assert_eq!(doc["servers"][0]["url"], api_url);
    assert!(doc["paths"]["/v1/registry/token"]["get"].is_object());
}

/// Fleets: create, list, get, duplicate 409, bad name 400, unknown 404.
#[tokio::test]
async fn fleets_are_created_listed_and_unique() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let prod = admin.create_fleet(&new_fleet("prod")).await.unwrap();
    assert_eq!(prod.name, "prod");
    assert!(prod.created_at.ends_with('Z'));
    assert!(prod.target_release_id.is_none());
    let staging = stack.fleet("staging").await;

    let e = admin.create_fleet(&new_fleet("prod")).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert!(e.api_message().unwrap().contains("\"prod\" exists"), "{e}");

    // Names that are not repository path components; the typed client cannot
    // send them, a raw request can.
    for bad in ["Prod!", "-", "--x--", "a-", "a.b", "a/b", "..", ""] {
        let a = stack
            .post("/v1/fleets")
            .admin()
            .json(serde_json::json!({ "name": bad }))
            .send()
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(
            a.error()
                .contains(&format!("fleet name {bad:?} is not valid")),
            "{bad:?}: {}",
            a.error()
        );
        assert!(
            a.error()
                .contains("starting and ending with a letter or a digit")
        );
    }
    // The database holds the same rule, whatever writes there.
    let db = stack.pg.client().await;
    let e = db
        .execute("INSERT INTO fleets (name) VALUES ('--x--')", &[])
        .await
        .unwrap_err();
    assert_eq!(
        e.as_db_error().and_then(|db| db.constraint()),
        Some("fleets_name_check"),
        "{e}"
    );
    // A body without the name is more than a bad name: a raw request sends it.
    let a = stack
        .post("/v1/fleets")
        .admin()
        .json(serde_json::json!({"nom": "x"}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(!a.error().is_empty());

    let names: Vec<String> = admin
        .fleets()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.name.to_string())
        .collect();
    assert_eq!(names, ["prod", "staging"]);

    assert_eq!(admin.fleet(staging).await.unwrap().name, "staging");
    let e = admin.fleet(9999).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.api_message().unwrap().contains("no fleet"), "{e}");
    // An id that is not a number cannot be asked for through the typed client.
    let a = stack.get("/v1/fleets/abc").admin().send().await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.error().contains("no fleet"), "{}", a.error());
}

/// Releases need digest-pinned images, count versions per fleet, and the newest
/// is the target unless one is pinned.
#[tokio::test]
async fn releases_are_pinned_by_digest_and_versioned() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let fleet = stack.fleet("prod").await;
    let other = stack.fleet("other").await;
    let compose = "services:\n  web:\n    image: web\n";
    let release = |images: &[(&str, String)]| NewRelease {
        compose: compose.into(),
        images: images
            .iter()
            .map(|(s, i)| (s.to_string(), i.clone()))
            .collect::<BTreeMap<_, _>>(),
    };

    let e = admin
        .create_release(
            fleet,
            &release(&[("web", "registry.turtle.test/prod/web:latest".into())]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(
        e.api_message().unwrap().contains("not pinned by digest"),
        "{e}"
    );
    assert_eq!(admin.releases(fleet).await.unwrap(), []);

    let image = |c: char| {
        format!(
            "registry.{DOMAIN}:{HTTPS_PORT}/prod/web@sha256:{}",
            digest(c)
        )
    };
    let mut ids = Vec::new();
    for (n, c) in [(1, 'a'), (2, 'b')] {
        let r = admin
            .create_release(fleet, &release(&[("web", image(c))]))
            .await
            .unwrap();
        assert_eq!(r.version, n);
        assert_eq!(r.fleet_id, fleet);
        assert_eq!(r.compose, compose);
        assert_eq!(r.images["web"], image(c));
        ids.push(r.id);
    }
    let other_release = admin.create_release(other, &release(&[])).await.unwrap();
    assert_eq!(other_release.version, 1, "versions count per fleet");

    let versions: Vec<i32> = admin
        .releases(fleet)
        .await
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [1, 2]);

    let pin = |release_id| SetTarget { release_id };
    let pinned = admin.set_target(fleet, &pin(Some(ids[0]))).await.unwrap();
    assert_eq!(pinned.target_release_id, Some(ids[0]));
    let e = admin
        .set_target(fleet, &pin(Some(other_release.id)))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "another fleet's release");
    let unpinned = admin.set_target(fleet, &pin(None)).await.unwrap();
    assert!(unpinned.target_release_id.is_none());
    let e = admin.create_release(9999, &release(&[])).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
}
