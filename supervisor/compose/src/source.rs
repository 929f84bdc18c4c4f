//! Where the loader reads files from: the disk, or files held in memory
//! ([`crate::load_in_memory`]: compose text that arrived as text, such as a
//! release, and the fuzzer). In memory the disk is never touched: a path that
//! is not among the files does not exist, whether it is a compose file, an
//! `include`, an `extends` file, `.env` or an `env_file`.
//!
//! A leaf: the loading stages read through it; it uses none of them.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files a load reads, by absolute, lexically clean path.
#[derive(Debug, Clone, Default)]
pub(crate) enum Source {
    #[default]
    Disk,
    Memory(Arc<BTreeMap<PathBuf, String>>),
}

impl Source {
    /// The text of the file at `path`.
    pub fn read(&self, path: &Path) -> io::Result<String> {
        match self {
            Source::Disk => std::fs::read_to_string(path),
            Source::Memory(files) => files.get(path).cloned().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no such file among the files given",
                )
            }),
        }
    }

    /// Whether `path` is a file.
    pub fn is_file(&self, path: &Path) -> bool {
        match self {
            Source::Disk => path.is_file(),
            Source::Memory(files) => files.contains_key(path),
        }
    }
}
