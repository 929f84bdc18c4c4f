//! Signed offline bundles: one file that carries a compose project and its
//! images to a box without a network, verified completely before anything
//! of it reaches the engine.
//!
//! # Layout of a bundle
//!
//! ```text
//! header (32 bytes, format.rs) | manifest (JSON) | seal | part 1 | part 2 | ... | part n
//! ```
//!
//! - The **header** has the magic, the format version, the seal's length and
//!   the manifest's, and a checksum of itself.
//! - The **manifest** ([`manifest::Manifest`]) holds the project as Turtle
//!   normalized it, the images (ID, tags, config and layer parts), the
//!   architecture, and the size and SHA-256 of every part, in file order.
//! - The **seal** is an Ed25519 public key and its signature over a fixed
//!   context and the manifest's exact bytes (96 bytes), or, unsigned, the
//!   manifest's SHA-256 (32 bytes): a damaged manifest is caught either way.
//! - The **parts** are the files of the engine's `docker save` archive, each
//!   stored whole (each layer tar, each image config, the archive's
//!   `manifest.json` and `repositories` last), so that a delta bundle can
//!   leave out layers the target already has ([`delta`]).
//!
//! Everything needed to check a byte comes before it, so one forward pass
//! with bounded memory verifies a bundle ([`verify::verify_reader`]),
//! from a file or as it arrives.
//!
//! # Design
//!
//! - Verification is complete before anything is handed on:
//!   [`file::verify_file`] reads the whole file; only the [`file::VerifiedFile`]
//!   it returns can give out image data, in a second pass through the same
//!   open handle (no temporary copy) that checks the file did not change and
//!   hashes every part again ([`file`]).
//! - The seal is checked before the manifest is parsed: untrusted JSON is
//!   never parsed. A signature is checked against the key in the seal even
//!   when no keys are configured, so a bad signature is never taken for a
//!   missing one; with keys configured, an unsigned bundle and an unknown
//!   key are refused.
//! - The format code (`format`, `manifest`, `keys`, `verify`, `write`,
//!   `archive`, `file`) does no async and touches no engine; [`engine`]
//!   creates and applies bundles through the [`turtle_engine::Engine`] trait,
//!   and [`delta`] decides what a delta leaves out and checks, before
//!   anything is loaded, that the engine has it.
//! - A delta ([`create_delta`] against a [`BaseSet`]) leaves out the layer
//!   files whose layers the target has; the engine's load reads a layer's
//!   file only when it lacks the layer, so the archive loads as it is.
//!
//! # Current limitations
//!
//! - No compression: layers are stored as the engine saves them.
//! - A remote push (`turtle push --to`) streams a [`Prepared`] bundle
//!   without writing it to a file; the receiving box spools it, then
//!   verifies it as a file.
//! - Deltas are tested on the engine's classic image store only.
//! - The project's absolute paths (bind mounts, `file:` secrets) are those
//!   of the machine that made the bundle.

pub mod archive;
pub mod delta;
pub mod engine;
pub mod file;
pub mod format;
pub mod keys;
pub mod manifest;
pub mod verify;
pub mod write;

use std::path::PathBuf;

pub use delta::BaseSet;
pub use engine::{
    Applied, CreateOptions, Created, Prepared, apply, create, create_delta, create_with, load,
    prepare, prepare_with, verify,
};
pub use file::{VerifiedFile, verify_file};
pub use keys::{KeyError, PublicKey, SecretKey, Trust};
pub use manifest::Manifest;
pub use verify::{Check, Signer, Verified, VerifyError, read_manifest, verify_reader};

/// What went wrong making, verifying or applying a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {path} refused: {source}")]
    Verify { path: PathBuf, source: VerifyError },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot make the bundle: {message}")]
    Create { message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Engine(String),
    #[error(
        "the bundle's images are for {bundle}, and this box is {host}: make the bundle on (or for) a box of this kind"
    )]
    Architecture { bundle: String, host: String },
    #[error(
        "delta bundle refused before anything was loaded: it was made against {since}, and this box lacks what it leaves out: {}: apply the full bundle (or an earlier delta) first, or make the delta against a release this box has (`turtle releases`)",
        delta::describe_missing(missing)
    )]
    MissingLayers {
        since: String,
        missing: Vec<manifest::Required>,
    },
    #[error("after the load, image {image} is {}, and the bundle says {expected}", found.as_deref().unwrap_or("missing"))]
    NotLoaded {
        image: String,
        expected: String,
        found: Option<String>,
    },
}

impl BundleError {
    /// The check that refused the bundle, for a verification failure.
    pub fn check(&self) -> Option<Check> {
        match self {
            Self::Verify { source, .. } => Some(source.check()),
            _ => None,
        }
    }
}
