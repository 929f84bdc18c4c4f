//! The random keys the API hands out: device and provisioning keys are 32
//! random bytes in hex, stored only as their SHA-256. (The shared tokens read
//! from the supervisor's secret files are `turtle_stack_common::Token`.)

use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

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
    fn keys_are_64_hex_characters_and_differ() {
        let (a, b) = (new_key(), new_key());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
