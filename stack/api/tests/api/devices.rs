//! Provisioning keys, registration, and what a device polls and reports.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use turtle_fleet_api::{
    Client, Conditional, Credentials, DeviceVpn, Error, FleetRef, LogLine, LogLineIn, LogQuery,
    NewProvisioningKey, NewRelease, Registered, Registration, Target,
};

use crate::fixture::{ADMIN_TOKEN, Stack, poll};

/// Registers with a provisioning key, as a device named `pi`.
async fn register(api: &Client, key: &str) -> Result<Registered, Error> {
    api.register(&Registration {
        name: Some("pi".into()),
        provisioning_key: key.into(),
        wireguard_public_key: None,
        ..Default::default()
    })
    .await
}

/// A provisioning key registers its `max_uses` devices until it expires; a
/// used-up, expired or unknown key is 401 saying what to do.
#[tokio::test]
async fn registration_with_provisioning_keys() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;

    let key = stack.provisioning_key_for(fleet, 3600, 2).await;
    assert_eq!(key.max_uses, 2);
    assert_eq!(key.key.len(), 64);
    let expires = OffsetDateTime::parse(&key.expires_at, &Rfc3339).unwrap();
    assert!(expires > OffsetDateTime::now_utc());
    let client = stack.pg.client().await;
    let stored: Vec<u8> = client
        .query_one(
            "SELECT key_sha256 FROM provisioning_keys WHERE id = $1",
            &[&key.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored,
        turtle_api::secret::sha256(&key.key),
        "stored as its SHA-256"
    );

    let device = register(&stack.api, &key.key).await.unwrap();
    assert_eq!(
        device.fleet,
        FleetRef {
            id: fleet,
            name: "prod".parse().unwrap()
        }
    );
    assert!(device.vpn.is_none());
    assert_eq!(device.device_key.len(), 64);
    // The same key registers a second device, and no third.
    let second = register(&stack.api, &key.key).await.unwrap();
    assert_ne!(second.uuid, device.uuid);
    let e = register(&stack.api, &key.key).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert_eq!(
        e.api_message().unwrap(),
        format!(
            "provisioning key {} is used up: it registered the 2 devices it was made for; ask \
             an admin for a new one",
            key.id
        )
    );
    let listed = stack.admin().provisioning_keys(fleet).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].uses, listed[0].max_uses), (2, 2));

    let e = register(&stack.api, &"0".repeat(64)).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(
        e.api_message()
            .unwrap()
            .contains("unknown provisioning key"),
        "{e}"
    );

    let short = stack.provisioning_key(fleet, 1).await;
    let expiry = OffsetDateTime::parse(&short.expires_at, &Rfc3339).unwrap();
    poll("the clock passes the key's expiry", 10, || async {
        (OffsetDateTime::now_utc() > expiry).then_some(())
    })
    .await;
    let e = register(&stack.api, &short.key).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(e.challenge().is_some());
    assert_eq!(
        e.api_message().unwrap(),
        format!(
            "provisioning key expired at {}: ask an admin for a new one",
            short.expires_at
        )
    );
    let now_expired = stack.provisioning_key(fleet, 0).await;
    let e = register(&stack.api, &now_expired.key).await.unwrap_err();
    assert_eq!(e.status(), Some(401));

    // No body: every field takes its default (an hour, one use).
    let admin = stack.admin();
    let hour = admin.create_provisioning_key(fleet, None).await.unwrap();
    assert_eq!(hour.max_uses, 1);
    let hour = OffsetDateTime::parse(&hour.expires_at, &Rfc3339).unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(hour > now + time::Duration::minutes(59) && hour <= now + time::Duration::hours(1));

    let e = admin
        .create_provisioning_key(9999, Some(&NewProvisioningKey::default()))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    for (bad, why) in [
        (
            NewProvisioningKey {
                expires_in_secs: Some(-1),
                ..Default::default()
            },
            "expires_in_secs -1 is out of range",
        ),
        (
            // The longest life is 30 days (it was ten years).
            NewProvisioningKey {
                expires_in_secs: Some(30 * 86_400 + 1),
                ..Default::default()
            },
            "expires_in_secs 2592001 is out of range",
        ),
        (
            NewProvisioningKey {
                max_uses: Some(0),
                ..Default::default()
            },
            "max_uses 0 is out of range",
        ),
        (
            NewProvisioningKey {
                max_uses: Some(1001),
                ..Default::default()
            },
            "max_uses 1001 is out of range",
        ),
        (
            NewProvisioningKey {
                description: Some("x\u{1b}]0;title\u{7}".into()),
                ..Default::default()
            },
            "description holds a control character (U+001B)",
        ),
    ] {
        let e = admin
            .create_provisioning_key(fleet, Some(&bad))
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{bad:?}");
        assert!(e.api_message().unwrap().contains(why), "{e}");
    }
    let month = NewProvisioningKey {
        expires_in_secs: Some(30 * 86_400),
        max_uses: Some(1000),
        description: Some("the factory line".into()),
    };
    let made = admin
        .create_provisioning_key(fleet, Some(&month))
        .await
        .unwrap();
    assert_eq!(made.max_uses, 1000);
}

