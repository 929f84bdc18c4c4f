//! Turtle's certificates in real TLS: a tokio-rustls server presents a leaf's chain,
//! a rustls client that trusts only Turtle's root connects. The name constraints are
//! checked by the client, not only by `issue`.

mod common;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use common::{DAY, authority, handshake, is_name_constraint_violation, strings, t0, verify};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use turtle_certs::{Authority, CaConfig, Error};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn handshake_succeeds_for_every_name_and_address_of_the_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let leaf = ca
        .issue(
            &strings(&["api.vm.local", "vm.local", "*.apps.vm.local"]),
            &[ip("127.0.0.1")],
            t0(),
        )
        .unwrap();
    let now = t0() + DAY;
    for name in [
        "api.vm.local",
        "vm.local",
        "shop.apps.vm.local",
        "127.0.0.1",
    ] {
        handshake(&leaf.chain_pem, &leaf.key_pem, ca.root_pem(), name, now)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in ["registry.vm.local", "a.b.apps.vm.local", "10.0.0.5"] {
        let err = handshake(&leaf.chain_pem, &leaf.key_pem, ca.root_pem(), name, now)
            .await
            .expect_err(name);
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{name}: {err:?}"
        );
    }
}

#[tokio::test]
async fn handshake_fails_once_the_leaf_has_expired() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let leaf = ca.issue(&strings(&["api.vm.local"]), &[], t0()).unwrap();
    let err = handshake(
        &leaf.chain_pem,
        &leaf.key_pem,
        ca.root_pem(),
        "api.vm.local",
        t0() + 91 * DAY,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
        ),
        "{err:?}"
    );
}

/// rcgen's issuer for a CA certificate and key stored in the CA directory.
fn issuer_from_files(dir: &Path, cert: &str, key: &str) -> Issuer<'static, KeyPair> {
    let cert = std::fs::read_to_string(dir.join(cert)).unwrap();
    let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join(key)).unwrap()).unwrap();
    Issuer::from_ca_cert_pem(&cert, key).unwrap()
}

/// A leaf signed by `issuer` directly, past every check of `Authority::issue`.
fn rogue_leaf(issuer: &Issuer<'_, KeyPair>, names: &[&str], ips: &[IpAddr]) -> (String, String) {
    let mut params = CertificateParams::new(strings(names)).unwrap();
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
    params.not_before = time::OffsetDateTime::from(t0());
    params.not_after = time::OffsetDateTime::from(t0() + 30 * DAY);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn client_rejects_names_outside_the_constraints() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let intermediate = issuer_from_files(dir.path(), "intermediate.pem", "intermediate.key");
    let now = t0() + DAY;

    // Control: the same path signs a permitted name, and the client takes it.
    let (cert, key) = rogue_leaf(&intermediate, &["api.vm.local"], &[]);
    let chain = format!("{cert}{}", ca.intermediate_pem());
    handshake(&chain, &key, ca.root_pem(), "api.vm.local", now)
        .await
        .unwrap();

    let (cert, key) = rogue_leaf(&intermediate, &["evil.example.com"], &[]);
    let chain = format!("{cert}{}", ca.intermediate_pem());
    let err = handshake(&chain, &key, ca.root_pem(), "evil.example.com", now)
        .await
        .unwrap_err();
    assert!(is_name_constraint_violation(&err), "{err:?}");

    let (cert, key) = rogue_leaf(&intermediate, &[], &[ip("8.8.8.8")]);
    let chain = format!("{cert}{}", ca.intermediate_pem());
    let err = handshake(&chain, &key, ca.root_pem(), "8.8.8.8", now)
        .await
        .unwrap_err();
    assert!(is_name_constraint_violation(&err), "{err:?}");

    // And `issue` does not sign them in the first place.
    let err = ca
        .issue(&strings(&["api.vm.local", "evil.example.com"]), &[], t0())
        .unwrap_err();
    assert!(matches!(err, Error::NamesOutsideDomain { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("evil.example.com")
            && message.contains("vm.local")
            && !message.contains("api.vm.local,"),
        "{message}"
    );
    let err = ca
        .issue(&strings(&["api.vm.local"]), &[ip("8.8.8.8")], t0())
        .unwrap_err();
    assert!(err.to_string().contains("8.8.8.8"), "{err}");
}

#[test]
fn root_and_intermediate_both_carry_critical_name_constraints() {
    use x509_parser::extensions::GeneralName;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = CaConfig::new("vm.local");
    cfg.permitted_ips = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
    let ca = Authority::open_or_create(dir.path(), &cfg, t0()).unwrap();
    for pem in [ca.root_pem(), ca.intermediate_pem()] {
        let der = ::pem::parse(pem).unwrap().into_contents();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let constraints = cert.name_constraints().unwrap().expect("name constraints");
        assert!(constraints.critical);
        let permitted: Vec<String> = constraints
            .value
            .permitted_subtrees
            .as_ref()
            .unwrap()
            .iter()
            .map(|subtree| match &subtree.base {
                GeneralName::DNSName(name) => format!("dns {name}"),
                GeneralName::IPAddress(bytes) => format!("ip {bytes:02x?}"),
                other => format!("{other:?}"),
            })
            .collect();
        let mut v6 = vec![0xfdu8];
        v6.extend([0u8; 15]);
        v6.push(0xff);
        v6.extend([0u8; 15]);
        assert_eq!(
            permitted,
            [
                "dns vm.local".to_string(),
                format!("ip {:02x?}", [10u8, 0, 0, 0, 255, 0, 0, 0]),
                format!("ip {v6:02x?}"),
            ]
        );
        assert!(constraints.value.excluded_subtrees.is_none());
    }
}

#[test]
fn the_roots_own_constraints_hold_under_an_unconstrained_intermediate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let root = issuer_from_files(dir.path(), "root.pem", "root.key");

    // An intermediate without name constraints, signed with the root's key.
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "unconstrained intermediate");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.not_before = time::OffsetDateTime::from(t0());
    params.not_after = time::OffsetDateTime::from(t0() + 365 * DAY);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &root).unwrap();
    let rogue_intermediate = Issuer::new(params, key);
    let now = t0() + DAY;

    let (leaf, _) = rogue_leaf(&rogue_intermediate, &["api.vm.local"], &[]);
    verify(
        &format!("{leaf}{}", cert.pem()),
        ca.root_pem(),
        "api.vm.local",
        now,
    )
    .expect("a permitted name passes");
    let (leaf, _) = rogue_leaf(&rogue_intermediate, &["evil.example.com"], &[]);
    let err = verify(
        &format!("{leaf}{}", cert.pem()),
        ca.root_pem(),
        "evil.example.com",
        now,
    )
    .unwrap_err();
    assert!(is_name_constraint_violation(&err), "{err:?}");
}

