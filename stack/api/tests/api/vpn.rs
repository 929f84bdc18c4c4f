//! The VPN's peer list and server identity.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use turtle_fleet_api::{Conditional, Credentials, Peer, Peers, VpnInfo};

use crate::fixture::{
    ADMIN_TOKEN, BUILDER_TOKEN, DOMAIN, Stack, VPN_PORT, VPN_PUBLIC_KEY, VPN_TOKEN,
};

#[tokio::test]
async fn peers_follow_registrations_with_an_etag() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let vpn = stack.calling(Credentials::Vpn(VPN_TOKEN.into()));

    let Conditional::Modified { value, etag } = vpn.vpn_peers(None).await.unwrap() else {
        panic!("an unconditional GET answers the list");
    };
    assert_eq!(value, Peers { peers: vec![] });
    let empty = etag.expect("the list has an ETag");

    let key = STANDARD.encode([9u8; 32]);
    let device = stack.device(fleet, Some(&key)).await;
    stack.device(fleet, None).await;
    let Conditional::Modified { value, etag } = vpn.vpn_peers(Some(&empty)).await.unwrap() else {
        panic!("a registration with a key changes the list");
    };
    assert_eq!(
        value,
        Peers {
            peers: vec![Peer {
                allowed_ips: vec!["10.99.0.2/32".into()],
                device: device.uuid.clone(),
                public_key: key,
            }]
        }
    );
    let etag = etag.expect("the list has an ETag");
    assert_ne!(etag, empty);
    let unchanged = stack.admin().vpn_peers(Some(&etag)).await.unwrap();
    assert!(
        matches!(unchanged, Conditional::NotModified { .. }),
        "the admin token works too"
    );

    for bad in [
        Credentials::Builder(BUILDER_TOKEN.into()),
        Credentials::device(&device),
        Credentials::Vpn("wrong".into()),
    ] {
        let e = stack.calling(bad).vpn_peers(None).await.unwrap_err();
        assert_eq!(e.status(), Some(401));
        assert!(e.challenge().is_some());
    }
}

#[tokio::test]
async fn the_server_identity_is_for_any_caller() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("prod").await;
    let device = stack.device(fleet, None).await;
    let expected = VpnInfo {
        endpoint_host: DOMAIN.into(),
        endpoint_port: VPN_PORT,
        server_address: "10.99.0.1".into(),
        server_public_key: VPN_PUBLIC_KEY.into(),
        subnet: "10.99.0.0/16".into(),
    };
    for credentials in [
        Credentials::Admin(ADMIN_TOKEN.into()),
        Credentials::Builder(BUILDER_TOKEN.into()),
        Credentials::Vpn(VPN_TOKEN.into()),
        Credentials::device(&device),
    ] {
        let info = stack.calling(credentials).vpn_info().await.unwrap();
        assert_eq!(info, expected);
    }
    for refused in [Credentials::None, Credentials::Vpn("wrong".into())] {
        let e = stack.calling(refused).vpn_info().await.unwrap_err();
        assert_eq!(e.status(), Some(401));
    }
}
