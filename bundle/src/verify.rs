//! Verification in one forward pass over any reader: header, seal, manifest,
//! then every part's length and SHA-256, then nothing after the last part.
//!
//! Memory stays bounded (the manifest, at most 16 MiB, and a buffer), so a
//! bundle can be verified as it arrives over a pipe. Each failure is a
//! [`VerifyError`] naming the check ([`Check`]) and where: the part, the
//! key id, the offset.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::format::{HEADER_LEN, Header, SEAL_DIGEST_LEN};
use crate::keys::{PublicKey, Trust};
use crate::manifest::Manifest;

/// The check that refused a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Header,
    Version,
    Truncated,
    /// Keys are configured and the bundle is not signed.
    Unsigned,
    /// An unsigned bundle's manifest does not match its digest.
    ManifestDigest,
    Signature,
    UntrustedKey,
    Manifest,
    Part,
    Trailing,
    Io,
    /// The file changed between verification and loading.
    Changed,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("header check failed: {message}")]
    Header { message: String },
    #[error(
        "version check failed: the bundle is format {found}, and this turtle reads format {}: use a turtle that reads it",
        crate::format::VERSION
    )]
    Version { found: u16 },
    #[error(
        "length check failed: {what} {range} runs past the end of the file at offset {end}: the file is truncated"
    )]
    Truncated {
        what: String,
        range: String,
        end: u64,
    },
    #[error(
        "signature check failed: the bundle is not signed, and this box trusts only bundles signed by key(s) {trusted}: sign it with `turtle bundle create --key`"
    )]
    Unsigned { trusted: String },
    #[error(
        "manifest digest check failed: the manifest (bytes {range}) does not match the digest after it: the bundle is damaged"
    )]
    ManifestDigest { range: String },
    #[error(
        "signature check failed: the signature at offset {offset} is not key {key_id}'s over the manifest (bytes {range}): the bundle was changed or damaged"
    )]
    Signature {
        key_id: String,
        offset: u64,
        range: String,
    },
    #[error(
        "trusted key check failed: the bundle is signed by key {key_id}, which this box does not trust (trusted: {trusted}): add its public key to bundles.trusted_keys, or pass --key"
    )]
    UntrustedKey { key_id: String, trusted: String },
    #[error("manifest check failed: {message}")]
    Manifest { message: String },
    #[error(
        "part check failed: part {path} (bytes {start}..{end}) has sha256 {found}, and the manifest says {expected}: the bundle was changed or damaged"
    )]
    Part {
        path: String,
        start: u64,
        end: u64,
        expected: String,
        found: String,
    },
    #[error(
        "trailing data check failed: {extra} byte(s) follow the last part, from offset {offset}: the file is not this bundle alone"
    )]
    Trailing { offset: u64, extra: String },
    #[error("reading the bundle at offset {offset}: {source}")]
    Io { offset: u64, source: std::io::Error },
    #[error("the bundle changed since it was verified: {message}; nothing of it was loaded")]
    Changed { message: String },
}

impl VerifyError {
    pub fn check(&self) -> Check {
        match self {
            Self::Header { .. } => Check::Header,
            Self::Version { .. } => Check::Version,
            Self::Truncated { .. } => Check::Truncated,
            Self::Unsigned { .. } => Check::Unsigned,
            Self::ManifestDigest { .. } => Check::ManifestDigest,
            Self::Signature { .. } => Check::Signature,
            Self::UntrustedKey { .. } => Check::UntrustedKey,
            Self::Manifest { .. } => Check::Manifest,
            Self::Part { .. } => Check::Part,
            Self::Trailing { .. } => Check::Trailing,
            Self::Io { .. } => Check::Io,
            Self::Changed { .. } => Check::Changed,
        }
    }
}

/// Who sealed a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// No signature: only a digest of the manifest.
    Unsigned,
    /// Signed by this key, trusted (or no keys were configured).
    Key(PublicKey),
}

/// A bundle every check passed on.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub signer: Signer,
    /// Where the first part begins.
    pub data_start: u64,
}

/// Verifies a whole bundle read from `r`. `file_len`, when known, lets a
/// truncated or padded file be refused before any part is hashed.
pub fn verify_reader<R: Read>(
    mut r: R,
    trust: &Trust,
    file_len: Option<u64>,
) -> Result<Verified, VerifyError> {
    let Head {
        manifest,
        signer,
        data_start,
        mut at,
    } = read_head(&mut r, trust, file_len)?;
    if let Some(len) = file_len {
        check_length(&manifest, data_start, len)?;
    }
    let mut buf = vec![0u8; 256 << 10];
    for p in &manifest.parts {
        let start = at;
        let end = start + p.size;
        let mut hasher = Sha256::new();
        let mut left = p.size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = read_some(&mut r, &mut buf[..want], at)?;
            if n == 0 {
                return Err(VerifyError::Truncated {
                    what: format!("part {}", p.path),
                    range: format!("{start}..{end}"),
                    end: at,
                });
            }
            hasher.update(&buf[..n]);
            at += n as u64;
            left -= n as u64;
        }
        let found = hex::encode(hasher.finalize());
        if found != p.sha256 {
            return Err(VerifyError::Part {
                path: p.path.clone(),
                start,
                end,
                expected: p.sha256.clone(),
                found,
            });
        }
    }
    let n = read_some(&mut r, &mut buf[..1], at)?;
    if n > 0 {
        return Err(VerifyError::Trailing {
            offset: at,
            extra: "some".into(),
        });
    }
    Ok(Verified {
        manifest,
        signer,
        data_start,
    })
}

