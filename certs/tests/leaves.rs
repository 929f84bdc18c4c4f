//! Stored leaves: issuing once, renewal with the clock passed in, provided leaves,
//! status.

mod common;

use std::fs;
use std::net::IpAddr;

use common::{DAY, authority, mode, strings, t0, verify};
use rcgen::{CertificateParams, KeyPair};
use turtle_certs::{CertState, Error, LeafId};

fn id(s: &str) -> LeafId {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn read(dir: &std::path::Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn a_leaf_is_stored_once_and_renewed_at_two_thirds_of_its_life() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = authority(ca_dir.path());
    let names = strings(&["api.vm.local", "vm.local"]);
    let ips = [ip("10.0.0.5")];

    let (first, changed) = ca.ensure_leaf(&id("api"), &names, &ips, t0()).unwrap();
    assert!(changed);
    assert_eq!(first.id, "api");
    assert_eq!(first.names, names);
    assert_eq!(first.ips, ips);
    assert_eq!(first.subject, "CN=api.vm.local");
    assert!(!first.provided);
    assert_eq!(
        first.not_before,
        t0() - 5 * 60 * std::time::Duration::from_secs(1)
    );
    assert_eq!(first.not_after, t0() + 90 * DAY);

    let dir = ca.leaf_dir(&id("api"));
    assert_eq!(dir, ca_dir.path().join("leaves/api"));
    let cert = read(&dir, "cert.pem");
    assert_eq!(
        read(&dir, "chain.pem"),
        format!("{cert}{}", ca.intermediate_pem())
    );
    assert_eq!(
        read(&dir, "fullchain.pem"),
        format!("{cert}{}{}", ca.intermediate_pem(), ca.root_pem())
    );
    assert_eq!(mode(&dir.join("key.pem")), 0o600);
    assert_eq!(mode(&dir.join("cert.pem")), 0o644);
    verify(
        &read(&dir, "chain.pem"),
        ca.root_pem(),
        "api.vm.local",
        t0(),
    )
    .unwrap();
    let key = read(&dir, "key.pem");

    // Before the renewal point: the stored leaf, untouched. Names in another order
    // and case are the same request.
    let renew_at = first.renew_at;
    assert!(
        renew_at > t0() + 59 * DAY && renew_at < t0() + 61 * DAY,
        "{renew_at:?}"
    );
    let same = strings(&["VM.local", "api.vm.local"]);
    let (info, changed) = ca
        .ensure_leaf(
            &id("api"),
            &same,
            &ips,
            renew_at - std::time::Duration::from_secs(1),
        )
        .unwrap();
    assert!(!changed);
    assert_eq!(info, first);
    assert_eq!(read(&dir, "cert.pem"), cert);
    assert_eq!(ca.next_renewal(), Some(renew_at));

    // At the renewal point: a new leaf, new key, files replaced.
    let (renewed, changed) = ca.ensure_leaf(&id("api"), &names, &ips, renew_at).unwrap();
    assert!(changed);
    assert_ne!(renewed.serial, first.serial);
    assert_ne!(read(&dir, "cert.pem"), cert);
    assert_ne!(read(&dir, "key.pem"), key);
    assert_eq!(renewed.not_after, renew_at + 90 * DAY);
    verify(
        &read(&dir, "chain.pem"),
        ca.root_pem(),
        "api.vm.local",
        renew_at + DAY,
    )
    .unwrap();
    assert!(ca.next_renewal().unwrap() > renew_at);
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn other_names_or_addresses_issue_a_new_leaf_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let (first, _) = ca
        .ensure_leaf(&id("api"), &strings(&["api.vm.local"]), &[], t0())
        .unwrap();

    let (more, changed) = ca
        .ensure_leaf(
            &id("api"),
            &strings(&["api.vm.local", "www.vm.local"]),
            &[],
            t0() + DAY,
        )
        .unwrap();
    assert!(changed);
    assert_ne!(more.serial, first.serial);
    assert_eq!(more.names, strings(&["api.vm.local", "www.vm.local"]));

    let (with_ip, changed) = ca
        .ensure_leaf(
            &id("api"),
            &strings(&["api.vm.local", "www.vm.local"]),
            &[ip("192.168.1.20")],
            t0() + DAY,
        )
        .unwrap();
    assert!(changed);
    assert_eq!(with_ip.ips, [ip("192.168.1.20")]);

    // A leaf whose files were damaged is issued again too.
    fs::write(ca.leaf_dir(&id("api")).join("cert.pem"), "garbage").unwrap();
    let (_, changed) = ca
        .ensure_leaf(
            &id("api"),
            &strings(&["api.vm.local", "www.vm.local"]),
            &[ip("192.168.1.20")],
            t0() + DAY,
        )
        .unwrap();
    assert!(changed);
}

#[test]
fn a_clock_that_went_back_renews_too() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let names = strings(&["api.vm.local"]);
    ca.ensure_leaf(&id("api"), &names, &[], t0()).unwrap();
    let (_, changed) = ca.ensure_leaf(&id("api"), &names, &[], t0() - DAY).unwrap();
    assert!(changed);
}

