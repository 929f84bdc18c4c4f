//! Credentials: a provisioning key's use count holds under concurrent
//! registrations, registration is rate-limited per key and in all, the VPN
//! subnet keeps its reserve, and a device cannot take the VPN server's key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use turtle_fleet_api::{Error, NewProvisioningConfig, Registered, Registration};

use crate::fixture::{DOMAIN, HTTPS_PORT};

use crate::fixture::{Stack, VPN_PUBLIC_KEY};

fn registration(key: &str, wireguard_public_key: Option<String>) -> Registration {
    Registration {
        name: None,
        provisioning_key: key.into(),
        wireguard_public_key,
        ..Default::default()
    }
}

fn wg(n: u8) -> String {
    STANDARD.encode([n; 32])
}

/// Ten registrations at once with a key for three: three devices, seven 401s
/// saying the key is used up.
#[tokio::test]
async fn a_key_registers_at_most_its_uses_even_at_once() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let key = stack.provisioning_key_for(fleet, 3600, 3).await;
    let bodies: Vec<Registration> = (0..10).map(|_| registration(&key.key, None)).collect();
    let answers: Vec<Result<Registered, Error>> =
        futures_util::future::join_all(bodies.iter().map(|r| stack.api.register(r))).await;
    let registered = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(registered, 3);
    for e in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(e.status(), Some(401), "{e}");
        assert!(e.api_message().unwrap().contains("is used up"), "{e}");
    }
    assert_eq!(stack.admin().devices().await.unwrap().len(), 3);
    assert_eq!(
        stack.admin().provisioning_keys(fleet).await.unwrap()[0].uses,
        3
    );
}

/// Past a key's rate: 429 naming --registration-key-limit; past the api's
/// rate: 429 naming --registration-limit, for unknown keys too.
#[tokio::test]
async fn registration_is_rate_limited_per_key_and_in_all() {
    let stack = Stack::start_with(&[
        "--registration-key-limit",
        "3/m",
        "--registration-limit",
        "5/m",
    ])
    .await;
    let fleet = stack.fleet("prod").await;
    let first = stack.provisioning_key_for(fleet, 3600, 100).await;
    let second = stack.provisioning_key_for(fleet, 3600, 100).await;
    for _ in 0..3 {
        stack
            .api
            .register(&registration(&first.key, None))
            .await
            .unwrap();
    }
    let e = stack
        .api
        .register(&registration(&first.key, None))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    assert_eq!(e.retry_after(), Some(20));
    assert!(
        e.api_message().unwrap().contains(
            "past the registration rate of this provisioning key (--registration-key-limit \
             3/1m): send again in 20 s"
        ),
        "{e}"
    );
    // The refused one took from the api's bucket: 4 of 5 spent.
    stack
        .api
        .register(&registration(&second.key, None))
        .await
        .unwrap();
    for key in [second.key.as_str(), &"0".repeat(64)] {
        let e = stack
            .api
            .register(&registration(key, None))
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(429), "{e}");
        assert!(
            e.api_message()
                .unwrap()
                .contains("past the registration rate of this api (--registration-limit 5/1m)"),
            "{e}"
        );
    }
    assert_eq!(stack.admin().devices().await.unwrap().len(), 4);
}

/// With a /29 (five device addresses) and 20 % kept free, four devices get a
/// tunnel and the fifth is refused with what to do; one without a tunnel still
/// registers; deleting a device frees its address.
#[tokio::test]
async fn the_vpn_subnet_keeps_its_reserve() {
    let stack = Stack::start_with(&[
        "--vpn-subnet",
        "10.99.0.0/29",
        "--vpn-reserve-percent",
        "20",
    ])
    .await;
    let fleet = stack.fleet("prod").await;
    let key = stack.provisioning_key_for(fleet, 3600, 10).await;
    let mut devices = Vec::new();
    for n in 1..=4 {
        let device = stack
            .api
            .register(&registration(&key.key, Some(wg(n))))
            .await
            .unwrap();
        assert_eq!(
            device.vpn.as_ref().unwrap().address,
            format!("10.99.0.{}", n + 1)
        );
        devices.push(device);
    }
    let e = stack
        .api
        .register(&registration(&key.key, Some(wg(5))))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert_eq!(
        e.api_message().unwrap(),
        "the VPN subnet 10.99.0.0/29 has no address left for a new device: 4 of its 5 device \
         addresses are in use and 1 are kept free (--vpn-reserve-percent 20): delete devices \
         that are gone (DELETE /v1/devices/{uuid}), or start the stack with a larger --vpn-subnet"
    );
    stack
        .api
        .register(&registration(&key.key, None))
        .await
        .unwrap();

    stack.admin().delete_device(&devices[1].uuid).await.unwrap();
    let again = stack
        .api
        .register(&registration(&key.key, Some(wg(5))))
        .await
        .unwrap();
    assert_eq!(again.vpn.unwrap().address, "10.99.0.3");
    // The refused registration used nothing of the key: 4 + 1 + 1.
    assert_eq!(
        stack.admin().provisioning_keys(fleet).await.unwrap()[0].uses,
        6
    );
}

