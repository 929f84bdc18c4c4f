//! Signing the registry's bearer tokens: compact JWS with ES256 (ECDSA P-256,
//! SHA-256, the fixed 64-byte `r || s` signature), base64url without padding.
//!
//! The header carries `x5c`: the standard (padded) base64 DER of the leaf and its
//! intermediate from `--token-chain`, so the registry verifies tokens against
//! Turtle's root alone (`rootcertbundle`) and needs no copy of the key. A
//! self-signed certificate in the chain file (the root of `fullchain.pem`) is left
//! out of `x5c`: the registry must take the root from its own bundle.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde::Serialize;

/// A token's header (fields in alphabetical order, as the header has always
/// been written).
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    x5c: &'a [String],
}

/// The key and chain tokens are signed with.
pub struct Signer {
    key: EcdsaKeyPair,
    x5c: Vec<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("x5c", &self.x5c.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads `--token-key` (PKCS#8 PEM `PRIVATE KEY`, ECDSA P-256) and
    /// `--token-chain` (PEM certificates, leaf first) and checks that the key
    /// belongs to the leaf.
    pub fn load(key_path: &Path, chain_path: &Path) -> anyhow::Result<Signer> {
        let key_pem = std::fs::read(key_path)
            .map_err(|e| anyhow::anyhow!("--token-key {}: {e}", key_path.display()))?;
        let chain_pem = std::fs::read(chain_path)
            .map_err(|e| anyhow::anyhow!("--token-chain {}: {e}", chain_path.display()))?;
        Signer::from_pem(&key_pem, &chain_pem).map_err(|e| {
            anyhow::anyhow!(
                "--token-key {} / --token-chain {}: {e}",
                key_path.display(),
                chain_path.display()
            )
        })
    }

    /// As [`Signer::load`], from the PEM texts.
    pub fn from_pem(key_pem: &[u8], chain_pem: &[u8]) -> anyhow::Result<Signer> {
        let key_der = PrivatePkcs8KeyDer::from_pem_slice(key_pem).map_err(|e| {
            anyhow::anyhow!("the key is not a PKCS#8 PEM (\"BEGIN PRIVATE KEY\"): {e}")
        })?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            key_der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| anyhow::anyhow!("the key is not an ECDSA P-256 key: {e}"))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("the chain is not PEM certificates: {e}"))?;
        let Some(leaf) = certs.first() else {
            anyhow::bail!("the chain holds no certificate: it must start with the leaf");
        };
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| anyhow::anyhow!("the first certificate does not parse: {e}"))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            anyhow::bail!(
                "the key does not belong to the first certificate of the chain: give the \
                 leaf's own key.pem and a chain that starts with that leaf"
            );
        }
        let mut x5c = vec![STANDARD.encode(leaf)];
        for cert in &certs[1..] {
            let (_, parsed) = x509_parser::parse_x509_certificate(cert)
                .map_err(|e| anyhow::anyhow!("a certificate of the chain does not parse: {e}"))?;
            if parsed.subject().as_raw() != parsed.issuer().as_raw() {
                x5c.push(STANDARD.encode(cert));
            }
        }
        Ok(Signer { key, x5c, rng })
    }

    /// The `x5c` header: base64 (standard, padded) DER, leaf first.
    pub fn x5c(&self) -> &[String] {
        &self.x5c
    }

    /// `header.claims.signature` of the claims.
    pub fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let header = Header {
            alg: "ES256",
            typ: "JWT",
            x5c: &self.x5c,
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|e| anyhow::anyhow!("signing a token failed: {e}"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}
