//! The bearer token a remote push presents: a file the box makes once and
//! keeps (mode 0600), read again at every request, so `turtle remote token
//! --rotate` takes effect at once without restarting the daemon.
//!
//! The token is 32 random bytes as 64 lowercase hex characters (how Turtle
//! writes every random secret). A presented token is compared digest to
//! digest (SHA-256 of each) without an early exit, so the time a check takes
//! tells neither the token's length nor its first differing byte.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where the token lives under the state directory, unless
/// `remote.token_file` says otherwise.
pub const DEFAULT_DIR: &str = "remote";
pub const DEFAULT_FILE: &str = "token";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the remote token file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the remote token file {} is readable by others (mode {mode:04o}): chmod 600 {}",
        path.display(),
        path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    #[error(
        "the remote token file {} is empty: remove it and `turtle remote token` makes a new one",
        path.display()
    )]
    Empty { path: PathBuf },
    #[error("the remote token's directory: {0}")]
    Dir(turtle_certs::Error),
}

/// The token file of a box.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
    /// The state directory, when the file is the default one under it (its
    /// directory is then made 0700 by Turtle, or refused).
    state_dir: Option<PathBuf>,
}

impl TokenFile {
    /// `configured` (`remote.token_file`), else `STATE_DIR/remote/token`.
    pub fn new(state_dir: &Path, configured: Option<&Path>) -> Self {
        match configured {
            Some(p) => Self {
                path: p.to_path_buf(),
                state_dir: None,
            },
            None => Self {
                path: state_dir.join(DEFAULT_DIR).join(DEFAULT_FILE),
                state_dir: Some(state_dir.to_path_buf()),
            },
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The token, made first when the file is missing. Two processes
    /// making it at once end with the same token: the file is linked into
    /// place only when none is there.
    pub fn ensure(&self) -> Result<String, TokenError> {
        match self.read() {
            Err(TokenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            }
            other => return other,
        }
        self.make_dir()?;
        let tmp = self.write_temp(&random_hex())?;
        let linked = std::fs::hard_link(&tmp, &self.path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(self.io(source)),
        }
        self.read()
    }

    /// Replaces the token with a new one; the old one stops working at once.
    pub fn rotate(&self) -> Result<String, TokenError> {
        self.make_dir()?;
        let tmp = self.write_temp(&random_hex())?;
        std::fs::rename(&tmp, &self.path).map_err(|source| self.io(source))?;
        self.read()
    }

    /// The token as the file holds it (whitespace trimmed); refuses a file
    /// group or others may read, as ssh refuses such keys.
    pub fn read(&self) -> Result<String, TokenError> {
        let meta = std::fs::metadata(&self.path).map_err(|source| self.io(source))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TokenError::Mode {
                path: self.path.clone(),
                mode,
            });
        }
        let text = std::fs::read_to_string(&self.path).map_err(|source| self.io(source))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty {
                path: self.path.clone(),
            });
        }
        Ok(token.to_string())
    }

    /// Whether `presented` is the token the file holds now.
    pub fn matches(&self, presented: &str) -> Result<bool, TokenError> {
        Ok(same(&self.read()?, presented))
    }

    fn make_dir(&self) -> Result<(), TokenError> {
        if let Some(state) = &self.state_dir {
            std::fs::create_dir_all(state).map_err(|source| self.io(source))?;
            let dir = self.path.parent().expect("the default path has a parent");
            turtle_certs::own_dir(state, dir, 0o700).map_err(TokenError::Dir)?;
        }
        Ok(())
    }

    fn write_temp(&self, token: &str) -> Result<PathBuf, TokenError> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| DEFAULT_FILE.into());
        let tmp = self
            .path
            .with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let io = |source| TokenError::Io {
            path: tmp.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(format!("{token}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(tmp)
    }

    fn io(&self, source: std::io::Error) -> TokenError {
        TokenError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// Compares two tokens by their digests, without an early exit.
fn same(expected: &str, presented: &str) -> bool {
    let a: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
    let b: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_kept_private_and_rotated() {
        let tmp = tempfile::tempdir().unwrap();
        let file = TokenFile::new(tmp.path(), None);
        let token = file.ensure().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(file.ensure().unwrap(), token, "an existing token is kept");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(mode(file.path().parent().unwrap()), 0o700);
        assert!(file.matches(&token).unwrap());
        assert!(!file.matches(&token[..63]).unwrap());
        assert!(!file.matches("").unwrap());

        let new = file.rotate().unwrap();
        assert_ne!(new, token);
        assert!(
            !file.matches(&token).unwrap(),
            "the old token stops working"
        );
        assert!(file.matches(&new).unwrap());

        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = file.read().unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_configured_file_is_used_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("given");
        std::fs::write(&path, "  s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = TokenFile::new(tmp.path(), Some(&path));
        assert_eq!(file.ensure().unwrap(), "s3cret");
        assert!(file.matches("s3cret").unwrap());
        assert!(!tmp.path().join(DEFAULT_DIR).exists());
    }
}