/// The manifest of the bundle at `path` with its seal checked (the
/// signature, or the digest of an unsigned one, and the key against
/// `trust`), its parts not read: what a bundle says it carries, to make a
/// delta against it. Never a way to load anything.
pub fn read_manifest(
    path: &std::path::Path,
    trust: &Trust,
) -> Result<(Manifest, Signer), VerifyError> {
    let io = |source| VerifyError::Io { offset: 0, source };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let head = read_head(&mut std::io::BufReader::new(file), trust, Some(len))?;
    Ok((head.manifest, head.signer))
}

/// What precedes the parts, checked.
struct Head {
    manifest: Manifest,
    signer: Signer,
    data_start: u64,
    /// Bytes read so far.
    at: u64,
}

/// Reads and checks the header, the manifest and the seal, and parses the
/// manifest once the seal matched.
fn read_head<R: Read>(
    r: &mut R,
    trust: &Trust,
    file_len: Option<u64>,
) -> Result<Head, VerifyError> {
    let mut at: u64 = 0;
    let mut header = [0u8; HEADER_LEN];
    read_exact(r, &mut header, &mut at, "the header")?;
    let h = Header::decode(&header)?;
    if !h.is_signed() && !trust.is_empty() {
        return Err(VerifyError::Unsigned {
            trusted: trust.ids().join(", "),
        });
    }
    let manifest_range = HEADER_LEN as u64..HEADER_LEN as u64 + h.manifest_len;
    let seal_start = manifest_range.end;
    if let Some(len) = file_len
        && h.data_start() > len
    {
        let (what, range) = if manifest_range.end > len {
            ("the manifest", fmt_range(&manifest_range))
        } else {
            ("the seal", format!("{seal_start}..{}", h.data_start()))
        };
        return Err(VerifyError::Truncated {
            what: what.into(),
            range,
            end: len,
        });
    }
    let manifest_len = usize::try_from(h.manifest_len).expect("at most 16 MiB");
    let mut manifest = vec![0u8; manifest_len];
    read_exact(r, &mut manifest, &mut at, "the manifest")?;
    let mut seal = vec![0u8; h.seal_len as usize];
    read_exact(r, &mut seal, &mut at, "the seal")?;

    let signer = if h.seal_len == SEAL_DIGEST_LEN {
        if Sha256::digest(&manifest)[..] != seal[..] {
            return Err(VerifyError::ManifestDigest {
                range: fmt_range(&manifest_range),
            });
        }
        Signer::Unsigned
    } else {
        let key_bytes: [u8; 32] = seal[..32].try_into().expect("32 bytes");
        let signature: [u8; 64] = seal[32..].try_into().expect("64 bytes");
        let bad = |key_id: String| VerifyError::Signature {
            key_id,
            offset: seal_start,
            range: fmt_range(&manifest_range),
        };
        let key = PublicKey::from_bytes(&key_bytes).map_err(|_| {
            bad(format!(
                "{} (not a valid key)",
                hex::encode(&key_bytes[..8])
            ))
        })?;
        if !key.verifies(&manifest, &signature) {
            return Err(bad(key.id()));
        }
        if !trust.is_empty() && !trust.trusts(&key) {
            return Err(VerifyError::UntrustedKey {
                key_id: key.id(),
                trusted: trust.ids().join(", "),
            });
        }
        Signer::Key(key)
    };

    let manifest =
        Manifest::parse(&manifest).map_err(|message| VerifyError::Manifest { message })?;
    if manifest.format != h.version {
        return Err(VerifyError::Manifest {
            message: format!(
                "the manifest says format {}, the header {}",
                manifest.format, h.version
            ),
        });
    }
    Ok(Head {
        manifest,
        signer,
        data_start: h.data_start(),
        at,
    })
}

/// With the file's length known: the parts end exactly at its end.
fn check_length(manifest: &Manifest, data_start: u64, len: u64) -> Result<(), VerifyError> {
    let mut at = data_start;
    for p in &manifest.parts {
        let end = at.saturating_add(p.size);
        if end > len {
            return Err(VerifyError::Truncated {
                what: format!("part {}", p.path),
                range: format!("{at}..{end}"),
                end: len,
            });
        }
        at = end;
    }
    if len > at {
        return Err(VerifyError::Trailing {
            offset: at,
            extra: (len - at).to_string(),
        });
    }
    Ok(())
}

fn fmt_range(r: &std::ops::Range<u64>) -> String {
    format!("{}..{}", r.start, r.end)
}

/// Fills `buf` or reports what was cut short, and where.
fn read_exact<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    at: &mut u64,
    what: &str,
) -> Result<(), VerifyError> {
    let start = *at;
    let mut filled = 0;
    while filled < buf.len() {
        let n = read_some(r, &mut buf[filled..], *at)?;
        if n == 0 {
            return Err(VerifyError::Truncated {
                what: what.into(),
                range: format!("{start}..{}", start + buf.len() as u64),
                end: *at,
            });
        }
        filled += n;
        *at += n as u64;
    }
    Ok(())
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8], at: u64) -> Result<usize, VerifyError> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(VerifyError::Io { offset: at, source }),
        }
    }
}
