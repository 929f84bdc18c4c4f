//! `/proc/swaps`: what the kernel swaps to right now.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

use super::SystemError;

/// One line of `/proc/swaps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapEntry {
    /// The file or device, as the kernel names it (an absolute path on the box).
    pub path: PathBuf,
    /// `file` or `partition`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub priority: i32,
    /// Turtle created it (its state file records it).
    pub ours: bool,
}

/// Parses `/proc/swaps` (sizes in KiB; names with `\040`-style octal escapes).
pub fn parse_swaps(text: &str) -> Vec<SwapEntry> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let path = unescape(f.next()?);
            let kind = f.next()?.to_string();
            let size: u64 = f.next()?.parse().ok()?;
            let used: u64 = f.next()?.parse().ok()?;
            let priority: i32 = f.next()?.parse().ok()?;
            Some(SwapEntry {
                path: PathBuf::from(path),
                kind,
                size_bytes: size * 1024,
                used_bytes: used * 1024,
                priority,
                ours: false,
            })
        })
        .collect()
}

/// `\040` -> space, and so on for every 3-digit octal escape.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads and parses `<root>/proc/swaps`.
pub fn read_swaps(paths: &Paths) -> Result<Vec<SwapEntry>, SystemError> {
    let path = paths.proc("swaps");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse_swaps(&text)),
        Err(source) => Err(SystemError::Io {
            action: "read",
            path,
            source,
        }),
    }
}

/// Whether `entry` is `path` (compared after resolving symbolic links, as the kernel
/// shows resolved paths).
pub(crate) fn is(entry: &SwapEntry, path: &Path) -> bool {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    entry.path == resolved || entry.path == path
}

/// The entry of `path` in `swaps`, if it is active.
pub(crate) fn find<'a>(swaps: &'a [SwapEntry], path: &Path) -> Option<&'a SwapEntry> {
    swaps.iter().find(|e| is(e, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_swaps() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /var/lib/turtle/swapfile                file\t\t16380\t\t0\t\t-2\n\
                    /dev/zram1                              partition\t16380\t\t12\t\t100\n\
                    /mnt/my\\040swap                         file\t\t1024\t\t0\t\t5\n";
        let e = parse_swaps(text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].path, Path::new("/var/lib/turtle/swapfile"));
        assert_eq!(e[0].kind, "file");
        assert_eq!(e[0].size_bytes, 16380 * 1024);
        assert_eq!(e[0].priority, -2);
        assert_eq!(e[1].used_bytes, 12 * 1024);
        assert_eq!(e[1].priority, 100);
        assert_eq!(e[2].path, Path::new("/mnt/my swap"));
        assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
    }
}