#[tokio::test]
async fn an_imported_root_anchors_turtles_leaves() {
    let (ca_cert, ca_key) = operator_ca();
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::import(
        dir.path(),
        &CaConfig::new("corp.internal"),
        &ca_cert,
        &ca_key,
        t0(),
    )
    .unwrap();
    assert_eq!(ca.root_pem(), ca_cert);
    let leaf = ca
        .issue(&strings(&["git.corp.internal"]), &[ip("127.0.0.1")], t0())
        .unwrap();
    for name in ["git.corp.internal", "127.0.0.1"] {
        handshake(&leaf.chain_pem, &leaf.key_pem, &ca_cert, name, t0() + DAY)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The operator's root permits anything; Turtle's intermediate still does not.
    let intermediate = issuer_from_files(dir.path(), "intermediate.pem", "intermediate.key");
    let (cert, key) = rogue_leaf(&intermediate, &["evil.example.com"], &[]);
    let chain = format!("{cert}{}", ca.intermediate_pem());
    let err = handshake(&chain, &key, &ca_cert, "evil.example.com", t0() + DAY)
        .await
        .unwrap_err();
    assert!(is_name_constraint_violation(&err), "{err:?}");
}

/// An operator's CA made with rcgen: unconstrained, its own subject.
fn operator_ca() -> (String, String) {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Example Corp");
    dn.push(DnType::CommonName, "Example Corp Root");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time::OffsetDateTime::from(t0() - 365 * DAY);
    params.not_after = time::OffsetDateTime::from(t0() + 3650 * DAY);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// OpenSSL (what curl and most containers use) agrees: it checks a CN that looks
/// like a host name against the constraints, which an address-only leaf must survive.
#[test]
fn openssl_verifies_leaves_and_rejects_rogue_ones() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: no openssl binary");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path());
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let root = dir.path().join("root.pem");
    let intermediate = dir.path().join("intermediate.pem");
    // OpenSSL checks validity against the real clock, so these leaves start now.
    let now = std::time::SystemTime::now();
    let openssl_verify = |leaf: &Path, check: &[&str]| {
        let out = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&root)
            .arg("-untrusted")
            .arg(&intermediate)
            .args(check)
            .arg(leaf)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let named = ca
        .issue(&strings(&["api.vm.local"]), &[ip("10.0.0.5")], now)
        .unwrap();
    let named = write("named.pem", &named.cert_pem);
    let (ok, out) = openssl_verify(&named, &["-verify_hostname", "api.vm.local"]);
    assert!(ok, "{out}");
    let address_only = ca.issue(&[], &[ip("10.0.0.5")], now).unwrap();
    let address_only = write("address.pem", &address_only.cert_pem);
    let (ok, out) = openssl_verify(&address_only, &["-verify_ip", "10.0.0.5"]);
    assert!(ok, "{out}");

    let issuer = issuer_from_files(dir.path(), "intermediate.pem", "intermediate.key");
    let mut params = CertificateParams::new(strings(&["evil.example.com"])).unwrap();
    params.not_before = time::OffsetDateTime::from(now);
    params.not_after = time::OffsetDateTime::from(now + DAY);
    let cert = params
        .signed_by(&KeyPair::generate().unwrap(), &issuer)
        .unwrap();
    let evil = write("evil.pem", &cert.pem());
    let (ok, out) = openssl_verify(&evil, &[]);
    assert!(!ok && out.contains("permitted subtree violation"), "{out}");
}
