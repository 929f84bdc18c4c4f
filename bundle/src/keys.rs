//! Signing keys and trusted public keys: their text forms, files and ids.
//!
//! - A public key is one token, `ed25519:<64 hex digits>`, as it appears in
//!   `turtle.yaml`'s `bundles.trusted_keys`, in a `.pub` file and on the
//!   command line's output.
//! - Its id is the first 16 hex digits of the SHA-256 of its 32 bytes: what
//!   errors and reports name.
//! - A secret key file holds `secret-ed25519:<64 hex digits>` (the seed);
//!   lines starting with `#` are comments. It is written 0600 and refused
//!   when group or others may read it, as ssh refuses such keys.
//!
//! The seed comes from ring's system random source (ring is the tree's one
//! crypto provider already); ed25519-dalek signs and verifies
//! (`verify_strict`: no malleable signatures, no small-order keys).

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use ring::rand::SecureRandom;
use sha2::{Digest, Sha256};

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "secret-ed25519:";
/// What a signature covers: this context, then the manifest's bytes. A key
/// used for bundles cannot have its signatures replayed as anything else.
pub const SIGNING_CONTEXT: &[u8] = b"turtle bundle manifest v1\n";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{text:?} is not a public key: it is `ed25519:` and 64 hex digits (what `turtle bundle keygen` prints)"
    )]
    PublicSyntax { text: String },
    #[error("{key} is not a valid Ed25519 public key")]
    NotAPoint { key: String },
    #[error(
        "{path}: not a turtle bundle secret key (a line `secret-ed25519:` and 64 hex digits, as `turtle bundle keygen` writes)"
    )]
    SecretSyntax { path: PathBuf },
    #[error("{path}: the secret key is readable by others (mode {mode:04o}): chmod 600 {path}")]
    SecretMode { path: PathBuf, mode: u32 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists: choose another name, or remove it first")]
    Exists { path: PathBuf },
    #[error("the system's random source failed")]
    Random,
}

/// A public key that may sign bundles.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| KeyError::NotAPoint {
                key: format!("{PUBLIC_PREFIX}{}", hex::encode(bytes)),
            })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The first 16 hex digits of the key's SHA-256.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }

    /// Whether `signature` is this key's over [`SIGNING_CONTEXT`] and `manifest`.
    pub fn verifies(&self, manifest: &[u8], signature: &[u8; 64]) -> bool {
        let message = [SIGNING_CONTEXT, manifest].concat();
        self.0
            .verify_strict(&message, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// Reads a `.pub` file: the key on a line, `#` comments.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let line = significant_lines(&text).next().unwrap_or("");
        line.parse().map_err(|e| match e {
            KeyError::PublicSyntax { .. } => KeyError::PublicSyntax {
                text: format!("{} (in {})", line, path.display()),
            },
            e => e,
        })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::PublicSyntax {
            text: s.to_string(),
        };
        let hex_part = s.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(bad)?;
        let bytes: [u8; 32] = hex::decode(hex_part)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        Self::from_bytes(&bytes)
    }
}

/// A key that signs bundles.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

/// The id of its public key, never the secret.
impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public().id())
    }
}

impl SecretKey {
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| KeyError::Random)?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// The key from its 32-byte seed (tests make fixed keys this way).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The signature over [`SIGNING_CONTEXT`] and `manifest`.
    pub fn sign(&self, manifest: &[u8]) -> [u8; 64] {
        self.0
            .sign(&[SIGNING_CONTEXT, manifest].concat())
            .to_bytes()
    }

    /// Reads a secret key file, refusing one others may read.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::SecretMode {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let bad = || KeyError::SecretSyntax {
            path: path.to_path_buf(),
        };
        let seed: [u8; 32] = significant_lines(&text)
            .next()
            .and_then(|l| l.strip_prefix(SECRET_PREFIX))
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        Ok(Self::from_seed(&seed))
    }

    /// Writes the secret key to `path` (0600) and the public key to
    /// `path.pub` (0644); refuses to replace either.
    pub fn write_files(&self, path: &Path) -> Result<PathBuf, KeyError> {
        let public_path = PathBuf::from(format!("{}.pub", path.display()));
        for p in [path, public_path.as_path()] {
            if p.symlink_metadata().is_ok() {
                return Err(KeyError::Exists {
                    path: p.to_path_buf(),
                });
            }
        }
        let public = self.public();
        let secret = format!(
            "# turtle bundle signing key {}: keep it secret; its public key is in {}\n{SECRET_PREFIX}{}\n",
            public.id(),
            public_path.display(),
            hex::encode(self.0.to_bytes())
        );
        write_new(path, 0o600, &secret)?;
        write_new(
            &public_path,
            0o644,
            &format!(
                "# turtle bundle public key {}: add it to bundles.trusted_keys in turtle.yaml\n{public}\n",
                public.id()
            ),
        )?;
        Ok(public_path)
    }
}

/// The public keys whose bundles are accepted; several, for rotation.
/// Empty: no keys are configured, and who signed a bundle is not checked
/// (its seal still is).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    keys: Vec<PublicKey>,
}

impl Trust {
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn trusts(&self, key: &PublicKey) -> bool {
        self.keys.contains(key)
    }

    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(PublicKey::id).collect()
    }
}

fn significant_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn write_new(path: &Path, mode: u32, text: &str) -> Result<(), KeyError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_path_buf(),
            }
        } else {
            KeyError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release.key");
        let key = SecretKey::generate().unwrap();
        let public_path = key.write_files(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = SecretKey::read_file(&path).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(PublicKey::read_file(&public_path).unwrap(), key.public());
        let text = key.public().to_string();
        assert_eq!(text.parse::<PublicKey>().unwrap(), key.public());
        let sig = key.sign(b"{}");
        assert!(key.public().verifies(b"{}", &sig));
        assert!(!key.public().verifies(b"{ }", &sig));

        let e = key.write_files(&path).unwrap_err();
        assert!(matches!(e, KeyError::Exists { .. }), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = SecretKey::read_file(&path).err().unwrap();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_bad_public_key_names_the_form() {
        for text in [
            "",
            "ed25519:abc",
            "rsa:00",
            &format!("ed25519:{}", "zz".repeat(32)),
        ] {
            let e = text.parse::<PublicKey>().unwrap_err();
            assert!(e.to_string().contains("64 hex digits"), "{text}: {e}");
        }
    }
}
