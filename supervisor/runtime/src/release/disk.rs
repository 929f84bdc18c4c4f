//! The disk check before an update downloads: what the update will write
//! against the free space of the engine's data directory, less a reserve.
//!
//! # Design
//!
//! - **What an update needs** ([`Need`]) is the layers of its images the
//!   engine does not have yet, each at its size. The engine stores a layer
//!   once per *chain* (the layer on top of the exact layers below it), so
//!   [`need_for_images`] compares chain IDs (`ChainID(L0..Ln) =
//!   sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`, as the image spec
//!   defines them) of every image the engine has ([`Engine::list_images`])
//!   with those of the images wanted: a base shared with a running image
//!   costs nothing, the same diff on another base costs its size again.
//!   [`need_for_layers`] is the flat form (layers by diff ID alone, as a
//!   list of parts gives them): it can miss a layer the engine must store
//!   again on another base, which the reserve covers.
//! - **What cannot be known before downloading** (a pull from a registry, a
//!   build) is listed in [`Need::unknown`], never guessed: the check
//!   counts only what it knows, and its refusal says what it did not count.
//! - **Temporary space** is the caller's to add ([`Need::add`]): the
//!   engine unpacks a whole `docker load` archive into its data directory
//!   (`tmp/`) before it registers any layer, so loading a bundle needs the
//!   archive's size on top of its new layers.
//! - **The reserve** ([`reserve`]): the config's `releases.reserve`, else
//!   the device profile's `update_reserve`, else 512 MiB: room for what
//!   keeps writing after the update (logs, volumes, the state database).
//! - **Free space** is `statvfs` of the engine's data directory
//!   (`DockerRootDir`), the blocks available to unprivileged users (as
//!   `df` shows them: root's reserved blocks are not counted on). The
//!   check ([`check`], [`check_path`] for any path) refuses when free <
//!   need + reserve, with a message naming the numbers, the path and what
//!   to do. An engine whose images live elsewhere (the containerd image
//!   store) is measured at its data directory all the same.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use turtle_engine::{Engine, EngineError};
use turtle_units::ByteSize;

use crate::config::ReleasesSection;
use crate::device::Device;

/// The reserve when neither the config nor the device profile sets one.
pub const DEFAULT_RESERVE: u64 = 512 << 20;

/// What an update will write to the engine's disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Need {
    /// Bytes known to be written.
    pub bytes: u64,
    /// Images whose size cannot be known before downloading (a pull from a
    /// registry, a build): not counted in `bytes`.
    pub unknown: Vec<String>,
    /// What the bytes are, for the message (`image web: 2 of 5 layers`).
    pub detail: Vec<(String, u64)>,
}

impl Need {
    /// Counts `bytes` more, described as `what` (nothing when 0).
    pub fn add(&mut self, what: impl Into<String>, bytes: u64) {
        if bytes > 0 {
            self.bytes = self.bytes.saturating_add(bytes);
            self.detail.push((what.into(), bytes));
        }
    }

    /// Notes an image whose size is not known before it is downloaded.
    pub fn add_unknown(&mut self, image: impl Into<String>) {
        self.unknown.push(image.into());
    }

    /// Adds everything `other` counts.
    pub fn merge(&mut self, other: Need) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.detail.extend(other.detail);
        self.unknown.extend(other.unknown);
    }
}

