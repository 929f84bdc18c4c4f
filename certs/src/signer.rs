//! A standalone signing key with its self-signed certificate: for tokens
//! whose verifier must trust exactly one key (the registry's token
//! authentication), not everything Turtle's CA ever issued.
//!
//! A verifier given Turtle's root would accept a token signed by any leaf
//! under it (a `turtle ca issue` leaf, another service's TLS key), and the
//! token's claims are whatever the signer wrote. A certificate outside the
//! CA, trusted alone, narrows that to the one key.

use std::time::{Duration, SystemTime};

use crate::{Error, profile};

/// How long a signer's certificate is valid: verifiers read it once, so it
/// outlives the box.
pub const SIGNER_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 3600);

/// A P-256 key (PKCS#8 PEM) and its self-signed certificate (PEM), named
/// `common_name`, valid from an hour before `now`.
pub fn new_signer(common_name: &str, now: SystemTime) -> Result<(String, String), Error> {
    let key = profile::new_key("signer")?;
    let cert = profile::signer(
        common_name,
        now - Duration::from_secs(3600),
        now + SIGNER_LIFETIME,
    )
    .self_signed(&key)
    .map_err(|e| Error::sign("signer", e))?;
    Ok((key.serialize_pem(), cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signer_is_self_signed_and_its_key_matches() {
        let (key, cert) = new_signer("registry token signer", SystemTime::now()).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let der = pem::parse(&cert).unwrap();
        let (_, x) = x509_parser::parse_x509_certificate(der.contents()).unwrap();
        assert_eq!(x.subject(), x.issuer());
        assert!(x.verify_signature(None).is_ok());
        let kp = rcgen::KeyPair::from_pem(&key).unwrap();
        assert_eq!(
            kp.public_key_raw(),
            x.public_key().subject_public_key.data.as_ref()
        );
    }
}
