//! Stored leaves: `leaves/<id>/` in the CA directory, kept current by `ensure_leaf`,
//! or brought by the operator with `import_leaf`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustls::InconsistentKeys;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::authority::{Authority, LEAVES};
use crate::fs::{self, DirLock, NewFile, PRIVATE, PUBLIC};
use crate::inspect;
use crate::issue::LeafInfo;
use crate::names::LeafId;

/// The leaf certificate alone.
pub const CERT_FILE: &str = "cert.pem";
/// Leaf and intermediate (for a provided leaf: the chain as given).
pub const CHAIN_FILE: &str = "chain.pem";
/// Leaf, intermediate and root (for a provided leaf: the chain as given).
pub const FULLCHAIN_FILE: &str = "fullchain.pem";
/// The private key, mode 0600.
pub const KEY_FILE: &str = "key.pem";
/// What Turtle knows about the leaf ([`LeafInfo`] plus the signing intermediate).
pub const RECORD_FILE: &str = "leaf.json";

/// `leaf.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    #[serde(flatten)]
    pub info: LeafInfo,
    /// Fingerprint of the intermediate that signed it; empty for a provided leaf.
    #[serde(default)]
    pub issuer: String,
}

impl Authority {
    /// The directory of leaf `id`: `<ca dir>/leaves/<id>`. Bind-mount the directory
    /// (not single files) into a container, so it sees renewed files.
    pub fn leaf_dir(&self, id: &LeafId) -> PathBuf {
        self.dir.join(LEAVES).join(id)
    }

    /// Keeps leaf `id` current and returns it, with whether it changed.
    ///
    /// A new leaf is issued (as by [`Authority::issue`]) and stored when there is none,
    /// when the stored one is for other names or addresses (compared as sets, after
    /// making names lowercase), was signed by another intermediate, or its files are
    /// missing or do not match, and when `now` has reached its renewal point (or is
    /// before its start: the clock went back). Otherwise the stored one is returned
    /// unchanged. A provided leaf ([`Authority::import_leaf`]) is never replaced: it
    /// is returned as it is, whatever was asked for.
    ///
    /// Files in [`Authority::leaf_dir`]: `cert.pem`, `chain.pem` (leaf + intermediate),
    /// `fullchain.pem` (+ root), `key.pem` (0600), `leaf.json`; each replaced through a
    /// temporary file and a rename in the same directory.
    pub fn ensure_leaf(
        &self,
        id: &LeafId,
        names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
    ) -> Result<(LeafInfo, bool), Error> {
        let request = self.check_request(names, ips);
        let _lock = DirLock::acquire(&self.dir)?;
        let dir = self.leaf_dir(id);
        if let Some(record) = read_record(&dir)? {
            // A provided leaf is reported whatever was asked for.
            if record.info.provided {
                return Ok((record.info, false));
            }
            if let Ok((names, ips)) = &request
                && self.still_good(&record, &dir, names, ips, now)
            {
                return Ok((record.info, false));
            }
        }
        let (names, ips) = request?;
        let mut leaf = self.sign_leaf(&names, &ips, now)?;
        leaf.info.id = id.to_string();
        let record = Record {
            info: leaf.info.clone(),
            issuer: self.intermediate.fingerprint.clone(),
        };
        write_leaf(
            &self.dir,
            &dir,
            &leaf.key_pem,
            &leaf.cert_pem,
            &leaf.chain_pem,
            &leaf.fullchain_pem,
            &record,
        )?;
        Ok((leaf.info, true))
    }

    fn still_good(
        &self,
        record: &Record,
        dir: &Path,
        names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
    ) -> bool {
        let info = &record.info;
        let current = record.issuer == self.intermediate.fingerprint
            && same_set(&info.names, names)
            && same_set(&info.ips, ips)
            && info.not_before <= now
            && now < info.renew_at;
        let files_there = [KEY_FILE, CHAIN_FILE, FULLCHAIN_FILE]
            .iter()
            .all(|name| dir.join(name).is_file());
        let cert_matches = fs::read(&dir.join(CERT_FILE))
            .ok()
            .and_then(|pem| inspect::parse_pem_single(&pem).ok())
            .is_some_and(|cert| cert.fingerprint == info.fingerprint);
        current && files_there && cert_matches
    }

