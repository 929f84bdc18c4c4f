//! Provisioning keys, registration, and what a device polls and reports.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::fixture::{Stack, poll};

/// A provisioning key registers devices until it expires; an expired or unknown
/// key is 401 saying what to do.
#[tokio::test]
async fn registration_with_provisioning_keys() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;

    let key = stack.provisioning_key(fleet, 3600).await;
    assert_eq!(key["key"].as_str().unwrap().len(), 64);
    let expires = OffsetDateTime::parse(key["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(expires > OffsetDateTime::now_utc());
    let client = stack.pg.client().await;
    let stored: Vec<u8> = client
        .query_one(
            "SELECT key_sha256 FROM provisioning_keys WHERE id = $1",
            &[&key["id"].as_i64().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored,
        turtle_api::secret::sha256(key["key"].as_str().unwrap()),
        "stored as its SHA-256"
    );

    let register = |k: &serde_json::Value| {
        stack
            .post("/v1/devices/register")
            .json(serde_json::json!({"provisioning_key": k, "name": "pi"}))
    };
    let a = register(&key["key"]).send().await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let device = a.json();
    assert_eq!(
        device["fleet"],
        serde_json::json!({"id": fleet, "name": "prod"})
    );
    assert!(device["vpn"].is_null());
    assert_eq!(device["device_key"].as_str().unwrap().len(), 64);
    // The same key registers a second device.
    let second = register(&key["key"]).send().await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_ne!(second.json()["uuid"], device["uuid"]);

    let a = register(&serde_json::json!("0".repeat(64))).send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.error().contains("unknown provisioning key"),
        "{}",
        a.error()
    );

    let short = stack.provisioning_key(fleet, 1).await;
    let expires_at = short["expires_at"].as_str().unwrap().to_string();
    let expiry = OffsetDateTime::parse(&expires_at, &Rfc3339).unwrap();
    poll("the clock passes the key's expiry", 10, || async {
        (OffsetDateTime::now_utc() > expiry).then_some(())
    })
    .await;
    let a = register(&short["key"]).send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text());
    assert!(a.headers.contains_key("www-authenticate"));
    assert_eq!(
        a.error(),
        format!("provisioning key expired at {expires_at}: ask an admin for a new one")
    );
    let now_expired = stack.provisioning_key(fleet, 0).await;
    assert_eq!(
        register(&now_expired["key"]).send().await.status,
        StatusCode::UNAUTHORIZED
    );

    // No body: every field takes its default (a day).
    let a = stack
        .post(&format!("/v1/fleets/{fleet}/provisioning-keys"))
        .admin()
        .send()
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let day = OffsetDateTime::parse(a.json()["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(day > OffsetDateTime::now_utc() + time::Duration::hours(23));

    let a = stack
        .post("/v1/fleets/9999/provisioning-keys")
        .admin()
        .json(serde_json::json!({}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = stack
        .post(&format!("/v1/fleets/{fleet}/provisioning-keys"))
        .admin()
        .json(serde_json::json!({"expires_in_secs": -1}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

/// The target answers with an ETag and 304 while it is unchanged; a new release
/// changes it; device keys are checked.
#[tokio::test]
async fn the_target_has_an_etag() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let key = device["device_key"].as_str().unwrap();

    let a = stack.get("/v1/device/target").bearer(key).send().await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        a.json(),
        serde_json::json!({"fleet": {"id": fleet, "name": "prod"}, "release": null})
    );
    let etag = a.header("etag").to_string();
    let a = stack
        .get("/v1/device/target")
        .bearer(key)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert_eq!(a.header("etag"), etag);
    assert!(a.body.is_empty());

    let release = stack
        .post(&format!("/v1/fleets/{fleet}/releases"))
        .admin()
        .json(serde_json::json!({"compose": "services: {}\n", "images": {"web": format!("r/prod/web@sha256:{}", "c".repeat(64))}}))
        .send()
        .await
        .json();
    let a = stack
        .get("/v1/device/target")
        .bearer(key)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_ne!(a.header("etag"), etag);
    assert_eq!(a.json()["release"], release);

    for bad in ["wrong", crate::fixture::ADMIN_TOKEN] {
        let a = stack.get("/v1/device/target").bearer(bad).send().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(a.error().contains("device key"), "{}", a.error());
    }
}

/// A state report is kept as the device's last report and shown to admins with
/// last_seen; a report that is not an object is 400.
#[tokio::test]
async fn state_reports_are_shown_on_the_device() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let uuid = device["uuid"].as_str().unwrap();
    let key = device["device_key"].as_str().unwrap();
    let path = format!("/v1/devices/{uuid}");

    let before = stack.get(&path).admin().send().await.json();
    assert!(before["state"].is_null());
    assert_eq!(before["name"], "test device");

    let report = serde_json::json!({"release": 3, "services": {"web": {"status": "running"}}});
    let a = stack
        .put("/v1/device/state")
        .bearer(key)
        .json(report.clone())
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    let a = stack
        .put("/v1/device/state")
        .bearer(key)
        .json(serde_json::json!([1, 2]))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let shown = stack.get(&path).admin().send().await.json();
    assert_eq!(shown["uuid"], uuid);
    assert_eq!(shown["state"], report);
    assert_eq!(shown["fleet"]["name"], "prod");
    assert!(shown["last_seen"].is_string());
    assert!(shown["state_reported_at"].is_string());
    let list = stack.get("/v1/devices").admin().send().await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["state"], report);

    let a = stack
        .get("/v1/devices/00000000-0000-0000-0000-000000000000")
        .admin()
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = stack.get("/v1/devices/not-a-uuid").admin().send().await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = stack.get(&path).bearer(key).send().await;
    assert_eq!(
        a.status,
        StatusCode::UNAUTHORIZED,
        "a device key is not admin"
    );
}

/// Log lines in, log lines out: oldest first, `limit` keeps the last ones, `since`
/// the ones after a time.
#[tokio::test]
async fn logs_are_posted_and_read() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let uuid = device["uuid"].as_str().unwrap();
    let key = device["device_key"].as_str().unwrap();

    let lines = serde_json::json!([
        {"timestamp": "2025-06-01T12:00:00Z", "service": "web", "message": "one"},
        {"timestamp": "2025-06-01T12:00:01Z", "service": "db", "message": "two"},
        {"timestamp": "2025-06-01T12:00:02Z", "message": "three"},
    ]);
    let a = stack
        .post("/v1/device/logs")
        .bearer(key)
        .json(lines)
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.text());
    let a = stack
        .post("/v1/device/logs")
        .bearer(key)
        .json(serde_json::json!([{"message": "now"}]))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = stack
        .post("/v1/device/logs")
        .bearer(key)
        .json(serde_json::json!([{"timestamp": "yesterday", "message": "x"}]))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("RFC 3339"), "{}", a.error());

    let path = format!("/v1/devices/{uuid}/logs");
    let all = stack.get(&path).admin().send().await.json();
    let messages: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["one", "two", "three", "now"]);
    let first_id = all[0]["id"].as_i64().unwrap();
    assert_eq!(
        all[0],
        serde_json::json!({"id": first_id, "timestamp": "2025-06-01T12:00:00Z", "service": "web", "message": "one"})
    );
    assert!(all[2]["service"].is_null());

    let last = stack
        .get(&format!("{path}?limit=2"))
        .admin()
        .send()
        .await
        .json();
    assert_eq!(last[0]["message"], "three");
    assert_eq!(last[1]["message"], "now");
    let since = stack
        .get(&format!("{path}?since=2025-06-01T12:00:00Z&limit=2"))
        .admin()
        .send()
        .await
        .json();
    let messages: Vec<&str> = since
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["two", "three"]);

    // Lines sharing a time (a batch sent without timestamps) are paged
    // one by one with `after`, none skipped.
    let a = stack
        .post("/v1/device/logs")
        .bearer(key)
        .json(serde_json::json!([{"message": "tie-1"}, {"message": "tie-2"}, {"message": "tie-3"}]))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let mut cursor = first_id;
    let mut paged = Vec::new();
    loop {
        let page = stack
            .get(&format!("{path}?after={cursor}&limit=1"))
            .admin()
            .send()
            .await
            .json();
        let Some(line) = page.as_array().unwrap().first().cloned() else {
            break;
        };
        cursor = line["id"].as_i64().unwrap();
        paged.push(line["message"].as_str().unwrap().to_string());
    }
    assert_eq!(paged, ["two", "three", "now", "tie-1", "tie-2", "tie-3"]);
    assert_eq!(
        stack
            .get(&format!("{path}?after=1&since=2025-06-01T12:00:00Z"))
            .admin()
            .send()
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        stack
            .get(&format!("{path}?limit=0"))
            .admin()
            .send()
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        stack
            .get(&format!("{path}?since=x"))
            .admin()
            .send()
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        stack.get(&path).bearer(key).send().await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// Devices that send a WireGuard key get tunnel addresses from .2 up; a key in use
/// is 409; a malformed one 400.
#[tokio::test]
async fn registration_gives_tunnel_addresses() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let wg = |n: u8| STANDARD.encode([n; 32]);
    let first = stack.device(fleet, Some(&wg(1))).await;
    assert_eq!(
        first["vpn"],
        serde_json::json!({
            "address": "10.99.0.2",
            "prefix": 16,
            "server_address": "10.99.0.1",
            "server_public_key": crate::fixture::VPN_PUBLIC_KEY,
            "endpoint_port": crate::fixture::VPN_PORT,
            "endpoint_host": crate::fixture::DOMAIN,
        })
    );
    let second = stack.device(fleet, Some(&wg(2))).await;
    assert_eq!(second["vpn"]["address"], "10.99.0.3");
    let shown = stack
        .get(&format!("/v1/devices/{}", first["uuid"].as_str().unwrap()))
        .admin()
        .send()
        .await
        .json();
    assert_eq!(shown["vpn_address"], "10.99.0.2");
    assert_eq!(shown["wireguard_public_key"], wg(1));

    let key = stack.provisioning_key(fleet, 3600).await;
    let a = stack
        .post("/v1/devices/register")
        .json(serde_json::json!({"provisioning_key": key["key"], "wireguard_public_key": wg(1)}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text());
    let a = stack
        .post("/v1/devices/register")
        .json(serde_json::json!({"provisioning_key": key["key"], "wireguard_public_key": "short"}))
        .send()
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // Concurrent registrations get distinct addresses, the next ones in order.
    let mut tasks = Vec::new();
    for n in 10..20u8 {
        let req = stack.post("/v1/devices/register").json(
            serde_json::json!({"provisioning_key": key["key"], "wireguard_public_key": wg(n)}),
        );
        tasks.push(req.send());
    }
    let answers = futures_util::future::join_all(tasks).await;
    let mut addresses: Vec<String> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
            a.json()["vpn"]["address"].as_str().unwrap().to_string()
        })
        .collect();
    addresses.sort_by_key(|a| a.rsplit('.').next().unwrap().parse::<u32>().unwrap());
    let expected: Vec<String> = (4..14).map(|n| format!("10.99.0.{n}")).collect();
    assert_eq!(addresses, expected);
}