/// `1.5 GiB (image web: 2 of 5 layers 1.2 GiB, ...)`: the largest parts
/// first, at most five named ([`Need::unknown`] is not part of it).
impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", ByteSize(self.bytes))?;
        if !self.detail.is_empty() {
            let mut parts: Vec<&(String, u64)> = self.detail.iter().collect();
            parts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let named: Vec<String> = parts
                .iter()
                .take(5)
                .map(|(what, b)| format!("{what} {}", ByteSize(*b)))
                .collect();
            write!(f, " ({}", named.join(", "))?;
            if parts.len() > 5 {
                write!(f, ", and {} more", parts.len() - 5)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// An image an update wants: its name for the message and its layers
/// (diff IDs `sha256:...` with their size in bytes), bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedImage {
    pub name: String,
    pub layers: Vec<(String, u64)>,
}

/// The chain IDs of a stack of layers given by diff ID, bottom first: the
/// names under which the engine stores each layer.
pub fn chain_ids<'a>(diff_ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.to_string(),
            Some(below) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{below} {diff}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// What writing `wanted` costs: each layer whose chain the engine has (in
/// any image), or that an earlier wanted image already brings, is free.
pub async fn need_for_images<E: Engine>(
    engine: &E,
    wanted: &[WantedImage],
) -> Result<Need, EngineError> {
    let mut have: BTreeSet<String> = BTreeSet::new();
    for image in engine.list_images().await? {
        have.extend(chain_ids(image.layers.iter().map(String::as_str)));
    }
    let mut need = Need::default();
    for image in wanted {
        let chains = chain_ids(image.layers.iter().map(|(d, _)| d.as_str()));
        let (mut count, mut bytes) = (0usize, 0u64);
        for (chain, (_, size)) in chains.into_iter().zip(&image.layers) {
            if have.insert(chain) {
                count += 1;
                bytes = bytes.saturating_add(*size);
            }
        }
        if count > 0 {
            need.add(
                format!(
                    "image {}: {count} of {} layers",
                    image.name,
                    image.layers.len()
                ),
                bytes,
            );
        }
    }
    Ok(need)
}

/// What writing these layers (diff ID, size) costs: a layer the engine
/// has in any image, by diff ID, is free; one listed twice counts once.
pub async fn need_for_layers<E: Engine>(
    engine: &E,
    wanted: &[(String, u64)],
) -> Result<Need, EngineError> {
    let mut have: BTreeSet<String> = BTreeSet::new();
    for image in engine.list_images().await? {
        have.extend(image.layers);
    }
    let mut need = Need::default();
    for (diff, size) in wanted {
        if have.insert(diff.clone()) {
            need.add(format!("layer {}", short(diff)), *size);
        }
    }
    Ok(need)
}

/// `sha256:0123456789ab`: enough of an ID to tell it in a message.
fn short(id: &str) -> &str {
    let end = id.find(':').map_or(0, |i| i + 1) + 12;
    id.get(..end).unwrap_or(id)
}

/// The space kept free after an update, and who set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub bytes: u64,
    pub from: ReserveFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveFrom {
    /// The config file's `releases.reserve`.
    Config,
    /// The device profile's `update_reserve` (the profile's name).
    Profile(String),
    Default,
}

impl fmt::Display for ReserveFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config => f.write_str("releases.reserve in the config file"),
            Self::Profile(name) => write!(f, "update_reserve of the device profile {name}"),
            Self::Default => f.write_str("the default"),
        }
    }
}

/// The reserve in force: the config's `releases.reserve`, else the device
/// profile's `update_reserve`, else [`DEFAULT_RESERVE`].
pub fn reserve(config: &ReleasesSection, device: Option<&Device>) -> Reserve {
    if let Some(b) = config.reserve {
        return Reserve {
            bytes: b.0,
            from: ReserveFrom::Config,
        };
    }
    if let Some(p) = device.map(Device::profile)
        && let Some(b) = p.update_reserve
    {
        return Reserve {
            bytes: b.0,
            from: ReserveFrom::Profile(p.name.clone()),
        };
    }
    Reserve {
        bytes: DEFAULT_RESERVE,
        from: ReserveFrom::Default,
    }
}

/// What the check measured: after the update, `free - need` is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    pub path: PathBuf,
    pub free: u64,
    pub need: u64,
    pub reserve: u64,
}

