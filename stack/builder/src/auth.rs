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
use std::path::Path;

use axum::http::HeaderValue;
use turtle_stack_common::{Token, read_secret};

/// The tokens the builder accepts.
pub struct Tokens {
    /// The builder token itself: the password the engine pushes with.
    builder_text: String,
    builder: Token,
    admin: Option<Token>,
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
pub type TokenError = turtle_stack_common::SecretFileError;

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
            builder_text: builder.to_string(),
            builder: Token::new(builder),
            admin: admin.map(Token::new),
        })
    }

    /// Reads the builder token file and, when given, the admin token file.
    pub fn load(builder_file: &Path, admin_file: Option<&Path>) -> Result<Tokens, TokenError> {
        let builder = read_secret("builder token", "--token-file", builder_file)?;
        let admin = admin_file
            .map(|p| read_secret("admin token", "--admin-token-file", p))
            .transpose()?;
        Ok(Tokens {
            builder: Token::new(&builder),
            admin: admin.as_deref().map(Token::new),
            builder_text: builder,
        })
    }

    /// The builder token: the password the engine pushes with.
    pub fn builder_token(&self) -> &str {
        &self.builder_text
    }

    /// Checks an `Authorization` header.
    pub fn check(&self, authorization: Option<&HeaderValue>) -> Result<Principal, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let presented = token.trim();
        // Both are always compared: the time does not tell which one was tried.
        let builder = self.builder.matches(presented);
        let admin = self.admin.as_ref().is_some_and(|a| a.matches(presented));
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