    /// Stores an operator's certificate chain (leaf first) and key as leaf `id`,
    /// replacing what is stored there. It is marked provided: `ensure_leaf` never
    /// replaces it and `status` shows it. The key (PKCS#8, SEC1 or PKCS#1 PEM) must
    /// belong to the first certificate; the chain is not checked against Turtle's CA
    /// (it may come from another CA). `chain.pem` and `fullchain.pem` both hold the
    /// chain as given.
    pub fn import_leaf(
        &self,
        id: &LeafId,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<LeafInfo, Error> {
        let invalid = |reason: String| Error::InvalidChain {
            id: id.to_string(),
            reason,
        };
        let chain = inspect::pem_certs(chain_pem).map_err(invalid)?;
        let Some(first) = chain.first() else {
            return Err(invalid("it holds no CERTIFICATE block".into()));
        };
        let cert = inspect::parse(first).map_err(invalid)?;
        if cert.is_ca {
            return Err(invalid(
                "its first certificate is a CA certificate; put the server's certificate first"
                    .into(),
            ));
        }
        let key = leaf_key(id.as_str(), key_pem, &chain)?;
        let cert_pem = inspect::to_pem(first);
        let chain_text: Vec<String> = chain.iter().map(|der| inspect::to_pem(der)).collect();
        let chain_text = chain_text.concat();
        let record = Record {
            info: LeafInfo::new(id.as_str(), &cert, cert.not_after, true),
            issuer: String::new(),
        };
        let _lock = DirLock::acquire(&self.dir)?;
        write_leaf(
            &self.dir,
            &self.leaf_dir(id),
            &key,
            &cert_pem,
            &chain_text,
            &chain_text,
            &record,
        )?;
        Ok(record.info)
    }

    /// Removes leaf `id` (Turtle-issued or provided); the next `ensure_leaf` issues
    /// a new one. Returns whether there was one.
    pub fn remove_leaf(&self, id: &LeafId) -> Result<bool, Error> {
        let _lock = DirLock::acquire(&self.dir)?;
        let dir = self.leaf_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", dir, e)),
        }
    }

    /// The earliest renewal point among the stored Turtle-issued leaves (provided
    /// leaves are not renewed), for the daemon's timer; `None` without any.
    pub fn next_renewal(&self) -> Option<SystemTime> {
        self.stored_leaves()
            .into_iter()
            .filter_map(|(_, record)| record.ok())
            .filter(|record| !record.info.provided)
            .map(|record| record.info.renew_at)
            .min()
    }

    /// Every stored leaf by id (sorted), or why it cannot be read.
    pub(crate) fn stored_leaves(&self) -> Vec<(String, Result<Record, Error>)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join(LEAVES)) else {
            return Vec::new();
        };
        let mut leaves: Vec<(String, Result<Record, Error>)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|id| id.parse::<LeafId>().ok())
            .map(|id| {
                let dir = self.leaf_dir(&id);
                let record = read_record(&dir).and_then(|r| {
                    r.ok_or_else(|| Error::corrupt(dir.join(RECORD_FILE), "it is missing"))
                });
                (id.to_string(), record)
            })
            .collect();
        leaves.sort_by(|a, b| a.0.cmp(&b.0));
        leaves
    }
}

fn read_record(dir: &Path) -> Result<Option<Record>, Error> {
    let path = dir.join(RECORD_FILE);
    match fs::read_optional(&path)? {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::corrupt(&path, e)),
        None => Ok(None),
    }
}

/// Writes a leaf's files into `dir`, a directory of the CA directory `ca`
/// that Turtle makes (or has made: see [`fs::own_dir`]).
fn write_leaf(
    ca: &Path,
    dir: &Path,
    key_pem: &str,
    cert_pem: &str,
    chain_pem: &str,
    fullchain_pem: &str,
    record: &Record,
) -> Result<(), Error> {
    fs::own_dir(ca, dir, 0o755)?;
    let record = serde_json::to_vec_pretty(record).expect("a leaf record serializes");
    fs::replace_files(
        dir,
        &[
            NewFile {
                name: KEY_FILE,
                contents: key_pem.as_bytes(),
                mode: PRIVATE,
            },
            NewFile {
                name: CERT_FILE,
                contents: cert_pem.as_bytes(),
                mode: PUBLIC,
            },
            NewFile {
                name: CHAIN_FILE,
                contents: chain_pem.as_bytes(),
                mode: PUBLIC,
            },
            NewFile {
                name: FULLCHAIN_FILE,
                contents: fullchain_pem.as_bytes(),
                mode: PUBLIC,
            },
            NewFile {
                name: RECORD_FILE,
                contents: &record,
                mode: PUBLIC,
            },
        ],
    )
}

/// Checks that `key_pem` is a usable key for the first certificate of `chain` and
/// returns it as PEM in its own form.
fn leaf_key(id: &str, key_pem: &str, chain: &[Vec<u8>]) -> Result<String, Error> {
    let what = format!("certificate {id:?}");
    let invalid = |reason: String| Error::InvalidKey {
        what: what.clone(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| invalid(format!("no private key in the PEM ({e})")))?;
    let tag = match &key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    let pem = pem::encode_config(
        &pem::Pem::new(tag, key.secret_der()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| invalid(format!("{e}; use an ECDSA, Ed25519 or RSA key")))?;
    let certs = chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    match CertifiedKey::new(certs, signer).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(pem),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(Error::KeyMismatch { what })
        }
        Err(e) => Err(invalid(e.to_string())),
    }
}

fn same_set<T: Ord + Clone>(a: &[T], b: &[T]) -> bool {
    let sorted = |v: &[T]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    sorted(a) == sorted(b)
}
