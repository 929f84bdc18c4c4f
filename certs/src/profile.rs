//! The certificate profiles: what goes into a root, an intermediate and a leaf.

use std::net::IpAddr;
use std::time::SystemTime;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
    PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::IpNet;
use crate::{Error, timefmt};

/// A new ECDSA P-256 key (browsers do not take Ed25519).
pub(crate) fn new_key(what: &'static str) -> Result<KeyPair, Error> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| Error::sign(what, e))
}

/// Random bytes from the system's generator.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random generator works");
    bytes
}

/// A random positive 16-byte serial number.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = random();
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// The name constraints of the root and the intermediate: the domain as a DNS subtree
/// (the domain and every name under it) and the permitted ip ranges. Name forms not
/// listed (e-mail, URI, directory names) are left unconstrained.
fn name_constraints(domain: &str, ips: &[IpNet]) -> NameConstraints {
    let mut permitted = vec![GeneralSubtree::DnsName(domain.to_string())];
    permitted.extend(ips.iter().map(|net| {
        GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(net.addr(), net.prefix()))
    }));
    NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: Vec::new(),
    }
}

fn base(common_name: &str, not_before: SystemTime, not_after: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Turtle");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.serial_number = Some(random_serial());
    params.not_before = timefmt::to_offset(not_before);
    params.not_after = timefmt::to_offset(not_after);
    params
}

/// A standalone token signer (see [`crate::new_signer`]): outside the CA, no
/// CA rights, signatures only.
pub(crate) fn signer(
    common_name: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> CertificateParams {
    let mut params = base(common_name, not_before, not_after);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
    params
}

/// The self-signed root. `tag` tells this CA apart from other boxes' CAs for the
/// same domain in a trust store that holds several.
pub(crate) fn root(
    domain: &str,
    ips: &[IpNet],
    tag: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> CertificateParams {
    let mut params = base(
        &format!("Turtle Root CA {domain} {tag}"),
        not_before,
        not_after,
    );
    // Root -> intermediate -> leaf: one CA below the root at most.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(name_constraints(domain, ips));
    params
}

/// The intermediate that signs every leaf; signed by the root (Turtle's or the
/// operator's).
pub(crate) fn intermediate(
    domain: &str,
    ips: &[IpNet],
    tag: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> CertificateParams {
    let mut params = base(
        &format!("Turtle Intermediate CA {domain} {tag}"),
        not_before,
        not_after,
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // An EKU on a CA limits what its leaves may be used for (TLS only).
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.name_constraints = Some(name_constraints(domain, ips));
    params.use_authority_key_identifier_extension = true;
    params
}

/// A TLS server (and client) certificate for `names` and `ips`, which the caller has
/// checked and made canonical. CN is the first name.
pub(crate) fn leaf(
    names: &[String],
    ips: &[IpAddr],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, Error> {
    // OpenSSL checks a CN that looks like a host name against the DNS name
    // constraints when there is no DNS name in the SANs, and `10.0.0.5` looks like one:
    // an address-only leaf gets a CN that does not.
    let common_name = match (names.first(), ips.first()) {
        (Some(name), _) => name.clone(),
        (None, Some(ip)) => format!("Turtle leaf for {ip}"),
        (None, None) => return Err(Error::NoNames),
    };
    let mut params = base(&common_name, not_before, not_after);
    params.distinguished_name.remove(DnType::OrganizationName);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    for name in names {
        let ia5 = name.clone().try_into().map_err(|e| Error::InvalidName {
            name: name.clone(),
            reason: format!("{e}"),
        })?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    Ok(params)
}