/// The target answers with an ETag and 304 while it is unchanged; a new release
/// changes it; device keys are checked.
#[tokio::test]
async fn the_target_has_an_etag() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);

    let Conditional::Modified { value, etag } = as_device.target(None).await.unwrap() else {
        panic!("an unconditional GET answers the target");
    };
    let prod = FleetRef {
        id: fleet,
        name: "prod".parse().unwrap(),
    };
    assert_eq!(
        value,
        Target {
            fleet: prod.clone(),
            release: None
        }
    );
    let etag = etag.expect("the target has an ETag");
    assert_eq!(
        as_device.target(Some(&etag)).await.unwrap(),
        Conditional::NotModified {
            etag: Some(etag.clone())
        }
    );

    let release = stack
        .admin()
        .create_release(
            fleet,
            &NewRelease {
                compose: "services: {}\n".into(),
                images: BTreeMap::from([(
                    "web".into(),
                    format!("r/prod/web@sha256:{}", "c".repeat(64)),
                )]),
            },
        )
        .await
        .unwrap();
    let Conditional::Modified {
        value,
        etag: new_etag,
    } = as_device.target(Some(&etag)).await.unwrap()
    else {
        panic!("a new release changes the target");
    };
    assert_ne!(new_etag.unwrap(), etag);
    assert_eq!(
        value,
        Target {
            fleet: prod,
            release: Some(release)
        }
    );

    for bad in [
        Credentials::Device {
            uuid: device.uuid.clone(),
            key: "wrong".into(),
        },
        Credentials::Admin(ADMIN_TOKEN.into()),
    ] {
        let e = stack.calling(bad).target(None).await.unwrap_err();
        assert_eq!(e.status(), Some(401));
        assert!(e.api_message().unwrap().contains("device key"), "{e}");
    }
}

/// The device's long-poll of its target with `etag`, waiting up to 60 s.
fn long_poll(
    stack: &Stack,
    device: &Registered,
    etag: String,
) -> tokio::task::JoinHandle<Result<Conditional<Target>, Error>> {
    let as_device = stack.as_device(device);
    tokio::spawn(async move {
        as_device
            .target_wait(Some(&etag), std::time::Duration::from_secs(60))
            .await
    })
}

/// A long-poll's answer, which must come before its wait is over.
async fn answered(
    waiting: tokio::task::JoinHandle<Result<Conditional<Target>, Error>>,
) -> Conditional<Target> {
    tokio::time::timeout(std::time::Duration::from_secs(50), waiting)
        .await
        .expect("the long-poll answered before its wait was over")
        .unwrap()
        .unwrap()
}

