//! Revocation: deleting devices, provisioning keys and fleets takes effect at
//! once.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use turtle_fleet_api::{
    Conditional, Credentials, LogLineIn, NewRelease, Registration, RegistryTokenQuery, SetTarget,
};

use crate::fixture::{DOMAIN, HTTPS_PORT, Stack, VPN_TOKEN};

fn pull_query(fleet: &str) -> RegistryTokenQuery {
    RegistryTokenQuery {
        service: Some(format!("registry.{DOMAIN}:{HTTPS_PORT}")),
        scopes: vec![format!("repository:{fleet}/web:pull")],
        account: None,
    }
}

/// The claims of a token.
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A deleted device's key stops working at once on every route, the registry's
/// token endpoint refuses it, and its VPN peer leaves the peer list. Tokens it
/// already held live 60 s.
#[tokio::test]
async fn a_deleted_device_is_refused_everywhere_at_once() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let wg = STANDARD.encode([42u8; 32]);
    let device = stack.device(fleet, Some(&wg)).await;
    let kept = stack
        .device(fleet, Some(&STANDARD.encode([43u8; 32])))
        .await;
    let as_device = stack.as_device(&device);
    let vpn = stack.calling(Credentials::Vpn(VPN_TOKEN.into()));

    // Everything works before.
    as_device.target(None).await.unwrap();
    as_device
        .post_logs(&[LogLineIn {
            message: "hello".into(),
            service: None,
            timestamp: None,
        }])
        .await
        .unwrap();
    let token = as_device.registry_token(&pull_query("prod")).await.unwrap();
    let c = claims(&token.token);
    assert_eq!(token.expires_in, 60);
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        60,
        "a device's token dies a minute after it is issued"
    );
    assert_eq!(c["access"][0]["actions"], serde_json::json!(["pull"]));
    let Conditional::Modified { value, etag } = vpn.vpn_peers(None).await.unwrap() else {
        panic!("the list");
    };
    assert_eq!(value.peers.len(), 2);
    let etag = etag.unwrap();

    stack.admin().delete_device(&device.uuid).await.unwrap();

    let e = as_device.target(None).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(
        e.api_message().unwrap().contains("unknown device key"),
        "{e}"
    );
    let e = as_device
        .report_state(&serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let e = as_device.post_logs(&[]).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let e = as_device.vpn_info().await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let e = as_device
        .registry_token(&pull_query("prod"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert_eq!(e.challenge(), Some("Basic realm=\"turtle registry\""));

    // The peer list changed, without the device.
    let Conditional::Modified { value, .. } = vpn.vpn_peers(Some(&etag)).await.unwrap() else {
        panic!("the deletion changes the list");
    };
    let devices: Vec<&str> = value.peers.iter().map(|p| p.device.as_str()).collect();
    assert_eq!(devices, [kept.uuid.as_str()]);

    // Gone for admins too, with its logs; deleting it again is 404.
    let admin = stack.admin();
    assert_eq!(
        admin.device(&device.uuid).await.unwrap_err().status(),
        Some(404)
    );
    let e = admin.delete_device(&device.uuid).await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert_eq!(
        admin
            .delete_device("not-a-uuid")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let lines: i64 = stack
        .pg
        .client()
        .await
        .query_one("SELECT count(*) FROM device_logs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(lines, 0);
    // The other device is untouched; only the admin may delete.
    stack.as_device(&kept).target(None).await.unwrap();
    let e = stack
        .as_device(&kept)
        .delete_device(&kept.uuid)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
}

/// A deleted provisioning key registers nothing from then on; the devices it
/// registered stay.
#[tokio::test]
async fn a_deleted_provisioning_key_registers_nothing() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let fleet = stack.fleet("prod").await;
    let other = stack.fleet("other").await;
    let key = stack.provisioning_key_for(fleet, 3600, 5).await;
    let body = Registration {
        name: None,
        provisioning_key: key.key.clone(),
        wireguard_public_key: None,
        ..Default::default()
    };
    let register = || stack.api.register(&body);
    let device = register().await.unwrap();

    let e = admin
        .delete_provisioning_key(other, key.id)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "another fleet's key: {e}");
    admin.delete_provisioning_key(fleet, key.id).await.unwrap();
    let e = register().await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(
        e.api_message()
            .unwrap()
            .contains("unknown provisioning key"),
        "{e}"
    );
    assert!(admin.provisioning_keys(fleet).await.unwrap().is_empty());
    let e = admin
        .delete_provisioning_key(fleet, key.id)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    stack.as_device(&device).target(None).await.unwrap();
}

/// A fleet with devices is not deleted (409 naming them); once they are gone it
/// is, with its releases (a pinned one too) and keys, and its name is free.
#[tokio::test]
async fn a_fleet_is_deleted_only_without_devices() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let fleet = stack.fleet("prod").await;
    let first = stack.device(fleet, None).await;
    let second = stack.device(fleet, None).await;
    stack.provisioning_key(fleet, 3600).await;
    let release = admin
        .create_release(
            fleet,
            &NewRelease {
                compose: "services: {}\n".into(),
                images: BTreeMap::from([(
                    "web".into(),
                    format!("r/prod/web@sha256:{}", "a".repeat(64)),
                )]),
            },
        )
        .await
        .unwrap();
    admin
        .set_target(
            fleet,
            &SetTarget {
                release_id: Some(release.id),
            },
        )
        .await
        .unwrap();

    let e = admin.delete_fleet(fleet).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    let message = e.api_message().unwrap();
    assert!(
        message.starts_with("fleet \"prod\" still has 2 devices: "),
        "{e}"
    );
    assert!(
        message.contains(&first.uuid) && message.contains(&second.uuid),
        "{e}"
    );
    assert!(message.contains("delete them first"), "{e}");
    admin.fleet(fleet).await.unwrap();

    admin.delete_device(&first.uuid).await.unwrap();
    admin.delete_device(&second.uuid).await.unwrap();
    admin.delete_fleet(fleet).await.unwrap();
    assert_eq!(admin.fleet(fleet).await.unwrap_err().status(), Some(404));
    assert_eq!(
        admin.delete_fleet(fleet).await.unwrap_err().status(),
        Some(404)
    );
    let db = stack.pg.client().await;
    for table in ["releases", "provisioning_keys"] {
        let left: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{table}");
    }
    stack.fleet("prod").await;
}