impl Space {
    /// Free after the update's download.
    pub fn left(&self) -> u64 {
        self.free.saturating_sub(self.need)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{0}")]
    NotEnough(Box<Shortfall>),
    #[error(
        "cannot measure the free space of {} (the engine's data directory): {source}; \
         turtle must run where that directory is (on the engine's host)",
        path.display()
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Why an update does not fit: every number of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub path: PathBuf,
    pub free: u64,
    pub need: Need,
    pub reserve: Reserve,
}

impl Shortfall {
    /// How many bytes are missing.
    pub fn short(&self) -> u64 {
        self.need
            .bytes
            .saturating_add(self.reserve.bytes)
            .saturating_sub(self.free)
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not enough disk for this update: it writes {} and {} must stay free \
             (the reserve, from {}), but {} has {} free: {} short{}. \
             Free space (`docker system df` shows what takes it, `docker image prune` \
             removes untagged images no container uses), lower the reserve (`releases.reserve` \
             in the config file), or give the services the label \
             `io.turtle.update-strategy: delete-then-download` so their old images go \
             before the new ones come",
            self.need,
            ByteSize(self.reserve.bytes),
            self.reserve.from,
            self.path.display(),
            ByteSize(self.free),
            ByteSize(self.short()),
            if self.need.unknown.is_empty() {
                String::new()
            } else {
                format!(
                    ", and more for {}, whose size is known only once downloaded",
                    self.need.unknown.join(", ")
                )
            },
        )
    }
}

/// Bytes available to unprivileged users on the file system of `path`.
pub fn free_space(path: &Path) -> std::io::Result<u64> {
    let vfs = rustix::fs::statvfs(path)?;
    Ok(vfs.f_bavail.saturating_mul(vfs.f_frsize))
}

