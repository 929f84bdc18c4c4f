//! Registry tokens made outside the api, to show the registry refuses
//! what the api did not sign.

use std::path::Path;

use serde_json::json;

/// A registry token with the api's claims (issuer, audience, pull and
/// push), signed with the key in `key` (PKCS#8 PEM), the certificates of
/// `chain` in `x5c`.
pub(crate) fn forge_token(key: &Path, chain: &Path, service: &str, repository: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let chain: Vec<String> = pem_blocks(&std::fs::read_to_string(chain).unwrap())
        .iter()
        .map(|der| STANDARD.encode(der))
        .collect();
    let key_der = pem_blocks(&std::fs::read_to_string(key).unwrap()).remove(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": chain});
    let claims = json!({
        "iss": "turtle-api", "sub": "admin", "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": "forged",
        "access": [{"type": "repository", "name": repository, "actions": ["pull", "push"]}],
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rng = ring::rand::SystemRandom::new();
    let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &key_der,
        &rng,
    )
    .unwrap();
    let sig = signer.sign(&rng, input.as_bytes()).unwrap();
    format!("Bearer {input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// The DER contents of each PEM block in `text`.
pub(crate) fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    text.split("-----BEGIN ")
        .skip(1)
        .map(|block| {
            let body: String = block
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        })
        .collect()
}
