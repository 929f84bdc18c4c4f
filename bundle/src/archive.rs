//! The `docker save` archive, taken apart into parts and put back together.
//!
//! Taking apart ([`scan`]): every regular file of the archive becomes a part
//! (its bytes are a range of the spooled archive, hashed here), every
//! symbolic link a [`Link`]; directories are implied by the paths. The
//! archive's index files (`manifest.json`, `repositories`, and an OCI
//! layout's `index.json`, `oci-layout`) are moved after everything else.
//!
//! Putting back ([`write_archive`]): a tar of the links, then the parts in
//! bundle order, with each directory before the first entry in it. The
//! engine reads nothing of an archive before its index, which comes last,
//! after every layer passed its second hash.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::manifest::{Image, Link, Part};

/// Top-level files that index the archive: sent last.
const INDEX_FILES: &[&str] = &["manifest.json", "repositories", "index.json", "oci-layout"];

/// A `docker save` archive taken apart.
#[derive(Debug)]
pub struct Scanned {
    /// Each part, with the offset of its bytes in the archive.
    pub parts: Vec<(Part, u64)>,
    pub links: Vec<Link>,
    pub images: Vec<Image>,
    pub architecture: String,
}

/// One entry of the archive's `manifest.json`.
#[derive(Deserialize)]
struct SavedImage {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// The part of an image config this reads.
#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Takes apart the `docker save` archive in `file`.
pub fn scan<F: Read + Seek>(file: &mut F) -> Result<Scanned, String> {
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut parts = Vec::new();
    let mut links = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut *file);
        let entries = archive
            .entries()
            .map_err(|e| format!("not a tar archive: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("reading the archive: {e}"))?;
            let raw = entry.path().map_err(|e| format!("an entry's path: {e}"))?;
            let path = raw
                .to_str()
                .ok_or_else(|| format!("path {} is not UTF-8", raw.display()))?
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            match entry.header().entry_type() {
                tar::EntryType::Directory => {}
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let offset = entry.raw_file_position();
                    let size = entry.size();
                    let mut hasher = Sha256::new();
                    std::io::copy(&mut entry, &mut hasher)
                        .map_err(|e| format!("reading {path}: {e}"))?;
                    parts.push((
                        Part {
                            path,
                            size,
                            sha256: hex::encode(hasher.finalize()),
                        },
                        offset,
                    ));
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(|e| format!("{path}: {e}"))?
                        .and_then(|t| t.to_str().map(String::from))
                        .ok_or_else(|| format!("{path}: a link without a UTF-8 target"))?;
                    links.push(Link { path, target });
                }
                other => {
                    return Err(format!(
                        "{path} is a {other:?} entry: a docker save archive holds files, directories and symbolic links only"
                    ));
                }
            }
        }
    }
    // Index files last, in the order the engine wrote them.
    let (mut index, mut rest): (Vec<_>, Vec<_>) = parts
        .into_iter()
        .partition(|(p, _)| INDEX_FILES.contains(&p.path.as_str()));
    rest.append(&mut index);
    let parts = rest;

    let read_part = |file: &mut F, path: &str| -> Result<Vec<u8>, String> {
        let (p, offset) = parts
            .iter()
            .find(|(p, _)| p.path == path)
            .ok_or_else(|| format!("the archive has no {path}"))?;
        let mut bytes = vec![0u8; usize::try_from(p.size).map_err(|e| e.to_string())?];
        file.seek(SeekFrom::Start(*offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| format!("reading {path}: {e}"))?;
        Ok(bytes)
    };
    let saved: Vec<SavedImage> = serde_json::from_slice(&read_part(file, "manifest.json")?)
        .map_err(|e| format!("the archive's manifest.json: {e}"))?;
    let mut images = Vec::new();
    let mut architectures = Vec::new();
    for s in saved {
        let config = read_part(file, &s.config)?;
        let arch: ImageConfig = serde_json::from_slice(&config)
            .map_err(|e| format!("the image config {}: {e}", s.config))?;
        let diff_ids = arch.rootfs.map(|r| r.diff_ids).unwrap_or_default();
        if diff_ids.len() != s.layers.len() {
            return Err(format!(
                "the image config {} names {} layers, and manifest.json {}",
                s.config,
                diff_ids.len(),
                s.layers.len()
            ));
        }
        if !architectures.contains(&arch.architecture) {
            architectures.push(arch.architecture);
        }
        images.push(Image {
            id: format!("sha256:{}", hex::encode(Sha256::digest(&config))),
            repo_tags: s.repo_tags.unwrap_or_default(),
            config: s.config,
            layers: s.layers,
            diff_ids,
        });
    }
    let architecture = match architectures.as_slice() {
        [one] if !one.is_empty() => one.clone(),
        [] => return Err("the archive holds no image".into()),
        [_] => return Err("an image config names no architecture".into()),
        more => {
            return Err(format!(
                "the images are built for several architectures ({}): a bundle is for one kind of box",
                more.join(", ")
            ));
        }
    };
    Ok(Scanned {
        parts,
        links,
        images,
        architecture,
    })
}

/// Writes the archive of `links` and `parts` (in that order), the data of
/// each part read from `open`.
pub fn write_archive<W: Write, R: Read>(
    out: W,
    parts: &[Part],
    links: &[Link],
    mut open: impl FnMut(&Part) -> std::io::Result<R>,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    let mut dirs = HashSet::new();
    for l in links {
        add_dirs(&mut b, &mut dirs, &l.path)?;
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, &l.path, &l.target)?;
    }
    for p in parts {
        add_dirs(&mut b, &mut dirs, &p.path)?;
        let mut h = header(tar::EntryType::Regular, 0o644, p.size);
        b.append_data(&mut h, &p.path, open(p)?)?;
    }
    b.into_inner()?.flush()
}

/// The directories above `path` not written yet.
fn add_dirs<W: Write>(
    b: &mut tar::Builder<W>,
    done: &mut HashSet<String>,
    path: &str,
) -> std::io::Result<()> {
    let mut at = 0;
    while let Some(i) = path[at..].find('/') {
        let dir = &path[..at + i];
        if done.insert(dir.to_string()) {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
        }
        at += i + 1;
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}
