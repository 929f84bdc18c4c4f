//! Who may build: holders of the builder token or the admin token, sent as
//! `Authorization: Bearer <token>`.
//!
//! The tokens are read once at start (the supervisor writes the secret files
//! before it starts the stack; a new secret means a restart). A presented
//! token is compared in constant time: both sides are hashed with SHA-256 and
//! the digests compared without an early exit, so neither the length nor the
//! first differing byte of a secret shows in the response time. Both tokens are
//! always compared, so the time does not tell which one was tried either.

use std::fmt;
use std::path::{Path, PathBuf};

use axum::http::HeaderValue;
use sha2::{Digest, Sha256};

/// The tokens the builder accepts.
pub struct Tokens {
    builder: Secret,
    admin: Option<Secret>,
}

/// Who presented a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    Builder,
    Admin,
}

/// Why a request is refused (HTTP 401).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error(
        "missing credentials: send Authorization: Bearer <builder-token> \
         (`turtle secret builder-token` on the box prints it)"
    )]
    Missing,
    #[error(
        "the Authorization header is not `Bearer <token>`: send Authorization: Bearer <builder-token>"
    )]
    NotBearer,
    #[error(
        "the bearer token is not the builder token nor the admin token: \
         check it with `turtle secret builder-token` on the box"
    )]
    Invalid,
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "cannot read the {what} file {path}: {source} (the supervisor mounts it at `up`; pass another path with --{flag})"
    )]
    Read {
        what: &'static str,
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the {what} file {path} is empty: write the token into it, or pass another file with --{flag}"
    )]
    Empty {
        what: &'static str,
        flag: &'static str,
        path: PathBuf,
    },
}

struct Secret {
    text: String,
    hash: [u8; 32],
}

impl Secret {
    fn new(text: String) -> Secret {
        let hash = Sha256::digest(text.as_bytes()).into();
        Secret { text, hash }
    }
}

impl Tokens {
    /// Tokens from their values (surrounding whitespace trimmed). `None`
    /// when a value is empty.
    pub fn new(builder: &str, admin: Option<&str>) -> Option<Tokens> {
        let builder = builder.trim();
        let admin = admin.map(str::trim);
        if builder.is_empty() || admin.is_some_and(str::is_empty) {
            return None;
        }
        Some(Tokens {
            builder: Secret::new(builder.to_string()),
            admin: admin.map(|a| Secret::new(a.to_string())),
        })
    }

    /// Reads the builder token file and, when given, the admin token file.
    pub fn load(builder_file: &Path, admin_file: Option<&Path>) -> Result<Tokens, TokenError> {
        let builder = read_token(builder_file, "builder token", "token-file")?;
        let admin = admin_file
            .map(|p| read_token(p, "admin token", "admin-token-file"))
            .transpose()?;
        Ok(Tokens {
            builder: Secret::new(builder),
            admin: admin.map(Secret::new),
        })
    }

    /// The builder token: the password the engine pushes with.
    pub fn builder_token(&self) -> &str {
        &self.builder.text
    }

    /// Checks an `Authorization` header.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        let builder = same(&presented, &self.builder.hash);
        let admin = self
            .admin
            .as_ref()
            .is_some_and(|a| same(&presented, &a.hash));
        match (builder, admin) {
            (true, _) => Ok(Principal::Builder),
            (false, true) => Ok(Principal::Admin),
            (false, false) => Err(AuthError::Invalid),
        }
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("builder", &"<secret>")
            .field("admin", &self.admin.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

/// Equality of two digests that looks at every byte.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_token(path: &Path, what: &'static str, flag: &'static str) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        what,
        flag,
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty {
            what,
            flag,
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn the_builder_and_the_admin_token_are_accepted() {
        let t = Tokens::new("b-token\n", Some("a-token")).unwrap();
        assert_eq!(
            t.check(Some(&header("Bearer b-token"))),
            Ok(Principal::Builder)
        );
        assert_eq!(
            t.check(Some(&header("bearer  a-token "))),
            Ok(Principal::Admin)
        );
        assert_eq!(t.builder_token(), "b-token");
    }

    #[test]
    fn anything_else_is_refused() {
        let t = Tokens::new("b-token", None).unwrap();
        assert_eq!(t.check(None), Err(AuthError::Missing));
        assert_eq!(
            t.check(Some(&header("Basic Yjpi"))),
            Err(AuthError::NotBearer)
        );
        assert_eq!(t.check(Some(&header("b-token"))), Err(AuthError::NotBearer));
        assert_eq!(
            t.check(Some(&header("Bearer b-toke"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            t.check(Some(&header("Bearer b-token2"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(t.check(Some(&header("Bearer "))), Err(AuthError::NotBearer));
        assert!(Tokens::new(" ", None).is_none());
        assert!(Tokens::new("x", Some("")).is_none());
    }

    #[test]
    fn token_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("builder-token");
        let a = dir.path().join("admin-token");
        std::fs::write(&b, "abc\n").unwrap();
        std::fs::write(&a, "  \n").unwrap();
        let t = Tokens::load(&b, None).unwrap();
        assert_eq!(t.builder_token(), "abc");
        let e = Tokens::load(&b, Some(&a)).unwrap_err().to_string();
        assert!(
            e.contains("admin token") && e.contains("--admin-token-file"),
            "{e}"
        );
        let e = Tokens::load(&dir.path().join("missing"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing") && e.contains("--token-file"), "{e}");
        assert!(!format!("{t:?}").contains("abc"));
    }
}
