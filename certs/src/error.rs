//! The crate's one error type: every variant carries what it is about (a path, a name,
//! the CA directory) and its message says what to do.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting of [`crate::CaConfig`] is out of range.
    #[error("invalid CA configuration: {reason}")]
    InvalidConfig { reason: String },

    /// The CA's domain is not a DNS name.
    #[error("invalid CA domain {domain:?}: {reason}; use a DNS name such as vm.local")]
    InvalidDomain { domain: String, reason: String },

    /// An ip range does not parse.
    #[error("invalid ip range {value:?}: {reason}; write it as ADDRESS/PREFIX, such as 10.0.0.0/8")]
    InvalidIpNet { value: String, reason: String },

    /// A name asked for in a certificate is not a DNS name.
    #[error("invalid certificate name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },

    /// A certificate was asked for without any name or address.
    #[error("a certificate needs at least one DNS name or ip address")]
    NoNames,

    /// Names the CA's name constraints do not permit.
    #[error(
        "{} outside the CA's domain {domain}: the CA can only issue {domain} and names under it; \
         use such names, or create the CA for another domain",
        names.join(", ")
    )]
    NamesOutsideDomain { names: Vec<String>, domain: String },

    /// Addresses the CA's name constraints do not permit.
    #[error(
        "{} outside the CA's permitted ip ranges ({}): leave them out of the certificate",
        list(ips),
        permitted.join(", ")
    )]
    IpsOutsideRanges {
        ips: Vec<IpAddr>,
        permitted: Vec<String>,
    },

    /// A leaf id that cannot be a directory name.
    #[error(
        "invalid certificate id {id:?}: use lowercase letters, digits, '_', '.' and '-', \
         starting with a letter or digit, at most 64 characters"
    )]
    InvalidLeafId { id: String },

    /// The stored CA was created for another domain.
    #[error(
        "the CA in {} was created for domain {stored}, not {requested}: set the domain back to \
         {stored}, or move {} away to create a new CA (every client then has to trust the new root)",
        dir.display(),
        dir.display()
    )]
    DomainMismatch {
        dir: PathBuf,
        stored: String,
        requested: String,
    },

    /// The stored CA permits other ip ranges than the configuration asks for.
    #[error(
        "the CA in {} permits the ip ranges {}, not {}: its name constraints are fixed when it is \
         created; set the ranges back, or move {} away to create a new CA (every client then has \
         to trust the new root)",
        dir.display(),
        stored.join(", "),
        requested.join(", "),
        dir.display()
    )]
    IpRangesMismatch {
        dir: PathBuf,
        stored: Vec<String>,
        requested: Vec<String>,
    },

    /// A directory Turtle would write into exists and is not Turtle's.
    #[error(
        "{} exists and is not Turtle's ({reason}): Turtle never takes over a directory it did not make; move it away and Turtle makes it again",
        path.display()
    )]
    NotOurs { path: PathBuf, reason: String },

    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A stored file does not hold what it should.
    #[error(
        "{} is damaged: {reason}; restore it from a backup, or move its directory away to start afresh",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },

    /// Some of the CA's files are there, others are missing.
    #[error(
        "incomplete CA in {}: {} is missing; restore it from a backup, or move {} away to create \
         a new CA (every client then has to trust the new root)",
        dir.display(),
        missing.display(),
        dir.display()
    )]
    Incomplete { dir: PathBuf, missing: PathBuf },

    /// `import` into a directory that already holds another CA.
    #[error(
        "{} already holds a CA (root {fingerprint}): move it away before importing another one",
        dir.display()
    )]
    CaExists { dir: PathBuf, fingerprint: String },

    /// The certificate given to `import` cannot be a CA.
    #[error("cannot import the CA certificate: {reason}")]
    InvalidCaCert { reason: String },

    /// A private key does not parse or is of a kind that cannot be used.
    #[error("cannot use the private key of {what}: {reason}")]
    InvalidKey { what: String, reason: String },

    /// A private key belongs to another certificate.
    #[error(
        "the private key does not belong to {what}: give the key that was created with this certificate"
    )]
    KeyMismatch { what: String },

    /// A certificate chain given to `import_leaf` is unusable.
    #[error("cannot use the certificate chain for {id:?}: {reason}")]
    InvalidChain { id: String, reason: String },

    /// The intermediate expires before a certificate could be issued.
    #[error(
        "the intermediate CA certificate expired at {not_after}: move the CA directory away to \
         create a new CA"
    )]
    IntermediateExpired { not_after: String },

    /// rcgen refused to build or sign a certificate.
    #[error("cannot create the {what} certificate: {reason}")]
    Sign { what: &'static str, reason: String },
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn sign(what: &'static str, err: rcgen::Error) -> Self {
        Error::Sign {
            what,
            reason: err.to_string(),
        }
    }
}
