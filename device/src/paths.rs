//! Where the crate reads and writes: every system path (`/proc`, `/sys`, `/dev`, the
//! swap file) is joined to a root, `/` in production and a temporary directory with a
//! fake tree in tests.

use std::path::{Component, Path, PathBuf};

/// The root every system path is joined to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub root: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self::system()
    }
}

impl Paths {
    /// Paths under `root` (a fake tree in tests).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The real system: root `/`.
    pub fn system() -> Self {
        Self::new("/")
    }

    /// `path` (absolute, as on the box) under the root: `/proc/swaps` ->
    /// `<root>/proc/swaps`. `..` components are dropped, so nothing escapes the root.
    pub fn host(&self, path: impl AsRef<Path>) -> PathBuf {
        let mut out = self.root.clone();
        for c in path.as_ref().components() {
            if let Component::Normal(part) = c {
                out.push(part);
            }
        }
        out
    }

    /// `<root>/proc/<rel>`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.host(Path::new("/proc").join(rel))
    }

    /// `<root>/sys/<rel>`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.host(Path::new("/sys").join(rel))
    }

    /// `<root>/dev/<rel>`.
    pub fn dev(&self, rel: &str) -> PathBuf {
        self.host(Path::new("/dev").join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_under_root() {
        let p = Paths::new("/tmp/x");
        assert_eq!(p.host("/proc/swaps"), Path::new("/tmp/x/proc/swaps"));
        assert_eq!(
            p.host("/var/../etc/passwd"),
            Path::new("/tmp/x/var/etc/passwd")
        );
        assert_eq!(
            p.sys("class/thermal"),
            Path::new("/tmp/x/sys/class/thermal")
        );
        assert_eq!(Paths::system().dev("zram1"), Path::new("/dev/zram1"));
    }
}
