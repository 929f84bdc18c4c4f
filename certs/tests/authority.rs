//! Creating, reopening and importing the CA on disk.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{DAY, authority, mode, strings, t0};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
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

/// An operator's CA made with rcgen.
fn operator_ca() -> (String, KeyPair) {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Example Corp Root");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time::OffsetDateTime::from(t0() - 365 * DAY);
    params.not_after = time::OffsetDateTime::from(t0() + 3 * 365 * DAY);
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap().pem(), key)
}

#[test]
fn an_imported_ca_becomes_the_root_under_turtles_intermediate() {
    let (cert, key) = operator_ca();
    let dir = tempfile::tempdir().unwrap();
    let cfg = CaConfig::new("vm.local");
    let ca = Authority::import(dir.path(), &cfg, &cert, &key.serialize_pem(), t0()).unwrap();
    assert_eq!(ca.root_pem(), cert);
    assert!(ca.imported());
    assert_eq!(mode(&dir.path().join("root.key")), 0o600);

    let status = ca.status(t0());
    assert!(status.imported);
    assert_eq!(status.root.subject, "CN=Example Corp Root");
    // The intermediate ends with the operator's root, not 5 years on.
    assert_eq!(status.intermediate.not_after, status.root.not_after);

    let leaf = ca.issue(&strings(&["api.vm.local"]), &[], t0()).unwrap();
    common::verify(&leaf.chain_pem, &cert, "api.vm.local", t0() + DAY).unwrap();
    assert!(leaf.fullchain_pem.ends_with(&cert));

    // Reopening keeps it; importing it again opens it; another CA is refused.
    let reopened = Authority::open_or_create(dir.path(), &cfg, t0() + DAY).unwrap();
    assert_eq!(reopened.fingerprint(), ca.fingerprint());
    assert!(reopened.imported());
    let again = Authority::import(dir.path(), &cfg, &cert, &key.serialize_pem(), t0()).unwrap();
    assert_eq!(again.intermediate_pem(), ca.intermediate_pem());
    let (other, other_key) = operator_ca();
    let err =
        Authority::import(dir.path(), &cfg, &other, &other_key.serialize_pem(), t0()).unwrap_err();
    assert!(matches!(err, Error::CaExists { .. }), "{err:?}");
}

#[test]
fn import_refuses_a_foreign_key_a_server_certificate_and_an_existing_ca() {
    let (cert, _) = operator_ca();
    let (_, other_key) = operator_ca();
    let dir = tempfile::tempdir().unwrap();
    let cfg = CaConfig::new("vm.local");

    let err =
        Authority::import(dir.path(), &cfg, &cert, &other_key.serialize_pem(), t0()).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    assert!(!dir.path().join("root.pem").exists());

    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(strings(&["host.example.com"]))
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let err = Authority::import(
        dir.path(),
        &cfg,
        &server.pem(),
        &server_key.serialize_pem(),
        t0(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidCaCert { .. }), "{err:?}");

    // A key in SEC1 form: the error says how to convert it.
    let (cert, key) = operator_ca();
    let sec1 = sec1_of(&key);
    let err = Authority::import(dir.path(), &cfg, &cert, &sec1, t0()).unwrap_err();
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");

    // Turtle's own CA is there: importing is refused.
    authority(dir.path());
    let (cert, key) = operator_ca();
    let err = Authority::import(dir.path(), &cfg, &cert, &key.serialize_pem(), t0()).unwrap_err();
    assert!(matches!(err, Error::CaExists { .. }), "{err:?}");
}

/// The key as `BEGIN EC PRIVATE KEY` (what `openssl ecparam -genkey` writes): the
/// SEC1 structure sits inside the PKCS#8 one, as its OCTET STRING.
fn sec1_of(key: &KeyPair) -> String {
    let pkcs8 = key.serialize_der();
    let sec1 = x509_parser::der_parser::parse_der(&pkcs8)
        .map(|(_, obj)| obj)
        .unwrap()
        .as_sequence()
        .unwrap()[2]
        .as_slice()
        .unwrap()
        .to_vec();
    pem::encode(&pem::Pem::new("EC PRIVATE KEY", sec1))
}

#[test]
fn authority_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Authority>();
}
