//! Turtle's certificate authority: a name-constrained root and intermediate per box,
//! and TLS leaves for the box's services. A library without Docker in it.
//!
//! # Background
//!
//! A box serves its stack over TLS on the LAN (`api.vm.local`, `registry.vm.local`,
//! its LAN addresses) where no public CA can issue certificates. So every box has its
//! own CA, and the operator trusts its root once. Trusting a root is a big grant, so
//! the root can only vouch for the box's domain: its name constraints permit the
//! domain and the names under it, and private ip ranges, nothing else.
//!
//! # Design
//!
//! - **Two levels.** A self-signed root (20 years) signs one intermediate (5 years);
//!   the intermediate signs leaves (90 days). Both CA certificates carry the name
//!   constraints. Keys are ECDSA P-256 (browsers reject Ed25519), made with rcgen on
//!   ring; the tree holds no aws-lc.
//! - **The CA directory** (mode 0700 when Turtle creates it): `root.pem`, `root.key`
//!   (0600), `intermediate.pem`, `intermediate.key` (0600), `ca.json`. Files are
//!   written to a temporary file, flushed and renamed; `root.pem` last, so a CA exists
//!   exactly when `root.pem` does. Creation holds an exclusive lock (`File::lock` on
//!   `.lock`), so a daemon and a CLI starting together make one CA.
//! - **Time is an argument.** Every call that depends on the clock takes `now`.
//!
//! # Current limitations
//!
//! - The intermediate is not renewed.
//! - No revocation (no CRL, no OCSP): leaves are short-lived instead.

mod authority;
mod config;
mod error;
mod fs;
mod inspect;
mod issue;
mod names;
mod profile;
mod timefmt;

pub use authority::Authority;
pub use config::{CaConfig, DEFAULT_PERMITTED_IPS, IpNet};
pub use error::Error;
pub use issue::{Leaf, LeafInfo};
