//! Changing the box: the swap file, the zram device and sysctls ([`apply`]), undoing
//! exactly that ([`reset`]), and what is in place ([`status`]).
//!
//! Every step reads the system first and changes only what differs from the profile,
//! so [`apply`] is idempotent, and every change is recorded in the state file before
//! the next one (see [`state`]). Only what the state file records is ever turned
//! off, removed or restored.

mod command;
pub mod state;
mod status;
mod swapfile;
pub mod swaps;
mod sysctl;
mod zram;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;
use crate::profile::Profile;
use crate::units::ByteSize;

use state::State;
pub use status::{DeviceStatus, SwapFileStatus, SysctlStatus, ZramStatus, status};
pub use swaps::{SwapEntry, parse_swaps, read_swaps};

/// Errors changing the box. Messages name the path or command and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "cannot read Turtle's device state {}: {message}; fix it, or move it away to start \
         afresh (Turtle then forgets the swap file, zram device and sysctls it set up)",
        path.display()
    )]
    BadState { path: PathBuf, message: String },

    #[error("{program} not found: install util-linux (mkswap, swapon, swapoff, fallocate)")]
    ProgramMissing { program: String },

    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },

    #[error(
        "{} already exists{} and Turtle did not create it; Turtle leaves it alone: \
         remove it yourself, or set swap.file to another path",
        path.display(),
        if *active { " as active swap" } else { "" }
    )]
    NotOurSwapFile { path: PathBuf, active: bool },

    #[error(
        "not enough space on {} for a {size} swap file: {free} free, {reserve} must stay free; \
         lower swap.size or free space",
        dir.display()
    )]
    NoSpace {
        dir: PathBuf,
        size: ByteSize,
        free: ByteSize,
        reserve: ByteSize,
    },

    #[error(
        "zram is not available ({} is missing): load the zram module (modprobe zram), \
         or set zram: null",
        path.display()
    )]
    NoZram { path: PathBuf },

    #[error(
        "the kernel's zram does not offer {algorithm} (it offers {}): set zram.algorithm \
         to one of those",
        available.join(", ")
    )]
    ZramAlgorithm {
        algorithm: String,
        available: Vec<String>,
    },

    #[error("cannot read MemTotal from {}: zram.size as a share of RAM needs it", path.display())]
    NoMemTotal { path: PathBuf },

    #[error(
        "{} answered {value:?}, not a device number",
        path.display()
    )]
    BadHotAdd { path: PathBuf, value: String },

    #[error(
        "this kernel has no sysctl {key} ({} is missing): remove it from the profile's sysctls",
        path.display()
    )]
    NoSysctl { key: String, path: PathBuf },

    #[error("cannot set sysctl {key} to {value:?} ({}): {source}", path.display())]
    Sysctl {
        key: String,
        value: String,
        path: PathBuf,
        source: std::io::Error,
    },

    /// Some steps failed; the others were done (`changes`). One failure displays as
    /// itself, several as a list.
    #[error("{}", list(failures))]
    Incomplete {
        failures: Vec<SystemError>,
        changes: Vec<Change>,
    },
}

fn list(failures: &[SystemError]) -> String {
    match failures {
        [one] => one.to_string(),
        many => format!(
            "{} device steps failed: {}",
            many.len(),
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

impl SystemError {
    /// The failures an error stands for: those of [`SystemError::Incomplete`], or itself.
    pub fn failures(&self) -> Vec<&SystemError> {
        match self {
            SystemError::Incomplete { failures, .. } => failures.iter().collect(),
            other => vec![other],
        }
    }
}

/// One thing [`apply`] or [`reset`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    SwapFileCreated {
        path: PathBuf,
        size: u64,
    },
    /// Turtle's swap file existed but was off (after a reboot): turned on again.
    SwapFileActivated {
        path: PathBuf,
    },
    SwapFileRemoved {
        path: PathBuf,
    },
    /// Turtle's swap file is gone; the record is dropped.
    SwapFileForgotten {
        path: PathBuf,
    },
    ZramCreated {
        device: u32,
        disksize: u64,
        algorithm: String,
        priority: i32,
    },
    ZramRemoved {
        device: u32,
    },
    /// Recorded in an earlier boot: the device is gone, the record dropped, the device
    /// of that number left alone.
    ZramForgotten {
        device: u32,
    },
    SysctlSet {
        key: String,
        from: String,
        to: String,
    },
    SysctlRestored {
        key: String,
        to: String,
    },
    /// Changed by someone else since Turtle set it: left as it is.
    SysctlLeft {
        key: String,
        current: String,
        set: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::SwapFileCreated { path, size } => write!(
                f,
                "created swap file {} ({}) and turned it on",
                path.display(),
                ByteSize(*size)
            ),
            Change::SwapFileActivated { path } => {
                write!(f, "turned swap file {} on again", path.display())
            }
            Change::SwapFileRemoved { path } => {
                write!(f, "turned off and removed swap file {}", path.display())
            }
            Change::SwapFileForgotten { path } => {
                write!(f, "forgot swap file {}: it is gone", path.display())
            }
            Change::ZramCreated {
                device,
                disksize,
                algorithm,
                priority,
            } => write!(
                f,
                "added /dev/zram{device} ({}, {algorithm}) as swap with priority {priority}",
                ByteSize(*disksize)
            ),
            Change::ZramRemoved { device } => {
                write!(f, "turned off and removed /dev/zram{device}")
            }
            Change::ZramForgotten { device } => write!(
                f,
                "forgot /dev/zram{device}: it was added before the last reboot"
            ),
            Change::SysctlSet { key, from, to } => {
                write!(f, "set {key} to {to} (was {from})")
            }
            Change::SysctlRestored { key, to } => write!(f, "restored {key} to {to}"),
            Change::SysctlLeft { key, current, set } => write!(
                f,
                "left {key} at {current}: it was changed since Turtle set it to {set}"
            ),
        }
    }
}

