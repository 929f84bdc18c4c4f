//! The swap file: created once with enough space left, turned on at a low priority,
//! and never a file Turtle did not create.

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::profile::SwapConfig;
use crate::units::ByteSize;

use super::command::run;
use super::state::SwapFileRecord;
use super::swaps::{find, read_swaps};
use super::{Change, Session, SystemError};

/// Brings the swap file in line with `desired` (`None`: Turtle's file removed).
pub(crate) fn converge(s: &mut Session, desired: Option<&SwapConfig>) -> Result<(), SystemError> {
    if let Some(rec) = s.state.swap_file.clone() {
        let same = desired.is_some_and(|d| {
            d.file == rec.path && d.size.0 == rec.size && d.priority == rec.priority
        });
        if !same {
            remove(s, &rec)?;
        }
    }
    let Some(want) = desired else {
        return Ok(());
    };
    let host = s.paths.host(&want.file);
    let swaps = read_swaps(s.paths)?;
    let active = find(&swaps, &host).is_some();

    if let Some(rec) = s.state.swap_file.clone() {
        if active {
            return Ok(());
        }
        let size_now = std::fs::metadata(&host).ok().map(|m| m.len());
        if size_now == Some(rec.size) {
            // Turtle's file, off (a reboot, or someone ran swapoff): turn it on again.
            run("mkswap", &[host.as_os_str()])?;
            swapon(&host, rec.priority)?;
            s.changes.push(Change::SwapFileActivated {
                path: want.file.clone(),
            });
            return Ok(());
        }
        // Gone, or cut short by an interrupted creation: start over.
        if size_now.is_some() {
            remove_file(&host)?;
        }
        s.state.swap_file = None;
        s.save()?;
        s.changes.push(Change::SwapFileForgotten {
            path: want.file.clone(),
        });
    }

    if active || host.symlink_metadata().is_ok() {
        return Err(SystemError::NotOurSwapFile { path: host, active });
    }
    create(s, want, &host)
}

fn create(s: &mut Session, want: &SwapConfig, host: &Path) -> Result<(), SystemError> {
    let dir = host.parent().expect("validated: swap.file names a file");
    std::fs::create_dir_all(dir).map_err(|source| SystemError::Io {
        action: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let vfs = rustix::fs::statvfs(dir).map_err(|e| SystemError::Io {
        action: "measure free space on",
        path: dir.to_path_buf(),
        source: e.into(),
    })?;
    let free = vfs.f_bavail.saturating_mul(vfs.f_frsize);
    if free < want.size.0.saturating_add(want.reserve.0) {
        return Err(SystemError::NoSpace {
            dir: dir.to_path_buf(),
            size: want.size,
            free: ByteSize(free),
            reserve: want.reserve,
        });
    }

    let io = |action: &'static str| {
        let path = host.to_path_buf();
        move |source| SystemError::Io {
            action,
            path,
            source,
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(host)
        .map_err(io("create"))?;
    // Recorded before it is filled: whatever happens next, reset removes it.
    s.state.swap_file = Some(SwapFileRecord {
        path: want.file.clone(),
        size: want.size.0,
        priority: want.priority,
    });
    s.save()?;

    let size = want.size.0.to_string();
    if run(
        "fallocate",
        &[std::ffi::OsStr::new("-l"), size.as_ref(), host.as_os_str()],
    )
    .is_err()
    {
        // No fallocate, or a filesystem without it: write zeros.
        fill_with_zeros(&mut file, want.size.0).map_err(io("write"))?;
    }
    file.sync_all().map_err(io("write"))?;
    drop(file);
    std::fs::set_permissions(host, std::fs::Permissions::from_mode(0o600)).map_err(io("chmod"))?;
    run("mkswap", &[host.as_os_str()])?;
    swapon(host, want.priority)?;
    s.changes.push(Change::SwapFileCreated {
        path: want.file.clone(),
        size: want.size.0,
    });
    Ok(())
}

/// Makes `file` exactly `size` zero bytes, written 1 MiB at a time (no holes, which
/// swapon refuses).
fn fill_with_zeros(file: &mut File, size: u64) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn swapon(host: &Path, priority: Option<i32>) -> Result<(), SystemError> {
    match priority {
        Some(p) => run(
            "swapon",
            &[
                std::ffi::OsStr::new("--priority"),
                p.to_string().as_ref(),
                host.as_os_str(),
            ],
        ),
        None => run("swapon", &[host.as_os_str()]),
    }
    .map(drop)
}

/// Turns off and deletes Turtle's swap file and drops its record.
fn remove(s: &mut Session, rec: &SwapFileRecord) -> Result<(), SystemError> {
    let host = s.paths.host(&rec.path);
    let swaps = read_swaps(s.paths)?;
    if find(&swaps, &host).is_some() {
        run("swapoff", &[host.as_os_str()])?;
    }
    let existed = host.symlink_metadata().is_ok();
    remove_file(&host)?;
    s.state.swap_file = None;
    s.save()?;
    s.changes.push(if existed {
        Change::SwapFileRemoved {
            path: rec.path.clone(),
        }
    } else {
        Change::SwapFileForgotten {
            path: rec.path.clone(),
        }
    });
    Ok(())
}

fn remove_file(host: &Path) -> Result<(), SystemError> {
    match std::fs::remove_file(host) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SystemError::Io {
            action: "remove",
            path: host.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn zeros_fill_the_whole_file() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"old contents that must go").unwrap();
        let size = (3 << 20) + 12_345;
        fill_with_zeros(&mut f, size).unwrap();
        assert_eq!(f.metadata().unwrap().len(), size);
        f.rewind().unwrap();
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        assert!(all.iter().all(|b| *b == 0));
    }
}