#[test]
fn requests_outside_the_ca_and_bad_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let err = ca
        .ensure_leaf(&id("api"), &strings(&["api.example.com"]), &[], t0())
        .unwrap_err();
    assert!(matches!(err, Error::NamesOutsideDomain { .. }), "{err:?}");
    let err = ca
        .ensure_leaf(&id("api"), &[], &[ip("203.0.113.9")], t0())
        .unwrap_err();
    assert!(matches!(err, Error::IpsOutsideRanges { .. }), "{err:?}");
    let err = ca.ensure_leaf(&id("api"), &[], &[], t0()).unwrap_err();
    assert!(matches!(err, Error::NoNames), "{err:?}");
    let err = "../etc".parse::<LeafId>().unwrap_err();
    assert!(matches!(err, Error::InvalidLeafId { .. }), "{err:?}");
    assert!(!dir.path().join("leaves/api").exists());
}

/// A leaf directory someone else put there is never written into: a link to
/// a directory outside the CA, one owned by another user, one wider than
/// Turtle makes them. The directory it points at keeps its mode and stays
/// empty.
#[test]
fn a_leaf_directory_turtle_did_not_make_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let ca = authority(&tmp.path().join("ca"));
    let names = strings(&["api.vm.local"]);
    let victim = tmp.path().join("victim");
    fs::create_dir(&victim).unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o751)).unwrap();
    fs::create_dir_all(tmp.path().join("ca/leaves")).unwrap();
    std::os::unix::fs::symlink(&victim, ca.leaf_dir(&id("link"))).unwrap();
    let err = ca.ensure_leaf(&id("link"), &names, &[], t0()).unwrap_err();
    assert!(
        matches!(&err, Error::NotOurs { reason, .. } if reason.contains("symbolic link")),
        "{err}"
    );
    assert!(err.to_string().contains("move it away"), "{err}");
    assert_eq!(mode(&victim), 0o751);
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 0);

    let wide = ca.leaf_dir(&id("wide"));
    fs::create_dir(&wide).unwrap();
    fs::set_permissions(&wide, fs::Permissions::from_mode(0o777)).unwrap();
    let err = ca.ensure_leaf(&id("wide"), &names, &[], t0()).unwrap_err();
    assert!(err.to_string().contains("wider than 755"), "{err}");
    assert_eq!(mode(&wide), 0o777);

    // Another user's: only root can make one to test with.
    if rustix::process::geteuid().is_root() {
        let theirs = ca.leaf_dir(&id("theirs"));
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(4242), None).unwrap();
        let err = ca
            .ensure_leaf(&id("theirs"), &names, &[], t0())
            .unwrap_err();
        assert!(err.to_string().contains("owned by uid 4242"), "{err}");
        assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    } else {
        eprintln!("skipped the other user's directory: not root");
    }

    // What Turtle made, it uses again.
    ca.ensure_leaf(&id("api"), &names, &[], t0()).unwrap();
    let (_, changed) = ca.ensure_leaf(&id("api"), &names, &[], t0()).unwrap();
    assert!(!changed);
    assert_eq!(mode(&ca.leaf_dir(&id("api"))), 0o755);
}

/// A ready-made certificate and key, as an operator would bring: self-signed, for a
/// name outside Turtle's domain.
fn ready_made() -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(strings(&["files.example.com"])).unwrap();
    params.not_before = time::OffsetDateTime::from(t0());
    params.not_after = time::OffsetDateTime::from(t0() + 30 * DAY);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

