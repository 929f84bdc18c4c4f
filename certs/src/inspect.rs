//! Reading certificates back: PEM blocks, and the facts the rest of the crate needs
//! from a certificate (names, validity, fingerprint, public key).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

/// What a certificate says, in the crate's terms.
#[derive(Debug, Clone)]
pub(crate) struct CertFacts {
    pub der: Vec<u8>,
    pub subject: String,
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub serial: String,
    pub fingerprint: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub is_ca: bool,
    /// The key usage extension allows signing certificates (or there is none).
    pub may_sign_certs: bool,
    /// The subject public key (the contents of the BIT STRING).
    pub public_key: Vec<u8>,
}

/// Parses one DER certificate.
pub(crate) fn parse(der: &[u8]) -> Result<CertFacts, String> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate ({e})"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the certificate".into());
    }
    let mut names = Vec::new();
    let mut ips = Vec::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subject alternative names ({e})"))?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => names.push(n.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ips.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let may_sign_certs = match cert
        .key_usage()
        .map_err(|e| format!("bad key usage ({e})"))?
    {
        Some(ku) => ku.value.key_cert_sign(),
        None => true,
    };
    let validity = cert.validity();
    Ok(CertFacts {
        der: der.to_vec(),
        subject: cert.subject().to_string(),
        names,
        ips,
        serial: hex_pairs(cert.raw_serial()),
        fingerprint: fingerprint(der),
        not_before: validity.not_before.to_datetime().into(),
        not_after: validity.not_after.to_datetime().into(),
        is_ca: cert.is_ca(),
        may_sign_certs,
        public_key: cert.public_key().subject_public_key.data.to_vec(),
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| Ipv4Addr::from(b).into()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| Ipv6Addr::from(b).into()),
        _ => None,
    }
}

/// The DER of every CERTIFICATE block in `pem`, in order (other blocks are skipped).
pub(crate) fn pem_certs(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()).map_err(|e| format!("bad PEM ({e})")))
        .collect()
}

/// Parses the one certificate in `pem`.
pub(crate) fn parse_pem_single(pem: &str) -> Result<CertFacts, String> {
    match pem_certs(pem)?.as_slice() {
        [der] => parse(der),
        [] => Err("no CERTIFICATE block in the PEM".into()),
        more => Err(format!(
            "{} CERTIFICATE blocks where one is expected",
            more.len()
        )),
    }
}

/// PEM text of a DER certificate, with `\n` line ends.
pub(crate) fn to_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// PEM texts one after the other, each ending in a line end.
pub(crate) fn concat(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push_str(part);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The DNS names (subject alternative names) of a DER certificate.
pub fn dns_names(der: &[u8]) -> Result<Vec<String>, String> {
    parse(der).map(|c| c.names)
}

/// The fingerprint of the one certificate in `pem` (a root as `turtle ca
/// export` prints it): SHA-256 of its DER, as [`crate::Authority::fingerprint`]
/// writes it; the pin a device checks its parent's root against.
pub fn pem_fingerprint(pem: &str) -> Result<String, String> {
    match pem_certs(pem)?.as_slice() {
        [der] => Ok(fingerprint(der)),
        [] => Err("no CERTIFICATE block in the PEM".into()),
        more => Err(format!(
            "{} CERTIFICATE blocks where one is expected",
            more.len()
        )),
    }
}

/// SHA-256 of the DER, as uppercase hex pairs joined by ':'.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    hex_pairs(&Sha256::digest(der))
}

fn hex_pairs(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_pairs_are_uppercase_and_joined() {
        assert_eq!(hex_pairs(&[0x0a, 0xff, 0x10]), "0A:FF:10");
        assert_eq!(fingerprint(b"").len(), 32 * 3 - 1);
    }

    #[test]
    fn pem_without_certificates_is_an_error() {
        assert!(parse_pem_single("").is_err());
        assert!(
            parse_pem_single("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
    }
}
