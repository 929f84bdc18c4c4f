//! The VPN's peer list and server identity.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::StatusCode;

use crate::fixture::{
    ADMIN_TOKEN, BUILDER_TOKEN, DOMAIN, Stack, VPN_PORT, VPN_PUBLIC_KEY, VPN_TOKEN,
};

#[tokio::test]
async fn peers_follow_registrations_with_an_etag() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;

    let a = stack.get("/v1/vpn/peers").bearer(VPN_TOKEN).send().await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json(), serde_json::json!({"peers": []}));
    let empty = a.header("etag").to_string();

    let key = STANDARD.encode([9u8; 32]);
    let device = stack.device(fleet, Some(&key)).await;
    stack.device(fleet, None).await;
    let a = stack
        .get("/v1/vpn/peers")
        .bearer(VPN_TOKEN)
        .header("if-none-match", &empty)
        .send()
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        serde_json::json!({"peers": [{
            "device": device["uuid"],
            "public_key": key,
            "allowed_ips": ["10.99.0.2/32"],
        }]})
    );
    let etag = a.header("etag").to_string();
    assert_ne!(etag, empty);
    let a = stack
        .get("/v1/vpn/peers")
        .bearer(ADMIN_TOKEN)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_MODIFIED,
        "the admin token works too"
    );

    for bad in [
        BUILDER_TOKEN,
        device["device_key"].as_str().unwrap(),
        "wrong",
    ] {
        let a = stack.get("/v1/vpn/peers").bearer(bad).send().await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(a.headers.contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn the_server_identity_is_for_any_caller() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let expected = serde_json::json!({
        "server_public_key": VPN_PUBLIC_KEY,
        "server_address": "10.99.0.1",
        "subnet": "10.99.0.0/16",
        "endpoint_port": VPN_PORT,
        "endpoint_host": DOMAIN,
    });
    for token in [
        ADMIN_TOKEN,
        BUILDER_TOKEN,
        VPN_TOKEN,
        device["device_key"].as_str().unwrap(),
    ] {
        let a = stack.get("/v1/vpn").bearer(token).send().await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        assert_eq!(a.json(), expected);
    }
    let a = stack.get("/v1/vpn").send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = stack.get("/v1/vpn").bearer("wrong").send().await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