/// Refuses when `path`'s file system has less than `need + reserve` free.
pub fn check_path(path: &Path, need: &Need, reserve: &Reserve) -> Result<Space, DiskError> {
    let free = free_space(path).map_err(|source| DiskError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    judge(path, free, need, reserve)
}

fn judge(path: &Path, free: u64, need: &Need, reserve: &Reserve) -> Result<Space, DiskError> {
    if free < need.bytes.saturating_add(reserve.bytes) {
        return Err(DiskError::NotEnough(Box::new(Shortfall {
            path: path.to_path_buf(),
            free,
            need: need.clone(),
            reserve: reserve.clone(),
        })));
    }
    Ok(Space {
        path: path.to_path_buf(),
        free,
        need: need.bytes,
        reserve: reserve.bytes,
    })
}

/// [`check_path`] on the engine's data directory.
pub async fn check<E: Engine>(
    engine: &E,
    need: &Need,
    reserve: &Reserve,
) -> Result<Space, DiskError> {
    let root = engine.data_root().await?;
    let (need, reserve) = (need.clone(), reserve.clone());
    tokio::task::spawn_blocking(move || check_path(&root, &need, &reserve))
        .await
        .expect("the disk check does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use turtle_engine::fake::FakeEngine;

    fn layer(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    fn wanted(name: &str, layers: &[(u8, u64)]) -> WantedImage {
        WantedImage {
            name: name.into(),
            layers: layers.iter().map(|(n, s)| (layer(*n), *s)).collect(),
        }
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        // The first chain ID is the first diff ID; the next hashes the
        // chain below, a space and the diff ID.
        let (a, b) = (layer(1), layer(2));
        let chains = chain_ids([a.as_str(), b.as_str()]);
        assert_eq!(chains[0], a);
        let expect = hex::encode(Sha256::digest(format!("{a} {b}")));
        assert_eq!(chains[1], format!("sha256:{expect}"));
        // The same diff on another base is another chain.
        assert_ne!(chain_ids([b.as_str()])[0], chains[1]);
    }

    #[tokio::test]
    async fn layers_the_engine_has_cost_nothing() {
        let e = FakeEngine::new();
        e.add_image("base:1");
        e.set_image_layers("base:1", &[&layer(1), &layer(2)]);
        // A new image on the same base: only its own layer counts.
        let need = need_for_images(&e, &[wanted("web", &[(1, 100), (2, 200), (3, 300)])])
            .await
            .unwrap();
        assert_eq!(need.bytes, 300);
        assert_eq!(need.detail, vec![("image web: 1 of 3 layers".into(), 300)]);
        // The same diff on another base is stored again.
        let need = need_for_images(&e, &[wanted("odd", &[(9, 10), (2, 200)])])
            .await
            .unwrap();
        assert_eq!(need.bytes, 210);
        // Two wanted images sharing a new base count it once.
        let need = need_for_images(
            &e,
            &[
                wanted("a", &[(5, 1000), (6, 1)]),
                wanted("b", &[(5, 1000), (7, 2)]),
            ],
        )
        .await
        .unwrap();
        assert_eq!(need.bytes, 1003);
        // Everything present: nothing needed.
        let need = need_for_images(&e, &[wanted("base", &[(1, 100), (2, 200)])])
            .await
            .unwrap();
        assert_eq!(need, Need::default());
    }

    #[tokio::test]
    async fn flat_layers_count_by_diff_id_once() {
        let e = FakeEngine::new();
        e.add_image("base:1");
        e.set_image_layers("base:1", &[&layer(1)]);
        let need = need_for_layers(&e, &[(layer(1), 100), (layer(2), 200), (layer(2), 200)])
            .await
            .unwrap();
        assert_eq!(need.bytes, 200);
        assert_eq!(need.detail.len(), 1);
        assert!(need.detail[0].0.starts_with("layer sha256:020202020202"));
    }

    #[test]
    fn the_reserve_comes_from_the_config_then_the_profile_then_the_default() {
        let mut section = ReleasesSection::default();
        let r = reserve(&section, None);
        assert_eq!((r.bytes, r.from), (DEFAULT_RESERVE, ReserveFrom::Default));
        let mut config = crate::config::Config::default();
        config.device.profile = Some("raspberrypi3".into());
        let state = tempfile::tempdir().unwrap();
        let device = Device::open(state.path(), &config).unwrap();
        let r = reserve(&section, Some(&device));
        assert_eq!(
            (r.bytes, r.from),
            (256 << 20, ReserveFrom::Profile("raspberrypi3".into()))
        );
        section.reserve = Some(ByteSize(3 << 30));
        let r = reserve(&section, Some(&device));
        assert_eq!((r.bytes, r.from), (3 << 30, ReserveFrom::Config));
    }

    #[test]
    fn every_shipped_profile_sets_a_reserve() {
        for p in turtle_device::builtin_profiles().unwrap() {
            let r = p
                .update_reserve
                .unwrap_or_else(|| panic!("{} has none", p.name));
            assert!(r.0 >= 128 << 20 && r.0 <= 4 << 30, "{}: {r}", p.name);
        }
    }

    #[test]
    fn a_refusal_names_the_numbers_the_path_and_the_ways_out() {
        let mut need = Need::default();
        need.add("image web: 2 of 3 layers", 300 << 20);
        need.add("the archive, unpacked during the load", 100 << 20);
        need.add_unknown("app (built)");
        let reserve = Reserve {
            bytes: 256 << 20,
            from: ReserveFrom::Profile("raspberrypi3".into()),
        };
        let err = judge(Path::new("/var/lib/docker"), 500 << 20, &need, &reserve).unwrap_err();
        let DiskError::NotEnough(s) = &err else {
            panic!("{err}")
        };
        assert_eq!(s.short(), 156 << 20);
        let msg = err.to_string();
        eprintln!("{msg}");
        for part in [
            "writes 400 MiB (image web: 2 of 3 layers 300 MiB, the archive, unpacked during the load 100 MiB)",
            "256 MiB must stay free",
            "update_reserve of the device profile raspberrypi3",
            "/var/lib/docker has 500 MiB free: 156 MiB short",
            "156 MiB short, and more for app (built), whose size is known only once downloaded.",
            "docker image prune",
            "releases.reserve",
            "delete-then-download",
        ] {
            assert!(msg.contains(part), "{part:?} not in: {msg}");
        }
        // Exactly enough passes, and says what is left.
        let space = judge(Path::new("/x"), 656 << 20, &need, &reserve).unwrap();
        assert_eq!(space.left(), 256 << 20);
    }

    #[test]
    fn free_space_is_measured_on_the_path_given() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_space(dir.path()).unwrap();
        assert!(free > 0);
        let none = Need::default();
        let huge = Reserve {
            bytes: u64::MAX,
            from: ReserveFrom::Config,
        };
        assert!(matches!(
            check_path(dir.path(), &none, &huge),
            Err(DiskError::NotEnough(_))
        ));
        let err = check_path(&dir.path().join("missing"), &none, &huge).unwrap_err();
        assert!(matches!(err, DiskError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
