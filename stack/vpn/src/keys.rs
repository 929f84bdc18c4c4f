//! WireGuard keys: 32 bytes, written as 64 hex characters (Turtle's secret
//! files, the UAPI) or as 44 characters of standard base64 (the api's JSON,
//! `wg` tools). Parsing accepts either; each output says which it writes.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use boringtun::x25519;

/// A WireGuard key (private or public): 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub [u8; 32]);

/// Why a text is not a WireGuard key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "not a WireGuard key: expected 64 hex characters or 44 characters of base64, got {0} characters"
    )]
    Length(usize),
    #[error("not a WireGuard key: 64 characters but not hex")]
    Hex,
    #[error("not a WireGuard key: 44 characters but not base64 of 32 bytes")]
    Base64,
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the key file {path}: {source}")]
    Parse { path: String, source: KeyError },
}

impl Key {
    /// A new random private key (from the OS's random source, via ring).
    pub fn generate() -> Key {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the OS random source failed");
        // Clamp the way `wg genkey` does; x25519 clamps anyway, so the key
        // file then holds exactly what is used.
        bytes[0] &= 248;
        bytes[31] = (bytes[31] & 127) | 64;
        Key(bytes)
    }

    /// Reads a key from a file (hex or base64, surrounding whitespace ignored).
    pub fn from_file(path: &Path) -> Result<Key, KeyFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        text.parse().map_err(|source| KeyFileError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// The public key of this private key.
    pub fn public(&self) -> Key {
        Key(x25519::PublicKey::from(&self.secret()).to_bytes())
    }

    /// This private key as boringtun's secret.
    pub fn secret(&self) -> x25519::StaticSecret {
        x25519::StaticSecret::from(self.0)
    }

    /// This public key as boringtun's type.
    pub fn as_public(&self) -> x25519::PublicKey {
        x25519::PublicKey::from(self.0)
    }

    /// 64 lowercase hex characters (the UAPI's form).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard base64 with padding (the api's and `wg`'s form).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl std::str::FromStr for Key {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Key, KeyError> {
        let s = s.trim();
        let mut bytes = [0u8; 32];
        match s.len() {
            64 => hex::decode_to_slice(s, &mut bytes).map_err(|_| KeyError::Hex)?,
            44 => {
                let decoded = STANDARD.decode(s).map_err(|_| KeyError::Base64)?;
                bytes = decoded.try_into().map_err(|_| KeyError::Base64)?;
            }
            n => return Err(KeyError::Length(n)),
        }
        Ok(Key(bytes))
    }
}

/// Public keys print as base64; nothing prints a private key by accident
/// because `Debug` shows only the first characters.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7748 section 6.1: Alice's private and public key.
    const ALICE_PRIVATE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

    #[test]
    fn public_key_matches_the_rfc_vector() {
        let private: Key = ALICE_PRIVATE.parse().unwrap();
        assert_eq!(private.public().to_hex(), ALICE_PUBLIC);
    }

    #[test]
    fn hex_and_base64_parse_to_the_same_key() {
        let k: Key = ALICE_PUBLIC.parse().unwrap();
        let b64 = k.to_base64();
        assert_eq!(b64.len(), 44);
        assert_eq!(b64.parse::<Key>().unwrap(), k);
        assert_eq!(format!("  {ALICE_PUBLIC}\n").parse::<Key>().unwrap(), k);
        assert_eq!(k.to_string(), b64);
    }

    #[test]
    fn bad_keys_say_what_is_wrong() {
        assert_eq!("abc".parse::<Key>(), Err(KeyError::Length(3)));
        assert_eq!("z".repeat(64).parse::<Key>(), Err(KeyError::Hex));
        assert_eq!("!".repeat(44).parse::<Key>(), Err(KeyError::Base64));
        assert!(
            KeyError::Length(3)
                .to_string()
                .contains("64 hex characters or 44 characters of base64")
        );
    }

    #[test]
    fn generated_keys_differ_and_are_clamped() {
        let (a, b) = (Key::generate(), Key::generate());
        assert_ne!(a, b);
        assert_eq!(a.0[0] & 7, 0);
        assert_eq!(a.0[31] & 128, 0);
        assert_eq!(a.0[31] & 64, 64);
    }

    #[test]
    fn debug_does_not_show_the_whole_key() {
        let k: Key = ALICE_PRIVATE.parse().unwrap();
        assert_eq!(format!("{k:?}"), "Key(77076d0a…)");
    }
}
