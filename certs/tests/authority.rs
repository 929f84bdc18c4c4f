//! Creating, reopening and importing the CA on disk.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{DAY, authority, mode, t0};
use turtle_certs::{Authority, CaConfig, Error};

#[test]
fn reopening_returns_the_same_ca_and_keeps_keys_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("ca");
    let first = authority(&dir);
    let files: Vec<_> = [
        "root.pem",
        "root.key",
        "intermediate.pem",
        "intermediate.key",
        "ca.json",
    ]
    .iter()
    .map(|f| std::fs::read(dir.join(f)).unwrap())
    .collect();

    // Later, with other lifetimes: nothing on disk changes.
    let mut cfg = CaConfig::new("vm.local");
    cfg.root_lifetime = 30 * 365 * DAY;
    let again = Authority::open_or_create(&dir, &cfg, t0() + 400 * DAY).unwrap();
    assert_eq!(again.fingerprint(), first.fingerprint());
    assert_eq!(again.root_pem(), first.root_pem());
    assert_eq!(again.intermediate_pem(), first.intermediate_pem());
    for (name, before) in [
        "root.pem",
        "root.key",
        "intermediate.pem",
        "intermediate.key",
        "ca.json",
    ]
    .iter()
    .zip(&files)
    {
        assert_eq!(
            &std::fs::read(dir.join(name)).unwrap(),
            before,
            "{name} changed"
        );
    }

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("root.key")), 0o600);
    assert_eq!(mode(&dir.join("intermediate.key")), 0o600);
    assert_eq!(mode(&dir.join("root.pem")), 0o644);

    let fingerprint = first.fingerprint();
    assert_eq!(fingerprint.len(), 32 * 3 - 1);
    assert!(
        fingerprint
            .chars()
            .all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    let meta: serde_json::Value = serde_json::from_slice(&files[4]).unwrap();
    assert_eq!(meta["domain"], "vm.local");
    assert_eq!(meta["imported"], false);
    assert_eq!(meta["created"], "2025-06-01T00:00:00Z");
    assert_eq!(meta["permitted_ips"][0], "10.0.0.0/8");
}

#[test]
fn processes_starting_together_make_one_ca() {
    for _ in 0..5 {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("ca");
        let start = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (dir, start) = (dir.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let ca = authority(&dir);
                    (ca.fingerprint(), ca.intermediate_pem().to_string())
                })
            })
            .collect();
        let seen: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let stored = authority(&dir);
        for (fingerprint, intermediate) in &seen {
            assert_eq!(fingerprint, &stored.fingerprint());
            assert_eq!(intermediate, stored.intermediate_pem());
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn another_domain_is_refused_with_both_names() {
    let dir = tempfile::tempdir().unwrap();
    authority(dir.path());
    let err =
        Authority::open_or_create(dir.path(), &CaConfig::new("corp.internal"), t0()).unwrap_err();
    assert!(matches!(err, Error::DomainMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("vm.local") && message.contains("corp.internal"),
        "{message}"
    );
    assert!(message.contains("move"), "{message}");

    let mut cfg = CaConfig::new("vm.local");
    cfg.permitted_ips.push("203.0.113.0/24".parse().unwrap());
    let err = Authority::open_or_create(dir.path(), &cfg, t0()).unwrap_err();
    assert!(err.to_string().contains("203.0.113.0/24"), "{err}");

    // The same domain, written differently, is the same CA.
    Authority::open_or_create(dir.path(), &CaConfig::new("VM.Local."), t0()).unwrap();
}

#[test]
fn bad_configuration_is_refused_before_touching_the_disk() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("ca");
    let err = Authority::open_or_create(&dir, &CaConfig::new("not a domain"), t0()).unwrap_err();
    assert!(matches!(err, Error::InvalidDomain { .. }), "{err:?}");
    assert!(!dir.exists());
}

#[test]
fn an_interrupted_creation_is_redone_and_a_damaged_ca_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A creation that stopped before root.pem: the next start creates the CA.
    std::fs::write(dir.path().join("intermediate.pem"), "half").unwrap();
    std::fs::write(dir.path().join("ca.json"), "{").unwrap();
    let ca = authority(dir.path());
    assert!(
        ca.intermediate_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    // A CA that lost its intermediate key is not silently replaced.
    std::fs::remove_file(dir.path().join("intermediate.key")).unwrap();
    let err = Authority::open_or_create(dir.path(), &CaConfig::new("vm.local"), t0()).unwrap_err();
    assert!(matches!(err, Error::Incomplete { .. }), "{err:?}");
    assert!(err.to_string().contains("intermediate.key"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("root.pem")).unwrap(),
        ca.root_pem()
    );
}

#[test]
fn authority_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Authority>();
}
