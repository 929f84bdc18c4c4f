//! The zram device: added with `hot_add`, set up, turned on above the swap file, and
//! removed with `hot_remove`; never a zram device Turtle did not add.

use std::path::PathBuf;

use crate::detect::read_mem_total;
use crate::paths::Paths;
use crate::profile::ZramConfig;

use super::command::run;
use super::state::ZramRecord;
use super::swaps::{find, read_swaps};
use super::{Change, Session, SystemError, read_attr, write_attr};

/// `/proc/sys/kernel/random/boot_id` under the root.
pub(crate) fn boot_id(paths: &Paths) -> Option<String> {
    read_attr(&paths.proc("sys/kernel/random/boot_id")).ok()
}

/// Whether a record was made in this boot (no boot id on either side: assume so).
pub(crate) fn current(paths: &Paths, rec: &ZramRecord) -> bool {
    match (&rec.boot_id, boot_id(paths)) {
        (Some(then), Some(now)) => *then == now,
        _ => true,
    }
}

/// The algorithms a zram device offers: `[lzo-rle] lzo lz4` -> all three, and the
/// one in brackets (the current one).
pub(crate) fn algorithms(text: &str) -> (Vec<String>, Option<String>) {
    let mut all = Vec::new();
    let mut current = None;
    for word in text.split_whitespace() {
        if let Some(w) = word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
            current = Some(w.to_string());
            all.push(w.to_string());
        } else {
            all.push(word.to_string());
        }
    }
    (all, current)
}

pub(crate) fn block(paths: &Paths, device: u32) -> PathBuf {
    paths.sys(&format!("block/zram{device}"))
}

fn control(paths: &Paths) -> PathBuf {
    paths.sys("class/zram-control")
}

/// Brings Turtle's zram device in line with `desired` (`None`: removed).
pub(crate) fn converge(s: &mut Session, desired: Option<&ZramConfig>) -> Result<(), SystemError> {
    let want = match desired {
        Some(z) => {
            let mem = read_mem_total(s.paths).ok_or_else(|| SystemError::NoMemTotal {
                path: s.paths.proc("meminfo"),
            })?;
            Some((z, z.size.bytes(mem)))
        }
        None => None,
    };

    if let Some(rec) = s.state.zram.clone() {
        if !current(s.paths, &rec) {
            s.state.zram = None;
            s.save()?;
            s.changes.push(Change::ZramForgotten { device: rec.device });
        } else {
            let dev = s.paths.dev(&format!("zram{}", rec.device));
            let active = find(&read_swaps(s.paths)?, &dev).is_some();
            let same = want.is_some_and(|(z, disksize)| {
                disksize == rec.disksize
                    && z.algorithm == rec.algorithm
                    && z.priority == rec.priority
            });
            if active && same {
                return Ok(());
            }
            remove(s, &rec)?;
        }
    }

    match want {
        Some((z, disksize)) => create(s, z, disksize),
        None => Ok(()),
    }
}

fn create(s: &mut Session, z: &ZramConfig, disksize: u64) -> Result<(), SystemError> {
    let control = control(s.paths);
    if !control.exists() && s.paths.root == std::path::Path::new("/") {
        // A kernel with zram as a module that nothing loaded yet.
        let _ = run("modprobe", &["zram"]);
    }
    if !control.exists() {
        return Err(SystemError::NoZram { path: control });
    }
    let hot_add = control.join("hot_add");
    let answer = read_attr(&hot_add)?;
    let device: u32 = answer.parse().map_err(|_| SystemError::BadHotAdd {
        path: hot_add.clone(),
        value: answer.clone(),
    })?;
    let rec = ZramRecord {
        device,
        disksize,
        algorithm: z.algorithm.clone(),
        priority: z.priority,
        boot_id: boot_id(s.paths),
    };
    // Recorded first: whatever fails next, reset removes the device.
    s.state.zram = Some(rec.clone());
    s.save()?;

    let block = block(s.paths, device);
    let (available, _) = algorithms(&read_attr(&block.join("comp_algorithm"))?);
    if !available.contains(&z.algorithm) {
        remove(s, &rec)?;
        s.changes.pop();
        return Err(SystemError::ZramAlgorithm {
            algorithm: z.algorithm.clone(),
            available,
        });
    }
    write_attr(&block.join("comp_algorithm"), &z.algorithm)?;
    write_attr(&block.join("disksize"), &disksize.to_string())?;
    let dev = s.paths.dev(&format!("zram{device}"));
    run("mkswap", &[dev.as_os_str()])?;
    let priority = z.priority.to_string();
    run(
        "swapon",
        &[
            std::ffi::OsStr::new("--priority"),
            priority.as_ref(),
            dev.as_os_str(),
        ],
    )?;
    s.changes.push(Change::ZramCreated {
        device,
        disksize,
        algorithm: z.algorithm.clone(),
        priority: z.priority,
    });
    Ok(())
}

/// Turns off, resets and hot-removes Turtle's device (recorded in this boot), then
/// drops the record.
fn remove(s: &mut Session, rec: &ZramRecord) -> Result<(), SystemError> {
    let dev = s.paths.dev(&format!("zram{}", rec.device));
    if find(&read_swaps(s.paths)?, &dev).is_some() {
        run("swapoff", &[dev.as_os_str()])?;
    }
    let block = block(s.paths, rec.device);
    if block.exists() {
        write_attr(&block.join("reset"), "1")?;
        write_attr(
            &control(s.paths).join("hot_remove"),
            &rec.device.to_string(),
        )?;
    }
    s.state.zram = None;
    s.save()?;
    s.changes.push(Change::ZramRemoved { device: rec.device });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_list() {
        let (all, cur) = algorithms("[lzo-rle] lzo lz4 \n");
        assert_eq!(all, ["lzo-rle", "lzo", "lz4"]);
        assert_eq!(cur.as_deref(), Some("lzo-rle"));
        let (all, cur) = algorithms("lzo [lz4] zstd");
        assert_eq!(all, ["lzo", "lz4", "zstd"]);
        assert_eq!(cur.as_deref(), Some("lz4"));
    }
}