#[test]
fn a_provided_leaf_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    ca.ensure_leaf(&id("files"), &strings(&["files.vm.local"]), &[], t0())
        .unwrap();
    let (cert, key) = ready_made();

    let info = ca.import_leaf(&id("files"), &cert, &key).unwrap();
    assert!(info.provided);
    assert_eq!(info.names, strings(&["files.example.com"]));
    let leaf_dir = ca.leaf_dir(&id("files"));
    assert_eq!(read(&leaf_dir, "cert.pem"), cert);
    assert_eq!(mode(&leaf_dir.join("key.pem")), 0o600);

    // Other names, past its end: still the operator's.
    for now in [t0() + DAY, t0() + 60 * DAY] {
        let (kept, changed) = ca
            .ensure_leaf(&id("files"), &strings(&["files.vm.local"]), &[], now)
            .unwrap();
        assert!(!changed);
        assert_eq!(kept, info);
        assert_eq!(read(&leaf_dir, "cert.pem"), cert);
    }
    // Even a request Turtle could not issue reports it.
    let (kept, changed) = ca
        .ensure_leaf(&id("files"), &strings(&["files.example.com"]), &[], t0())
        .unwrap();
    assert!(!changed && kept.provided);
    assert_eq!(ca.next_renewal(), None, "provided leaves are not renewed");

    let status = ca.status(t0() + DAY);
    let files = status.leaves.iter().find(|l| l.info.id == "files").unwrap();
    assert!(files.info.provided);
    assert_eq!(files.state, CertState::Valid);

    // Removing it hands the id back to Turtle.
    assert!(ca.remove_leaf(&id("files")).unwrap());
    let (issued, changed) = ca
        .ensure_leaf(&id("files"), &strings(&["files.vm.local"]), &[], t0() + DAY)
        .unwrap();
    assert!(changed && !issued.provided);
}

#[test]
fn a_provided_leaf_needs_its_own_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let (cert, _) = ready_made();
    let (_, other_key) = ready_made();
    let err = ca.import_leaf(&id("files"), &cert, &other_key).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    let err = ca.import_leaf(&id("files"), "", &other_key).unwrap_err();
    assert!(matches!(err, Error::InvalidChain { .. }), "{err:?}");
    assert!(!ca.leaf_dir(&id("files")).exists());
}

#[test]
fn status_shows_every_leaf_and_where_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    ca.ensure_leaf(&id("api"), &strings(&["api.vm.local"]), &[], t0())
        .unwrap();
    ca.ensure_leaf(
        &id("registry"),
        &strings(&["registry.vm.local"]),
        &[ip("10.0.0.5")],
        t0() + 10 * DAY,
    )
    .unwrap();
    fs::create_dir_all(dir.path().join("leaves/broken")).unwrap();

    let status = ca.status(t0() + 65 * DAY);
    assert_eq!(status.domain, "vm.local");
    assert!(!status.imported);
    assert_eq!(status.root.fingerprint, ca.fingerprint());
    assert_eq!(status.root.state, CertState::Valid);
    let states: Vec<_> = status
        .leaves
        .iter()
        .map(|l| (l.info.id.as_str(), l.state))
        .collect();
    assert_eq!(
        states,
        [
            ("api", CertState::RenewalDue),
            ("registry", CertState::Valid)
        ]
    );
    assert_eq!(status.unreadable.len(), 1);
    assert_eq!(status.unreadable[0].id, "broken");
    assert_eq!(
        ca.status(t0() + 95 * DAY).leaves[0].state,
        CertState::Expired
    );
    assert_eq!(ca.next_renewal(), Some(status.leaves[0].info.renew_at));

    // JSON: times are RFC 3339, and it reads back.
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["created"], "2025-06-01T00:00:00Z");
    assert_eq!(json["leaves"][0]["not_after"], "2025-08-30T00:00:00Z");
    assert_eq!(json["leaves"][0]["state"], "renewal_due");
    assert_eq!(json["permitted_ips"][0], "10.0.0.0/8");
    let back: turtle_certs::Status = serde_json::from_value(json).unwrap();
    assert_eq!(back, status);
}

#[test]
fn a_short_lived_leaf_is_renewed_at_two_thirds_of_its_life_not_at_once() {
    // The 5-minute backdating of not_before is slack for clocks: counted as
    // lifetime, a 15 s leaf would be due before it was issued and renewed on
    // every look.
    let ca_dir = tempfile::tempdir().unwrap();
    let mut cfg = turtle_certs::CaConfig::new("vm.local");
    cfg.leaf_lifetime = std::time::Duration::from_secs(15);
    let ca = turtle_certs::Authority::open_or_create(ca_dir.path(), &cfg, t0()).unwrap();
    let names = strings(&["api.vm.local"]);
    let (first, _) = ca.ensure_leaf(&id("api"), &names, &[], t0()).unwrap();
    assert_eq!(first.renew_at, t0() + std::time::Duration::from_secs(10));
    let (again, changed) = ca
        .ensure_leaf(
            &id("api"),
            &names,
            &[],
            t0() + std::time::Duration::from_secs(9),
        )
        .unwrap();
    assert!(!changed, "renewed before its renewal point");
    assert_eq!(again.serial, first.serial);
    let (_, changed) = ca
        .ensure_leaf(
            &id("api"),
            &names,
            &[],
            t0() + std::time::Duration::from_secs(10),
        )
        .unwrap();
    assert!(changed);
}
