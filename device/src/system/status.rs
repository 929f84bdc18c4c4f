//! What is in place: `/proc/swaps`, Turtle's swap file and zram device, its sysctls.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

use super::swaps::{SwapEntry, find, is, read_swaps};
use super::{read_attr, state, sysctl, zram};

/// The device state `turtle device` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// The profile last applied, from the state file.
    pub profile: Option<String>,
    /// Every line of `/proc/swaps`, Turtle's marked `ours`.
    pub swaps: Vec<SwapEntry>,
    pub swap_file: Option<SwapFileStatus>,
    pub zram: Option<ZramStatus>,
    pub sysctls: Vec<SysctlStatus>,
    /// What could not be read (an unreadable state file, `/proc/swaps`, ...).
    pub problems: Vec<String>,
}

/// Turtle's swap file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapFileStatus {
    pub path: PathBuf,
    pub size: u64,
    pub exists: bool,
    pub active: bool,
}

/// Turtle's zram device, with its `mm_stat` counters (bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZramStatus {
    pub device: u32,
    pub path: PathBuf,
    /// Added in an earlier boot: the record is stale and the device not Turtle's.
    pub stale: bool,
    pub active: bool,
    pub algorithm: Option<String>,
    pub disksize: Option<u64>,
    /// Data stored, uncompressed.
    pub orig_data_size: Option<u64>,
    /// Data stored, compressed.
    pub compr_data_size: Option<u64>,
    /// Memory the device uses, metadata included.
    pub mem_used_total: Option<u64>,
}

/// A sysctl Turtle set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlStatus {
    pub key: String,
    /// Turtle's value.
    pub set: String,
    /// The value before Turtle's first write.
    pub previous: String,
    pub current: Option<String>,
    /// `current` is Turtle's value.
    pub in_effect: bool,
}

/// Reads the state file and the system; never fails, lists what it could not read
/// in `problems`.
pub fn status(paths: &Paths, state_file: &Path) -> DeviceStatus {
    let mut problems = Vec::new();
    let state = state::load(state_file).unwrap_or_else(|e| {
        problems.push(e.to_string());
        state::State::default()
    });
    let mut swaps = read_swaps(paths).unwrap_or_else(|e| {
        problems.push(e.to_string());
        Vec::new()
    });

    let swap_file = state.swap_file.as_ref().map(|rec| {
        let host = paths.host(&rec.path);
        SwapFileStatus {
            path: rec.path.clone(),
            size: rec.size,
            exists: host.exists(),
            active: find(&swaps, &host).is_some(),
        }
    });

    let zram = state.zram.as_ref().map(|rec| {
        let dev = paths.dev(&format!("zram{}", rec.device));
        let stale = !zram::current(paths, rec);
        let block = zram::block(paths, rec.device);
        let attr = |name: &str| read_attr(&block.join(name)).ok();
        let mm: Vec<u64> = attr("mm_stat")
            .map(|t| {
                t.split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        ZramStatus {
            device: rec.device,
            path: PathBuf::from(format!("/dev/zram{}", rec.device)),
            stale,
            active: !stale && find(&swaps, &dev).is_some(),
            algorithm: attr("comp_algorithm").and_then(|t| zram::algorithms(&t).1),
            disksize: attr("disksize").and_then(|t| t.parse().ok()),
            orig_data_size: mm.first().copied(),
            compr_data_size: mm.get(1).copied(),
            mem_used_total: mm.get(2).copied(),
        }
    });

    for entry in &mut swaps {
        let file = state
            .swap_file
            .as_ref()
            .is_some_and(|r| is(entry, &paths.host(&r.path)));
        let dev = state.zram.as_ref().is_some_and(|r| {
            zram::current(paths, r) && is(entry, &paths.dev(&format!("zram{}", r.device)))
        });
        entry.ours = file || dev;
    }

    let sysctls = state
        .sysctls
        .iter()
        .map(|(key, rec)| {
            let current = read_attr(&sysctl::path(paths, key)).ok();
            SysctlStatus {
                key: key.clone(),
                set: rec.set.clone(),
                previous: rec.previous.clone(),
                in_effect: current
                    .as_deref()
                    .is_some_and(|c| sysctl::same(c, &rec.set)),
                current,
            }
        })
        .collect();

    DeviceStatus {
        profile: state.profile,
        swaps,
        swap_file,
        zram,
        sysctls,
        problems,
    }
}
