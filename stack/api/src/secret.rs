//! Secrets: the shared tokens read from files, and the random keys the API hands out.
//!
//! A token is kept only as its SHA-256 and a presented token is compared digest to
//! digest, without an early exit: the time a comparison takes says nothing about the
//! token (ring's `constant_time` module is deprecated and makes no promise, so it is
//! not used). Device and provisioning keys are 32 random bytes in hex, stored only
//! as their SHA-256.

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// Reads a secret file (`/run/turtle/secrets/<name>`), trimming whitespace.
pub fn read_file(flag: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {}: {e}: the supervisor mounts the stack's secrets under \
             /run/turtle/secrets; point {flag} at the file",
            path.display()
        )
    })?;
    let text = text.trim();
    if text.is_empty() {
        anyhow::bail!(
            "{flag} {} is empty: it must hold the secret (64 hex characters)",
            path.display()
        );
    }
    Ok(text.to_string())
}

/// A shared token (admin, builder, vpn), kept as its digest.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn new(secret: &str) -> Token {
        Token {
            digest: sha256(secret),
        }
    }

    /// Whether `presented` is this token.
    pub fn matches(&self, presented: &str) -> bool {
        equal_digests(&self.digest, &sha256(presented))
    }
}

/// Compares two digests without stopping at the first difference.
fn equal_digests(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of a string.
pub fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A new random key: 32 bytes from the system's generator, in lowercase hex.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random generator works");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        let t = Token::new("abc");
        assert!(t.matches("abc"));
        assert!(!t.matches("abd"));
        assert!(!t.matches(""));
        assert!(!t.matches("abc "));
    }

    #[test]
    fn keys_are_64_hex_characters_and_differ() {
        let (a, b) = (new_key(), new_key());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn secret_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(read_file("--admin-token-file", &path).unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        let e = read_file("--admin-token-file", &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is empty"), "{e}");
        let e = read_file("--admin-token-file", &dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--admin-token-file") && e.contains("missing"),
            "{e}"
        );
    }
}