/// A long-poll of the target: unchanged, 304 once the wait is over; a
/// release made while the device waits answers it at once with the new
/// target; a pin too. Another fleet's release does not wake it.
#[tokio::test]
async fn a_long_poll_answers_when_the_target_moves() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let other = stack.fleet("other").await;
    let device = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);
    let Conditional::Modified { etag, .. } = as_device.target(None).await.unwrap() else {
        panic!("an unconditional GET answers the target");
    };
    let etag = etag.unwrap();
    let asked = std::time::Instant::now();
    let answer = as_device
        .target_wait(Some(&etag), std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        matches!(answer, Conditional::NotModified { .. }),
        "{answer:?}"
    );
    // Not before the wait is over (a lower bound, never a race).
    assert!(asked.elapsed() >= std::time::Duration::from_secs(1));

    let release = |tag: char| NewRelease {
        compose: "services: {}\n".into(),
        images: BTreeMap::from([(
            "web".into(),
            format!("r/prod/web@sha256:{}", tag.to_string().repeat(64)),
        )]),
    };
    let waiting = long_poll(&stack, &device, etag.clone());
    // Another fleet's release first: it must not answer the device.
    stack
        .admin()
        .create_release(other, &release('a'))
        .await
        .unwrap();
    let made = stack
        .admin()
        .create_release(fleet, &release('b'))
        .await
        .unwrap();
    let answer = answered(waiting).await;
    let Conditional::Modified { value, etag: moved } = answer else {
        panic!("the new release answers the waiting device: {answer:?}");
    };
    assert_eq!(value.release.as_ref().map(|r| r.id), Some(made.id));
    let moved = moved.unwrap();

    // A pin answers a waiting device too.
    let first = stack
        .admin()
        .create_release(fleet, &release('c'))
        .await
        .unwrap();
    let Conditional::Modified { etag: newest, .. } = as_device.target(Some(&moved)).await.unwrap()
    else {
        panic!("the newest release moved the target");
    };
    let waiting = long_poll(&stack, &device, newest.unwrap());
    stack
        .admin()
        .set_target(
            fleet,
            &turtle_fleet_api::SetTarget {
                release_id: Some(made.id),
            },
        )
        .await
        .unwrap();
    let answer = answered(waiting).await;
    let Conditional::Modified { value, .. } = answer else {
        panic!("the pin answers the waiting device: {answer:?}");
    };
    assert_eq!(value.release.map(|r| r.id), Some(made.id));
    assert_ne!(first.id, made.id);
}

/// A state report is kept as the device's last report and shown to admins with
/// last_seen; a report that is not an object is 400.
#[tokio::test]
async fn state_reports_are_shown_on_the_device() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);

    let before = admin.device(&device.uuid).await.unwrap();
    assert!(before.state.is_none());
    assert_eq!(before.name.as_deref(), Some("test device"));

    let report = serde_json::json!({"release": 3, "services": {"web": {"status": "running"}}});
    as_device.report_state(&report).await.unwrap();
    let e = as_device
        .report_state(&serde_json::json!([1, 2]))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));

    let shown = admin.device(&device.uuid).await.unwrap();
    assert_eq!(shown.uuid, device.uuid);
    assert_eq!(shown.state.as_ref(), Some(&report));
    assert_eq!(shown.fleet.name, "prod");
    assert!(shown.last_seen.is_some());
    assert!(shown.state_reported_at.is_some());
    let list = admin.devices().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state.as_ref(), Some(&report));

    for missing in ["00000000-0000-0000-0000-000000000000", "not-a-uuid"] {
        let e = admin.device(missing).await.unwrap_err();
        assert_eq!(e.status(), Some(404), "{missing}");
    }
    let e = as_device.device(&device.uuid).await.unwrap_err();
    assert_eq!(e.status(), Some(401), "a device key is not admin");
}

fn line(timestamp: Option<&str>, service: Option<&str>, message: &str) -> LogLineIn {
    LogLineIn {
        message: message.into(),
        service: service.map(str::to_string),
        timestamp: timestamp.map(str::to_string),
    }
}

fn messages(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.message.as_str()).collect()
}

