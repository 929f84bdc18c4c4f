//! Turtle's certificate authority: a name-constrained root and intermediate per box,
//! TLS leaves for the box's services, their renewal, and the trust bundle containers
//! get. A library without Docker in it; the supervisor decides which leaves exist and
//! where their directories are mounted.
//!
//! # Background
//!
//! A box serves its stack over TLS on the LAN (`api.vm.local`, `registry.vm.local`,
//! its LAN addresses) where no public CA can issue certificates. So every box has its
//! own CA, and the operator trusts its root once (a browser, `docker` for the
//! registry, child devices through their provisioning config). Trusting a root is a
//! big grant, so the root can only vouch for the box's domain: its name constraints
//! permit the domain and the names under it, and private ip ranges, nothing else. A
//! leaked key of this CA cannot impersonate `bank.example.com` to anyone who trusts it.
//!
//! # Design
//!
//! - **Two levels.** A self-signed root (20 years) signs one intermediate (5 years);
//!   the intermediate signs leaves (90 days). Both CA certificates carry the name
//!   constraints (some clients check them on intermediates only, some on anchors
//!   too). Keys are ECDSA P-256 (browsers reject Ed25519), made with rcgen on ring;
//!   the tree holds no aws-lc.
//! - **Bring your own CA.** [`Authority::import`] takes an operator's CA certificate and
//!   key as the root and creates Turtle's name-constrained intermediate under it; an
//!   operator's root need not be constrained, Turtle's intermediate is.
//!   [`Authority::import_leaf`] stores an operator's leaf that Turtle then never replaces.
//! - **The CA directory** (mode 0700 when Turtle creates it):
//!
//!   ```text
//!   root.pem  root.key (0600)  intermediate.pem  intermediate.key (0600)
//!   ca.json                          domain, permitted ranges, created, imported
//!   .lock                            exclusive lock of every change
//!   leaves/<id>/cert.pem             the leaf
//!               chain.pem            leaf + intermediate (what servers send)
//!               fullchain.pem        leaf + intermediate + root
//!               key.pem (0600)
//!               leaf.json            LeafInfo + the intermediate that signed it
//!   ```
//!
//!   A leaf's directory is made by Turtle (0755: a service's non-root user enters it
//!   to read its key) or refused: an existing one that is a link, not a directory,
//!   owned by another user, wider than 0755 or outside the CA directory once links
//!   are resolved is never written into ([`own_dir`]).
//!
//!   Every file is written to a temporary file in its directory, flushed and renamed,
//!   so readers see whole files, and a container with the leaf directory bind-mounted
//!   sees renewed files. `root.pem` is written last: a CA exists exactly when
//!   `root.pem` does, so a crash during creation leaves a directory the next start
//!   creates the CA in again. Creation and every change to leaves hold an exclusive
//!   lock (`File::lock` on `.lock`), so a daemon and a CLI starting together make one CA.
//! - **Time is an argument.** Every call that depends on the clock takes `now`; tests
//!   issue, renew and expire without waiting.
//! - **Renewal is pull-based.** [`Authority::ensure_leaf`] returns the stored leaf or
//!   issues a new one when it is missing, asked for other names, or past its renewal
//!   point (2/3 of its lifetime); [`Authority::next_renewal`] tells the daemon when to
//!   call it again.
//! - **JSON** (`ca.json`, `leaf.json`, [`Status`]): times are RFC 3339 strings in UTC,
//!   ip ranges strings such as `10.0.0.0/8`.
//!
//! # API
//!
//! ```text
//! CaConfig::new(domain) -> CaConfig            pub fields: domain, permitted_ips, root_lifetime,
//!                                              intermediate_lifetime, leaf_lifetime, renew_at
//! IpNet: FromStr ("10.0.0.0/8"), Display, contains(&IpAddr)
//! Authority::open_or_create(dir, &cfg, now) -> Result<Authority>
//! Authority::import(dir, &cfg, ca_cert_pem, ca_key_pem, now) -> Result<Authority>
//! authority.root_pem() / intermediate_pem() -> &str
//! authority.fingerprint() -> String            AB:CD:... (SHA-256 of the root's DER)
//! authority.domain() -> &str, permitted_ips() -> &[IpNet], imported() -> bool, dir() -> &Path
//! authority.issue(&names, &ips, now) -> Result<Leaf>
//! LeafId: FromStr ("api"; [a-z0-9][a-z0-9_.-]*, at most 64), Display
//! authority.ensure_leaf(&id, &names, &ips, now) -> Result<(LeafInfo, bool /* changed */)>
//! authority.import_leaf(&id, chain_pem, key_pem) -> Result<LeafInfo>
//! authority.remove_leaf(&id) -> Result<bool>
//! authority.leaf_dir(&id) -> PathBuf
//! own_dir(root, dir, mode) -> Result<()>       makes dir under root, or refuses one not Turtle's
//! authority.status(now) -> Status
//! authority.next_renewal() -> Option<SystemTime>
//! trust_bundle(system_bundle: Option<&Path>, root_pem) -> String
//! find_system_bundle() -> Option<&Path>, SYSTEM_BUNDLE_CANDIDATES
//! ```
//!
//! # Example
//!
//! ```
//! use std::time::SystemTime;
//! use turtle_certs::{Authority, CaConfig, trust_bundle, find_system_bundle};
//!
//! # let tmp = tempfile::tempdir().unwrap();
//! # let state_dir = tmp.path();
//! let now = SystemTime::now();
//! let ca = Authority::open_or_create(&state_dir.join("ca"), &CaConfig::new("vm.local"), now)?;
//! let names = vec!["api.vm.local".to_string()];
//! let ips = vec!["192.168.1.20".parse().unwrap()];
//! let api: turtle_certs::LeafId = "api".parse()?;
//! let (leaf, changed) = ca.ensure_leaf(&api, &names, &ips, now)?;
//! assert!(changed);
//! // Mount ca.leaf_dir(&api) into the proxy; call ensure_leaf again at ca.next_renewal().
//! assert_eq!(ca.next_renewal(), Some(leaf.renew_at));
//! let bundle = trust_bundle(find_system_bundle(), ca.root_pem());
//! assert!(bundle.ends_with(ca.root_pem()));
//! # Ok::<(), turtle_certs::Error>(())
//! ```
//!
//! # Current limitations
//!
//! - The intermediate is not renewed: after 5 years (or when an imported root ends
//!   earlier) leaves cannot be issued until the CA directory is moved away and a new CA
//!   is created. [`Status`] shows its end.
//! - No revocation (no CRL, no OCSP): leaves are short-lived instead.
//! - The name constraints are fixed at creation; another domain or other ranges mean
//!   a new CA, which every client has to trust anew.
//! - An imported CA key must be PKCS#8 (rcgen on ring reads nothing else); the error
//!   gives the `openssl pkcs8` command. An imported CA whose subject repeats an
//!   attribute (two `OU`s) is refused: rcgen cannot reproduce that name as the
//!   intermediate's issuer. An imported CA is used as the root even when it is itself
//!   an intermediate of the operator's PKI; clients then need its chain.
//! - A renewal replaces the leaf's files one rename after another: a reader that reads
//!   `cert.pem` and `key.pem` exactly between two renames sees a mismatched pair and has
//!   to read again.
//! - `key.pem` is 0600 and owned by the supervisor's user; a container that reads it as
//!   another user needs it made readable by the caller.

mod authority;
mod bundle;
mod config;
mod error;
mod fs;
mod inspect;
mod issue;
mod leaves;
mod names;
mod profile;
mod signer;
mod status;
mod timefmt;

pub use authority::Authority;
pub use bundle::{SYSTEM_BUNDLE_CANDIDATES, find_system_bundle, trust_bundle};
pub use config::{CaConfig, DEFAULT_PERMITTED_IPS, IpNet};
pub use error::Error;
pub use fs::own_dir;
pub use inspect::{dns_names, pem_fingerprint};
pub use issue::{Leaf, LeafInfo};
pub use leaves::{CERT_FILE, CHAIN_FILE, FULLCHAIN_FILE, KEY_FILE, RECORD_FILE};
pub use names::LeafId;
pub use signer::{SIGNER_LIFETIME, new_signer};
pub use status::{CaCertInfo, CertState, LeafStatus, Status, UnreadableLeaf};

/// A time as RFC 3339 in UTC (`2025-06-01T12:00:00Z`), as the JSON holds it.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    timefmt::format(t)
}