/// What [`apply`] did and what is in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    pub profile: String,
    /// Empty when the box already matched the profile.
    pub changes: Vec<Change>,
    /// Turtle's swap file, when there is one.
    pub swap_file: Option<PathBuf>,
    /// Turtle's zram device number (`/dev/zram<N>`), when there is one.
    pub zram_device: Option<u32>,
}

/// What [`reset`] undid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetReport {
    pub changes: Vec<Change>,
}

/// One apply or reset: the lock, the state and the changes so far.
pub(crate) struct Session<'a> {
    pub paths: &'a Paths,
    pub state_file: &'a Path,
    pub state: State,
    pub changes: Vec<Change>,
    saved: State,
    _lock: File,
}

impl<'a> Session<'a> {
    fn open(paths: &'a Paths, state_file: &'a Path) -> Result<Self, SystemError> {
        let lock = state::lock(state_file)?;
        let state = state::load(state_file)?;
        Ok(Self {
            paths,
            state_file,
            saved: state.clone(),
            state,
            changes: Vec::new(),
            _lock: lock,
        })
    }

    /// Writes the state file when the state changed since the last write.
    pub fn save(&mut self) -> Result<(), SystemError> {
        if self.state != self.saved {
            state::save(self.state_file, &self.state)?;
            self.saved = self.state.clone();
        }
        Ok(())
    }
}

/// Sets the box up as `profile` says: the swap file, the zram device, the sysctls.
///
/// Idempotent: what is already in place is left alone (the same zram device, no new
/// swap entries). What Turtle set up earlier and the profile no longer asks for (or
/// asks for differently) is undone first. A swap file at the profile's path that
/// Turtle did not create is refused and left untouched; so is a swap file that would
/// leave less than `swap.reserve` free. A failed step does not stop the others: the
/// error is [`SystemError::Incomplete`] with every failure and the changes made.
/// Runs external programs and blocks; call it from `spawn_blocking` in async code.
pub fn apply(
    paths: &Paths,
    profile: &Profile,
    state_file: &Path,
) -> Result<ApplyReport, SystemError> {
    let mut s = Session::open(paths, state_file)?;
    s.state.profile = Some(profile.name.clone());
    let mut failures = Vec::new();
    if let Err(e) = swapfile::converge(&mut s, profile.swap.as_ref()) {
        failures.push(e);
    }
    if let Err(e) = zram::converge(&mut s, profile.zram.as_ref()) {
        failures.push(e);
    }
    if let Err(e) = sysctl::converge(&mut s, &profile.effective_sysctls()) {
        failures.push(e);
    }
    s.save()?;
    if !failures.is_empty() {
        return Err(SystemError::Incomplete {
            failures,
            changes: s.changes,
        });
    }
    Ok(ApplyReport {
        profile: profile.name.clone(),
        swap_file: s.state.swap_file.as_ref().map(|r| r.path.clone()),
        zram_device: s.state.zram.as_ref().map(|r| r.device),
        changes: s.changes,
    })
}

/// Undoes what the state file records: turns off and deletes Turtle's swap file,
/// turns off, resets and removes Turtle's zram device, restores the sysctls Turtle
/// set (those still at Turtle's value), then removes the state file. Idempotent: with
/// no state file it does nothing. A failure leaves the state file recording what is
/// still in place.
pub fn reset(paths: &Paths, state_file: &Path) -> Result<ResetReport, SystemError> {
    if !state_file.exists() {
        return Ok(ResetReport {
            changes: Vec::new(),
        });
    }
    let mut s = Session::open(paths, state_file)?;
    let mut failures = Vec::new();
    if let Err(e) = swapfile::converge(&mut s, None) {
        failures.push(e);
    }
    if let Err(e) = zram::converge(&mut s, None) {
        failures.push(e);
    }
    if let Err(e) = sysctl::converge(&mut s, &Default::default()) {
        failures.push(e);
    }
    if failures.is_empty() {
        state::remove(state_file)?;
        Ok(ResetReport { changes: s.changes })
    } else {
        s.save()?;
        Err(SystemError::Incomplete {
            failures,
            changes: s.changes,
        })
    }
}

/// Writes `value` to a sysfs or procfs file in one write.
pub(crate) fn write_attr(path: &Path, value: &str) -> Result<(), SystemError> {
    std::fs::write(path, value).map_err(|source| SystemError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a sysfs or procfs file, trimmed.
pub(crate) fn read_attr(path: &Path) -> Result<String, SystemError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| SystemError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })
}
