//! Writing a bundle: header, manifest, seal, then the parts in manifest
//! order, each hashed again as it is copied.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::format::{Header, SEAL_DIGEST_LEN, SEAL_ED25519_LEN, VERSION};
use crate::keys::SecretKey;
use crate::manifest::{Manifest, Part};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the manifest is not consistent: {0}")]
    Manifest(String),
    #[error(
        "part {path} changed while the bundle was written (sha256 {found}, expected {expected}, {size} byte(s)): write it again"
    )]
    PartChanged {
        path: String,
        expected: String,
        found: String,
        size: u64,
    },
    #[error("part {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing the bundle: {0}")]
    Write(std::io::Error),
}

/// The length of the bundle [`write_bundle`] writes for `manifest`, signed
/// or not: known before any part is read, so a stream can announce it.
pub fn bundle_len(manifest: &Manifest, signed: bool) -> u64 {
    let seal = if signed {
        SEAL_ED25519_LEN
    } else {
        SEAL_DIGEST_LEN
    };
    crate::format::HEADER_LEN as u64
        + manifest.to_bytes().len() as u64
        + u64::from(seal)
        + manifest.parts.iter().map(|p| p.size).sum::<u64>()
}

/// Writes the bundle to `out`, reading each part from `open`. With `key`,
/// the manifest is signed; without, it is sealed by its SHA-256 only.
pub fn write_bundle<W: Write, R: Read>(
    mut out: W,
    manifest: &Manifest,
    key: Option<&SecretKey>,
    mut open: impl FnMut(&Part) -> std::io::Result<R>,
) -> Result<(), WriteError> {
    manifest.check().map_err(WriteError::Manifest)?;
    if manifest.format != VERSION {
        return Err(WriteError::Manifest(format!(
            "format {} is not {VERSION}",
            manifest.format
        )));
    }
    let bytes = manifest.to_bytes();
    let seal: Vec<u8> = match key {
        Some(k) => [&k.public().to_bytes()[..], &k.sign(&bytes)[..]].concat(),
        None => Sha256::digest(&bytes).to_vec(),
    };
    let header = Header {
        version: VERSION,
        flags: 0,
        seal_len: if key.is_some() {
            SEAL_ED25519_LEN
        } else {
            SEAL_DIGEST_LEN
        },
        manifest_len: bytes.len() as u64,
    };
    out.write_all(&header.encode()).map_err(WriteError::Write)?;
    out.write_all(&bytes).map_err(WriteError::Write)?;
    out.write_all(&seal).map_err(WriteError::Write)?;
    let mut buf = vec![0u8; 256 << 10];
    for p in &manifest.parts {
        let read_err = |source| WriteError::Read {
            path: p.path.clone(),
            source,
        };
        let mut src = open(p).map_err(read_err)?.take(p.size);
        let mut hasher = Sha256::new();
        let mut copied = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(WriteError::Write)?;
            copied += n as u64;
        }
        let found = hex::encode(hasher.finalize());
        if copied != p.size || found != p.sha256 {
            return Err(WriteError::PartChanged {
                path: p.path.clone(),
                expected: p.sha256.clone(),
                found,
                size: copied,
            });
        }
    }
    out.flush().map_err(WriteError::Write)
}
