//! Sysctls: written under `/proc/sys`, the value before Turtle's first write
//! remembered once, restored by reset when nobody changed it since.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::paths::Paths;
use crate::profile::sysctl_path;

use super::state::SysctlRecord;
use super::{Change, Session, SystemError};

/// `<root>/proc/sys/<key with slashes>`.
pub(crate) fn path(paths: &Paths, key: &str) -> PathBuf {
    paths.proc(&format!("sys/{}", sysctl_path(key)))
}

/// Values compare by their words: the kernel separates `net.ipv4.tcp_rmem`'s three
/// numbers with tabs and accepts spaces.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

fn read(paths: &Paths, key: &str) -> Result<String, SystemError> {
    let p = path(paths, key);
    match std::fs::read_to_string(&p) {
        Ok(v) => Ok(v.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SystemError::NoSysctl {
            key: key.to_string(),
            path: p,
        }),
        Err(source) => Err(SystemError::Io {
            action: "read",
            path: p,
            source,
        }),
    }
}

fn write(paths: &Paths, key: &str, value: &str) -> Result<(), SystemError> {
    let p = path(paths, key);
    std::fs::write(&p, value).map_err(|source| SystemError::Sysctl {
        key: key.to_string(),
        value: value.to_string(),
        path: p,
        source,
    })
}

/// Sets every sysctl of `desired` and restores those Turtle set that it no longer
/// lists. Carries on past a failed key and returns the first failure.
pub(crate) fn converge(
    s: &mut Session,
    desired: &BTreeMap<String, String>,
) -> Result<(), SystemError> {
    let mut first_error = None;
    let dropped: Vec<(String, SysctlRecord)> = s
        .state
        .sysctls
        .iter()
        .filter(|(k, _)| !desired.contains_key(*k))
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    for (key, rec) in dropped {
        match restore(s, &key, &rec) {
            Ok(()) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for (key, value) in desired {
        if let Err(e) = set(s, key, value) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn set(s: &mut Session, key: &str, value: &str) -> Result<(), SystemError> {
    let current = read(s.paths, key)?;
    let rec = s
        .state
        .sysctls
        .entry(key.to_string())
        .or_insert_with(|| SysctlRecord {
            previous: current.clone(),
            set: value.to_string(),
        });
    rec.set = value.to_string();
    // Recorded before the write, so a crash right after it still restores.
    s.save()?;
    if !same(&current, value) {
        write(s.paths, key, value)?;
        s.changes.push(Change::SysctlSet {
            key: key.to_string(),
            from: current,
            to: value.to_string(),
        });
    }
    Ok(())
}

fn restore(s: &mut Session, key: &str, rec: &SysctlRecord) -> Result<(), SystemError> {
    match read(s.paths, key) {
        Ok(current) if same(&current, &rec.set) => {
            if !same(&current, &rec.previous) {
                write(s.paths, key, &rec.previous)?;
                s.changes.push(Change::SysctlRestored {
                    key: key.to_string(),
                    to: rec.previous.clone(),
                });
            }
        }
        Ok(current) => s.changes.push(Change::SysctlLeft {
            key: key.to_string(),
            current,
            set: rec.set.clone(),
        }),
        // The kernel no longer has it: nothing to restore.
        Err(SystemError::NoSysctl { .. }) => {}
        Err(e) => return Err(e),
    }
    s.state.sysctls.remove(key);
    s.save()
}
