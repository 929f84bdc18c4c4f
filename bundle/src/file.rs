//! A bundle file verified on disk, and the second pass that hands its
//! archive on.
//!
//! The file is opened once; the handle serves both passes, so renaming
//! another file into its place changes nothing. Before the second pass the
//! handle's device, inode, size and modification time must be those of the
//! first, and every part is hashed again as it is read: a part whose bytes
//! changed in place fails on the read that would deliver its last bytes, so
//! those bytes never leave, and the archive's index (sent last) never
//! reaches the engine. No temporary copy is made: a box short of disk needs
//! no second copy of its images, and flash storage is written once less.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::archive;
use crate::keys::Trust;
use crate::manifest::{Manifest, Part};
use crate::verify::{Signer, Verified, VerifyError, verify_reader};

/// What must not change between the passes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Identity {
    fn of(file: &File) -> std::io::Result<Self> {
        let m = file.metadata()?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }
}

/// A bundle file that passed every check, with the handle it was read through.
#[derive(Debug)]
pub struct VerifiedFile {
    path: PathBuf,
    file: File,
    identity: Identity,
    verified: Verified,
}

/// Verifies the bundle at `path` completely.
pub fn verify_file(path: &Path, trust: &Trust) -> Result<VerifiedFile, VerifyError> {
    let io = |source| VerifyError::Io { offset: 0, source };
    let file = File::open(path).map_err(io)?;
    let identity = Identity::of(&file).map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    let verified = verify_reader(BufReader::new(&file), trust, Some(identity.len))?;
    let checked = VerifiedFile {
        path: path.to_path_buf(),
        file,
        identity,
        verified,
    };
    // The file did not change while it was read.
    checked.still_same()?;
    Ok(checked)
}

impl VerifiedFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.verified.manifest
    }

    pub fn signer(&self) -> &Signer {
        &self.verified.signer
    }

    /// The bundle's size in bytes.
    pub fn len(&self) -> u64 {
        self.identity.len
    }

    pub fn is_empty(&self) -> bool {
        self.identity.len == 0
    }

    /// Writes the `docker save` archive of the parts to `out`: the second
    /// pass, which checks the file is the one verified and hashes each part
    /// again.
    pub fn write_archive<W: Write>(&self, out: W) -> Result<(), VerifyError> {
        self.still_same()?;
        let m = &self.verified.manifest;
        let mut offset = self.verified.data_start;
        let result = archive::write_archive(out, &m.parts, &m.links, |p| {
            let r = PartReader::new(&self.file, p, offset);
            offset += p.size;
            Ok(r)
        });
        match result {
            Ok(()) => Ok(()),
            Err(e) => match e.get_ref().and_then(|i| i.downcast_ref::<ChangedPart>()) {
                Some(c) => Err(VerifyError::Changed {
                    message: c.0.clone(),
                }),
                None => Err(VerifyError::Io { offset, source: e }),
            },
        }
    }

    fn still_same(&self) -> Result<(), VerifyError> {
        let now =
            Identity::of(&self.file).map_err(|source| VerifyError::Io { offset: 0, source })?;
        if now != self.identity {
            return Err(VerifyError::Changed {
                message: format!(
                    "{} is now {} bytes modified at {}.{:09}, and was {} bytes modified at {}.{:09}",
                    self.path.display(),
                    now.len,
                    now.mtime.0,
                    now.mtime.1,
                    self.identity.len,
                    self.identity.mtime.0,
                    self.identity.mtime.1
                ),
            });
        }
        Ok(())
    }
}

/// A part whose bytes differ from those verified.
#[derive(Debug)]
struct ChangedPart(String);

impl std::fmt::Display for ChangedPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChangedPart {}

/// Reads one part by position, hashing it; the read that reaches its end
/// fails instead of returning bytes when the hash is not the manifest's.
struct PartReader<'a> {
    file: &'a File,
    part: Part,
    start: u64,
    pos: u64,
    end: u64,
    hasher: Sha256,
}

impl<'a> PartReader<'a> {
    fn new(file: &'a File, part: &Part, start: u64) -> Self {
        Self {
            file,
            part: part.clone(),
            start,
            pos: start,
            end: start + part.size,
            hasher: Sha256::new(),
        }
    }
}

impl Read for PartReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        let changed = |what: String| std::io::Error::other(ChangedPart(what));
        if n == 0 {
            return Err(changed(format!(
                "part {} (bytes {}..{}) ends at offset {}",
                self.part.path, self.start, self.end, self.pos
            )));
        }
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        if self.pos == self.end {
            let found = hex::encode(std::mem::take(&mut self.hasher).finalize());
            if found != self.part.sha256 {
                return Err(changed(format!(
                    "part {} (bytes {}..{}) now has sha256 {found}, and was verified with {}",
                    self.part.path, self.start, self.end, self.part.sha256
                )));
            }
        }
        Ok(n)
    }
}