/// A device may not take the VPN server's public key (400) nor another
/// device's (409).
#[tokio::test]
async fn a_device_cannot_take_the_servers_or_anothers_key() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let key = stack.provisioning_key_for(fleet, 3600, 5).await;
    let e = stack
        .api
        .register(&registration(&key.key, Some(VPN_PUBLIC_KEY.into())))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(
        e.api_message()
            .unwrap()
            .starts_with("wireguard_public_key is the VPN server's own public key"),
        "{e}"
    );
    // Whitespace around it is the same key.
    let e = stack
        .api
        .register(&registration(
            &key.key,
            Some(format!(" {VPN_PUBLIC_KEY}\n")),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");

    stack
        .api
        .register(&registration(&key.key, Some(wg(7))))
        .await
        .unwrap();
    let e = stack
        .api
        .register(&registration(&key.key, Some(wg(7))))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert!(
        e.api_message()
            .unwrap()
            .contains("belongs to another device"),
        "{e}"
    );
    assert_eq!(stack.admin().devices().await.unwrap().len(), 1);
    let peers = stack
        .admin()
        .vpn_peers(None)
        .await
        .unwrap()
        .modified()
        .unwrap();
    assert!(peers.peers.iter().all(|p| p.public_key != VPN_PUBLIC_KEY));
}

/// The provisioning config: the api's URL, the registry, the root and its pin
/// as `turtle ca status` shows it, the VPN endpoint, the profile, and a key
/// that registers.
#[tokio::test]
async fn a_provisioning_config_holds_everything_a_device_needs() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let config = stack
        .admin()
        .provisioning_config(
            fleet,
            &NewProvisioningConfig {
                key: turtle_fleet_api::NewProvisioningKey {
                    max_uses: Some(2),
                    ..Default::default()
                },
                device_profile: Some("raspberrypi3".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(config.api, format!("https://api.{DOMAIN}:{HTTPS_PORT}"));
    assert_eq!(config.registry, format!("registry.{DOMAIN}:{HTTPS_PORT}"));
    assert_eq!(config.fleet.id, fleet);
    assert_eq!(config.fleet.name.as_str(), "prod");
    assert_eq!(config.root_ca, stack.files.root_pem);
    assert_eq!(config.root_sha256, stack.files.root_fingerprint);
    assert_eq!(config.vpn.host, DOMAIN);
    assert_eq!(config.device_profile.as_deref(), Some("raspberrypi3"));
    assert_eq!(config.max_uses, 2);
    let keys = stack.admin().provisioning_keys(fleet).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, config.provisioning_key_id);
    let device = stack
        .api
        .register(&registration(
            config.provisioning_key.as_ref().unwrap(),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(device.fleet.id, fleet);
    // Not for a fleet that does not exist, and no key is made.
    let e = stack
        .admin()
        .provisioning_config(fleet + 100, &NewProvisioningConfig::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
}

/// A device that registers with its own identity and sends it again (a
/// restart, a lost answer) is one device, and the key is used once, even
/// after the key ran out; another key for that uuid is a conflict.
#[tokio::test]
async fn a_registration_sent_again_answers_the_same_device() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let key = stack.provisioning_key_for(fleet, 3600, 1).await;
    let uuid = "0E5B2C1A-1111-4222-8333-444455556666";
    let own = |device_key: &str| Registration {
        provisioning_key: key.key.clone(),
        uuid: Some(uuid.into()),
        device_key: Some(device_key.into()),
        wireguard_public_key: Some(wg(7)),
        ..Default::default()
    };
    let device_key = "ab".repeat(32);
    let first = stack.api.register(&own(&device_key)).await.unwrap();
    assert_eq!(first.uuid, uuid.to_ascii_lowercase());
    assert_eq!(first.device_key, device_key);
    let again = stack.api.register(&own(&device_key)).await.unwrap();
    assert_eq!(again, first, "the same device, tunnel address included");
    assert_eq!(stack.admin().devices().await.unwrap().len(), 1);
    assert_eq!(
        stack.admin().provisioning_keys(fleet).await.unwrap()[0].uses,
        1
    );
    // The identity is a credential.
    stack.as_device(&first).target(None).await.unwrap();
    // Another key for the uuid.
    let e = stack
        .api
        .register(&own(&"cd".repeat(32)))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert!(e.api_message().unwrap().contains("another key"), "{e}");
    // Half an identity, or a malformed one.
    for body in [
        Registration {
            uuid: Some(uuid.into()),
            ..registration(&key.key, None)
        },
        Registration {
            uuid: Some("not-a-uuid".into()),
            device_key: Some(device_key.clone()),
            ..registration(&key.key, None)
        },
        Registration {
            uuid: Some(uuid.into()),
            device_key: Some("AB".repeat(32)),
            ..registration(&key.key, None)
        },
    ] {
        let e = stack.api.register(&body).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{e}");
    }
    // A new identity with the used-up key is refused as before.
    let e = stack
        .api
        .register(&Registration {
            uuid: Some("0e5b2c1a-1111-4222-8333-777777777777".into()),
            device_key: Some("ef".repeat(32)),
            ..registration(&key.key, None)
        })
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(e.api_message().unwrap().contains("is used up"), "{e}");
}