/// Log lines in, log lines out: oldest first, `limit` keeps the last ones, `since`
/// the ones after a time.
#[tokio::test]
async fn logs_are_posted_and_read() {
    let stack = Stack::start().await;
    let admin = stack.admin();
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let uuid = device.uuid.as_str();
    let as_device = stack.as_device(&device);

    // An hour ago, to the second: within the retention, before arrival.
    let base = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::hours(1);
    let at = |secs: i64| {
        (base + time::Duration::seconds(secs))
            .format(&Rfc3339)
            .unwrap()
    };
    let (t0, t1, t2) = (at(0), at(1), at(2));
    as_device
        .post_logs(&[
            line(Some(&t0), Some("web"), "one"),
            line(Some(&t1), Some("db"), "two"),
            line(Some(&t2), None, "three"),
        ])
        .await
        .unwrap();
    as_device
        .post_logs(&[line(None, None, "now")])
        .await
        .unwrap();
    let e = as_device
        .post_logs(&[line(Some("yesterday"), None, "x")])
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.api_message().unwrap().contains("RFC 3339"), "{e}");

    let query = |limit: Option<i64>, since: Option<&str>, after: Option<i64>| LogQuery {
        after,
        limit,
        since: since.map(str::to_string),
    };
    let all = admin.device_logs(uuid, &LogQuery::default()).await.unwrap();
    assert_eq!(messages(&all), ["one", "two", "three", "now"]);
    let first_id = all[0].id;
    assert_eq!(
        all[0],
        LogLine {
            id: first_id,
            message: "one".into(),
            service: Some("web".into()),
            timestamp: t0.clone(),
        }
    );
    assert!(all[2].service.is_none());

    let last = admin
        .device_logs(uuid, &query(Some(2), None, None))
        .await
        .unwrap();
    assert_eq!(messages(&last), ["three", "now"]);
    let since = admin
        .device_logs(uuid, &query(Some(2), Some(&t0), None))
        .await
        .unwrap();
    assert_eq!(messages(&since), ["two", "three"]);

    // Lines sharing a time (a batch sent without timestamps) are paged
    // one by one with `after`, none skipped.
    as_device
        .post_logs(&[
            line(None, None, "tie-1"),
            line(None, None, "tie-2"),
            line(None, None, "tie-3"),
        ])
        .await
        .unwrap();
    let mut cursor = first_id;
    let mut paged = Vec::new();
    loop {
        let page = admin
            .device_logs(uuid, &query(Some(1), None, Some(cursor)))
            .await
            .unwrap();
        let Some(line) = page.into_iter().next() else {
            break;
        };
        cursor = line.id;
        paged.push(line.message);
    }
    assert_eq!(paged, ["two", "three", "now", "tie-1", "tie-2", "tie-3"]);
    for bad in [
        query(None, Some(&t0), Some(1)),
        query(Some(0), None, None),
        query(None, Some("x"), None),
    ] {
        let e = admin.device_logs(uuid, &bad).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{bad:?}");
    }
    let e = as_device
        .device_logs(uuid, &LogQuery::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401));
}

/// Devices that send a WireGuard key get tunnel addresses from .2 up; a key in use
/// is 409; a malformed one 400.
#[tokio::test]
async fn registration_gives_tunnel_addresses() {
    // Eleven registrations with one key, ten of them at once.
    let stack = Stack::start_with(&["--registration-key-limit", "20/m"]).await;
    let fleet = stack.fleet("prod").await;
    let wg = |n: u8| STANDARD.encode([n; 32]);
    let first = stack.device(fleet, Some(&wg(1))).await;
    assert_eq!(
        first.vpn,
        Some(DeviceVpn {
            address: "10.99.0.2".into(),
            endpoint_host: crate::fixture::DOMAIN.into(),
            endpoint_port: crate::fixture::VPN_PORT,
            prefix: 16,
            server_address: "10.99.0.1".into(),
            server_public_key: crate::fixture::VPN_PUBLIC_KEY.into(),
        })
    );
    let second = stack.device(fleet, Some(&wg(2))).await;
    assert_eq!(second.vpn.unwrap().address, "10.99.0.3");
    let shown = stack.admin().device(&first.uuid).await.unwrap();
    assert_eq!(shown.vpn_address.as_deref(), Some("10.99.0.2"));
    assert_eq!(shown.wireguard_public_key, Some(wg(1)));

    let key = stack.provisioning_key_for(fleet, 3600, 20).await;
    let with_key = |wireguard_public_key: String| Registration {
        name: None,
        provisioning_key: key.key.clone(),
        wireguard_public_key: Some(wireguard_public_key),
        ..Default::default()
    };
    let e = stack.api.register(&with_key(wg(1))).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    let e = stack
        .api
        .register(&with_key("short".into()))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));

    // Concurrent registrations get distinct addresses, the next ones in order.
    let registrations: Vec<Registration> = (10..20u8).map(|n| with_key(wg(n))).collect();
    let answers =
        futures_util::future::join_all(registrations.iter().map(|r| stack.api.register(r))).await;
    let mut addresses: Vec<String> = answers
        .into_iter()
        .map(|a| a.unwrap().vpn.unwrap().address)
        .collect();
    addresses.sort_by_key(|a| a.rsplit('.').next().unwrap().parse::<u32>().unwrap());
    let expected: Vec<String> = (4..14).map(|n| format!("10.99.0.{n}")).collect();
    assert_eq!(addresses, expected);
}
