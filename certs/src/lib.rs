//! Turtle's certificate authority: a name-constrained root and intermediate per box,
//! TLS leaves for the box's services and their renewal. A library without Docker in
//! it; the supervisor decides which leaves exist and where their directories are
//! mounted.
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
//! - **Bring your own CA.** [`Authority::import`] takes an operator's CA certificate and
//!   key as the root and creates Turtle's name-constrained intermediate under it; the
//!   operator's root need not be constrained, Turtle's intermediate is.
//! - **The CA directory** (mode 0700 when Turtle creates it): `root.pem`, `root.key`
//!   (0600), `intermediate.pem`, `intermediate.key` (0600), `ca.json`, and
//!   `leaves/<id>/` with `cert.pem`, `chain.pem` (leaf + intermediate), `fullchain.pem`
//!   (+ root), `key.pem` (0600), `leaf.json`. Files are written to a temporary file,
//!   flushed and renamed, so a container with a leaf directory bind-mounted sees
//!   renewed files; `root.pem` last, so a CA exists exactly when `root.pem` does.
//!   Creation and leaf changes hold an exclusive lock (`File::lock` on `.lock`), so a
//!   daemon and a CLI starting together make one CA.
//! - **Time is an argument.** Every call that depends on the clock takes `now`.
//! - **Renewal is pull-based.** [`Authority::ensure_leaf`] returns the stored leaf or
//!   issues a new one (missing, other names, past 2/3 of its life);
//!   [`Authority::next_renewal`] tells the daemon when to call it again. A leaf the
//!   operator provides ([`Authority::import_leaf`]) is never replaced.
//!
//! # Current limitations
//!
//! - The intermediate is not renewed.
//! - An imported CA key must be PKCS#8 (rcgen on ring reads nothing else); the error
//!   gives the `openssl pkcs8` command. An imported CA whose subject repeats an
//!   attribute (two `OU`s) is refused: rcgen cannot reproduce that name as the
//!   intermediate's issuer.
//! - No revocation (no CRL, no OCSP): leaves are short-lived instead.

mod authority;
mod config;
mod error;
mod fs;
mod inspect;
mod issue;
mod leaves;
mod names;
mod profile;
mod status;
mod timefmt;

pub use authority::Authority;
pub use config::{CaConfig, DEFAULT_PERMITTED_IPS, IpNet};
pub use error::Error;
pub use issue::{Leaf, LeafInfo};
pub use leaves::{CERT_FILE, CHAIN_FILE, FULLCHAIN_FILE, KEY_FILE, RECORD_FILE};
pub use status::{CaCertInfo, CertState, LeafStatus, Status, UnreadableLeaf};
