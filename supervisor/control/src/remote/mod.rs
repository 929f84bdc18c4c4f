//! Remote push: `turtle push --to https://BOX[:PORT]` on one machine
//! streams a signed bundle of the project to another box's daemon, which
//! verifies and applies it exactly as `turtle bundle apply` does from a USB
//! stick: the same format, the same verifier, the same trusted keys.
//!
//! # Background
//!
//! A box on the LAN (or behind a VPN) gets its stack updates pushed from an
//! engineer's machine or a CI runner, without a registry in between: the
//! images travel inside the bundle, so the box needs no pull access to
//! anything. The daemon's local API (the unix socket) is never exposed;
//! only the routes here are, and only when the box's config asks for it.
//!
//! # Design
//!
//! - **Off unless configured.** The daemon listens on TCP only when
//!   `remote.listen` is set in turtle.yaml ([`server::start`]); nothing else
//!   opens a port.
//! - **TLS from the box's own CA** ([`tls`]): a leaf for the box's domain
//!   and addresses, renewed at a handshake once due. The pushing side trusts
//!   that CA's root alone (`--ca`, the output of `turtle ca export` on the
//!   box), so a man in the middle needs the box's CA key.
//! - **Two gates, both required.** A bearer token ([`token`]) says who may
//!   push at all: it is checked before a byte of the body is read (401), and
//!   guards the other routes too. The bundle's signature says what may run:
//!   it must verify against `bundles.trusted_keys`, as for `bundle apply`.
//!   A leaked token lets someone upload, not run, anything; a leaked bundle
//!   (a USB stick left behind) cannot be pushed without the token.
//! - **No trusted keys, no remote push**: a box whose `bundles.trusted_keys`
//!   is empty refuses every push (403, before the body is read) unless
//!   `remote.allow_untrusted` is set, the remote form of `bundle apply
//!   --allow-untrusted`: then the token alone decides, and the bundle's
//!   seal is still checked for damage.
//! - **Spooled, then verified as a file, then loaded.** The body (its
//!   length given up front, at most `remote.max_bundle`, with room for it
//!   and the box's reserve) is written to a temporary file under
//!   `STATE_DIR/remote/incoming`; only then is it verified completely
//!   ([`turtle_bundle::verify`]), and only a verified file is loaded
//!   ([`turtle_bundle::load`], the second pass through the same handle). A
//!   refused bundle is answered with the check that failed and leaves
//!   nothing in the engine or the store; the spool is removed either way.
//! - **Applied as a release**: the loaded project goes through
//!   [`crate::Control::push`] with `origin: Bundle`, so a remote push is
//!   health-gated and rolled back like a local one, and its progress lines
//!   ([`crate::wire::ReleaseLine`]) stream back to the pushing side.
//! - **A delta when the box has a release**: the pushing side asks for the
//!   box's current release and its images' layers ([`CurrentRelease`]) and
//!   leaves out every layer the box has (`turtle_bundle::prepare_with` with
//!   a base set); [`turtle_bundle::load`] refuses it before loading anything
//!   when a required layer went away meanwhile.
//! - **One push at a time** per box (409 for a second one while the first
//!   is received, verified or applied): two large uploads must not share the
//!   disk the space check counted for one.
//!
//! # Routes (on the TLS listener only; every one needs the token)
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | `/v1/remote` | | [`RemoteInfo`]: version, domain, architecture, trusted key ids, limits |
//! | GET | `/v1/projects/{name}/release` | | [`CurrentRelease`]: the last committed `Release` and its images' layers, 404 when none |
//! | POST | `/v1/bundles` | the bundle (`Content-Length` required); [`PushQuery`] | 200 and a stream of `ReleaseLine`, or an [`ErrorBody`] with the status of the refusal |
//!
//! Refusals: 401 no or wrong token; 403 the box trusts no key; 409 another
//! push is in progress; 411 no length; 413 larger than `max_bundle`; 507
//! not enough room; 400 the stream ended early; 422 the bundle failed a
//! check (`check` names it: `signature`, `untrusted-key`, `part`, ...).
//!
//! # Current limitations
//!
//! - The pushing side does not build: the project's images must be in its
//!   engine (`turtle up --build`, `docker compose build`).
//! - The body is spooled before it is verified (no early refusal of an
//!   untrusted key mid-upload); the token and the length come first.
//! - Settings (keys, listen address, limits) are read at the daemon's
//!   start; the token file is read at every request.

pub mod client;
pub mod operator;
pub mod server;
pub mod tls;
pub mod token;

#[cfg(test)]
mod operator_tests;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// The port of `https://BOX` when the URL gives none.
pub const DEFAULT_PORT: u16 = 7443;
/// The largest bundle accepted unless `remote.max_bundle` says otherwise.
pub const DEFAULT_MAX_BUNDLE: u64 = 8 << 30;

/// `GET /v1/remote`: what the pushing side checks before it makes a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteInfo {
    /// The daemon's version.
    pub version: String,
    /// The box's domain (what its leaf is for).
    pub domain: String,
    /// The engine's architecture in the engine's names (`amd64`, `arm64`).
    pub architecture: String,
    /// Ids of the keys whose bundles the box accepts.
    pub trusted_keys: Vec<String>,
    /// Whether the box accepts bundles with no trusted key configured.
    pub allow_untrusted: bool,
    /// The largest bundle accepted, in bytes.
    pub max_bundle: u64,
}

/// `GET /v1/projects/{name}/release`: the box's current release, and the
/// layers of each image it pinned that the engine still has: what a delta
/// bundle for this box may leave out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentRelease {
    pub release: crate::wire::Release,
    /// Image ID -> its layers' diff IDs, bottom first.
    pub layers: std::collections::BTreeMap<String, Vec<String>>,
}

/// The query of `POST /v1/bundles`: how the release is pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushQuery {
    /// The release's version (default: its number on the box).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The settle window in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_ms: Option<u64>,
    /// Go past update locks.
    #[serde(default)]
    pub force: bool,
}

/// A refusal: `{"error": "...", "check": "..."}` (`check` only when a
/// bundle check failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// The name of a bundle check on the wire and in messages.
pub fn check_name(check: turtle_bundle::Check) -> &'static str {
    use turtle_bundle::Check;
    match check {
        Check::Header => "header",
        Check::Version => "version",
        Check::Truncated => "truncated",
        Check::Unsigned => "unsigned",
        Check::ManifestDigest => "manifest-digest",
        Check::Signature => "signature",
        Check::UntrustedKey => "untrusted-key",
        Check::Manifest => "manifest",
        Check::Part => "part",
        Check::Trailing => "trailing",
        Check::Io => "io",
        Check::Changed => "changed",
    }
}
