//! Files on disk: private directories, atomic replacement, the CA's lock.
//!
//! Every file is written to a temporary name in its own directory, flushed to disk and
//! renamed over the old one, so a reader sees the old file or the new one, never a
//! part; a directory bind-mounted into a container sees the new file (a bind mount of
//! a single file would keep showing the old one).

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// Mode of private keys.
pub(crate) const PRIVATE: u32 = 0o600;
/// Mode of certificates and metadata.
pub(crate) const PUBLIC: u32 = 0o644;

/// Creates `dir` (and missing parents) with `mode` when it does not exist; an
/// existing directory keeps its permissions.
pub(crate) fn ensure_dir(dir: &Path, mode: u32) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .and_then(|()| fs::set_permissions(dir, Permissions::from_mode(mode)))
        .map_err(|e| Error::io("create directory", dir, e))
}

/// Makes `dir` (under `root`, which exists) and the missing directories
/// between them, each with `mode`; or, for each that exists, checks it is
/// Turtle's: a directory (not a link to one), owned by the user Turtle runs
/// as, no wider than `mode`. Then `dir`, with its links resolved, must still
/// be under `root`. Anything else is refused ([`Error::NotOurs`]), never
/// taken over: Turtle changes the mode of a directory only right after
/// making it (past the umask).
pub fn own_dir(root: &Path, dir: &Path, mode: u32) -> Result<(), Error> {
    let not_ours = |path: &Path, reason: String| Error::NotOurs {
        path: path.to_path_buf(),
        reason,
    };
    let rest = dir
        .strip_prefix(root)
        .map_err(|_| not_ours(dir, format!("it is not under {}", root.display())))?;
    let mut at = root.to_path_buf();
    for part in rest.components() {
        let std::path::Component::Normal(part) = part else {
            return Err(not_ours(dir, "its path walks out of its parent".into()));
        };
        at.push(part);
        match DirBuilder::new().mode(mode).create(&at) {
            Ok(()) => fs::set_permissions(&at, Permissions::from_mode(mode))
                .map_err(|e| Error::io("set the mode of", &at, e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_ours(&at, mode)?,
            Err(e) => return Err(Error::io("create directory", &at, e)),
        }
    }
    let canonical = |p: &Path| fs::canonicalize(p).map_err(|e| Error::io("resolve", p, e));
    if !canonical(dir)?.starts_with(canonical(root)?) {
        return Err(not_ours(
            dir,
            format!("it resolves to a place outside {}", root.display()),
        ));
    }
    Ok(())
}

/// Whether an existing `dir` is one Turtle made: see [`own_dir`].
fn check_ours(dir: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::io("inspect", dir, e))?;
    let reason = if meta.file_type().is_symlink() {
        Some("it is a symbolic link".to_string())
    } else if !meta.is_dir() {
        Some("it is not a directory".to_string())
    } else if meta.uid() != rustix::process::geteuid().as_raw() {
        Some(format!("it is owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o777 & !mode != 0 {
        Some(format!(
            "its mode {:o} is wider than {mode:o}",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::NotOurs {
            path: dir.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// One file to write: name in the directory, contents, mode.
pub(crate) struct NewFile<'a> {
    pub name: &'a str,
    pub contents: &'a [u8],
    pub mode: u32,
}

/// Replaces the files in `dir`: all are written to temporary files and flushed first,
/// then renamed in the given order, then the directory is flushed. The renames come
/// in a burst, so a reader that reads several of them at once rarely sees a mix.
pub(crate) fn replace_files(dir: &Path, files: &[NewFile<'_>]) -> Result<(), Error> {
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(files.len());
    let result = (|| {
        for file in files {
            let target = dir.join(file.name);
            let temp = temp_path(dir, file.name);
            staged.push((temp.clone(), target));
            write_new(&temp, file.contents, file.mode)?;
        }
        for (temp, target) in &staged {
            fs::rename(temp, target).map_err(|e| Error::io("replace", target, e))?;
        }
        sync_dir(dir)
    })();
    if result.is_err() {
        for (temp, _) in &staged {
            let _ = fs::remove_file(temp);
        }
    }
    result
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    // The mode again, past the umask.
    file.set_permissions(Permissions::from_mode(mode))
        .and_then(|()| file.write_all(contents))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", path, e))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("flush directory", dir, e))
}

/// Reads a text file; `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Reads a text file that must exist.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::io("read", path, e))
}

/// An exclusive lock on a directory's `.lock` file, held until dropped. It orders
/// every change to the CA and its leaves between processes (a daemon and a CLI) and
/// between threads (each lock opens the file anew).
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_dir_makes_private_directories_and_stays_under_its_root() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir(&root).unwrap();
        own_dir(&root, &root.join("secrets/p"), 0o700).unwrap();
        for d in ["secrets", "secrets/p"] {
            let m = fs::metadata(root.join(d)).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o700, "{d}");
        }
        // Again: what it made is its own.
        own_dir(&root, &root.join("secrets/p"), 0o700).unwrap();
        for outside in [tmp.path().join("elsewhere"), root.join("secrets/../../x")] {
            let e = own_dir(&root, &outside, 0o700).unwrap_err();
            assert!(matches!(e, Error::NotOurs { .. }), "{e}");
        }
        assert!(!tmp.path().join("elsewhere").exists());
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn replace_files_sets_modes_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        for round in ["one", "two"] {
            replace_files(
                dir.path(),
                &[
                    NewFile {
                        name: "key.pem",
                        contents: round.as_bytes(),
                        mode: PRIVATE,
                    },
                    NewFile {
                        name: "cert.pem",
                        contents: round.as_bytes(),
                        mode: PUBLIC,
                    },
                ],
            )
            .unwrap();
        }
        let mode = |name: &str| {
            fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("key.pem"), 0o600);
        assert_eq!(mode("cert.pem"), 0o644);
        assert_eq!(
            fs::read_to_string(dir.path().join("key.pem")).unwrap(),
            "two"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
