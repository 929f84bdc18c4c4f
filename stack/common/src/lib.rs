//! What the backend stack's own services (api, builder, vpn) share: reading
//! the secrets the supervisor mounts at `/run/turtle/secrets`, checking a
//! presented token against one of them, and stopping on SIGTERM or SIGINT.

use std::future::Future;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error(
        "cannot read the {what} file {} ({flag}): {source}: the supervisor mounts the stack's secrets under /run/turtle/secrets at `up`; point {flag} at the file",
        path.display()
    )]
    Read {
        what: String,
        flag: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the {what} file {} ({flag}) is empty: it must hold the secret", path.display())]
    Empty {
        what: String,
        flag: String,
        path: PathBuf,
    },
}

/// Reads the secret `what` (e.g. "admin token") from `path`, given by the
/// flag `flag`: surrounding whitespace trimmed, never empty.
pub fn read_secret(what: &str, flag: &str, path: &Path) -> Result<String, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        what: what.to_string(),
        flag: flag.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(SecretFileError::Empty {
            what: what.to_string(),
            flag: flag.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(text.to_string())
}

/// A shared token (admin, builder, vpn), kept as its SHA-256.
///
/// A presented token is hashed and compared digest to digest without an
/// early exit, so the time a check takes tells neither the token's length
/// nor its first differing byte (ring's `constant_time` is deprecated and
/// promises nothing, so it is not used).
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
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// Whether `presented` is this token.
    pub fn matches(&self, presented: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest
            .iter()
            .zip(&other)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

/// Installs the SIGTERM and SIGINT handlers now (so a signal that arrives
/// during start-up still stops the service cleanly) and returns a future
/// that completes at the first of them.
pub fn on_shutdown() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
            _ = int.recv() => tracing::info!("SIGINT: stopping"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves_and_do_not_show() {
        let t = Token::new("abc");
        assert!(t.matches("abc"));
        assert!(!t.matches("abd"));
        assert!(!t.matches(""));
        assert!(!t.matches("abc "));
        assert!(!format!("{t:?}").contains("abc"));
    }

    #[test]
    fn secret_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let read = |p: &Path| read_secret("admin token", "--admin-token-file", p);
        assert_eq!(read(&path).unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("is empty") && e.contains("admin token"), "{e}");
        let e = read(&dir.path().join("missing")).unwrap_err().to_string();
        assert!(
            e.contains("--admin-token-file") && e.contains("missing"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn sigterm_completes_the_shutdown_future() {
        let shutdown = on_shutdown().unwrap();
        let pid = std::process::id().to_string();
        // The workspace forbids unsafe code, so no libc::kill: use kill(1).
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(std::time::Duration::from_secs(10), shutdown)
            .await
            .expect("SIGTERM ends the wait");
    }
}
