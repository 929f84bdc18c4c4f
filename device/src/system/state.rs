//! The state file: exactly what Turtle created or changed on the box, so `reset`
//! undoes that and nothing else.
//!
//! ```json
//! {
//!   "version": 1,
//!   "profile": "raspberrypi3",
//!   "swap_file": {"path": "/var/lib/turtle/swapfile", "size": 1073741824, "priority": null},
//!   "zram": {"device": 1, "disksize": 483127296, "algorithm": "lz4", "priority": 100,
//!            "boot_id": "823661b9-853f-488f-8074-dd8d533a679b"},
//!   "sysctls": {"vm.swappiness": {"previous": "60", "set": "100"}}
//! }
//! ```
//!
//! Paths are as on the box (not joined to the root). A zram device lives until the
//! next boot, so it is recorded with the boot id (`/proc/sys/kernel/random/boot_id`):
//! after a reboot the record is stale and forgotten without touching the device of
//! that number, which may be someone else's by now. The file is replaced atomically
//! (written beside it, then renamed) after every single change, so a crash between
//! two steps never loses track of something Turtle created.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SystemError;

/// The state file's format version.
pub const STATE_VERSION: u32 = 1;

/// What Turtle set up (see the module docs for the JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The profile last applied.
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub swap_file: Option<SwapFileRecord>,
    #[serde(default)]
    pub zram: Option<ZramRecord>,
    /// By key as the profile writes it.
    #[serde(default)]
    pub sysctls: BTreeMap<String, SysctlRecord>,
}

/// A swap file Turtle created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapFileRecord {
    pub path: PathBuf,
    pub size: u64,
    pub priority: Option<i32>,
}

/// A zram device Turtle added (`/dev/zram<device>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZramRecord {
    pub device: u32,
    pub disksize: u64,
    pub algorithm: String,
    pub priority: i32,
    /// The boot the device was added in; `None` where the kernel gives no boot id.
    pub boot_id: Option<String>,
}

/// A sysctl Turtle wrote: the value before Turtle's first write, and Turtle's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlRecord {
    pub previous: String,
    pub set: String,
}

impl State {
    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.swap_file.is_none() && self.zram.is_none() && self.sysctls.is_empty()
    }
}

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> Result<State, SystemError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(State {
                version: STATE_VERSION,
                ..State::default()
            });
        }
        Err(source) => {
            return Err(SystemError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let state: State = serde_json::from_str(&text).map_err(|e| SystemError::BadState {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if state.version != STATE_VERSION {
        return Err(SystemError::BadState {
            path: path.to_path_buf(),
            message: format!(
                "version {} is not {STATE_VERSION}, the version this Turtle writes",
                state.version
            ),
        });
    }
    Ok(state)
}

/// Writes the state file atomically (a temporary file beside it, flushed, renamed).
pub fn save(path: &Path, state: &State) -> Result<(), SystemError> {
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| SystemError::Io {
            action,
            path: p,
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    let tmp = sibling(path, ".tmp");
    let mut text = serde_json::to_string_pretty(state).expect("the state serializes");
    text.push('\n');
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(text.as_bytes()).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", &tmp))?;
    Ok(())
}

/// Removes the state file; a missing one is fine. The lock file stays: removing it
/// while another process waits on it would let a third take a second lock.
pub fn remove(path: &Path) -> Result<(), SystemError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SystemError::Io {
            action: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Takes the exclusive lock that orders every change between processes (a daemon
/// and a CLI); released when the file is dropped.
pub fn lock(path: &Path) -> Result<File, SystemError> {
    let lock_path = sibling(path, ".lock");
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SystemError::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| SystemError::Io {
            action: "open",
            path: lock_path.clone(),
            source,
        })?;
    f.lock().map_err(|source| SystemError::Io {
        action: "lock",
        path: lock_path,
        source,
    })?;
    Ok(f)
}

/// `device.json` -> `device.json<suffix>`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
