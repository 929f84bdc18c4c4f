//! The manifest: what a bundle carries, and the size and SHA-256 of every
//! part, in the order the parts follow it.
//!
//! Serialized with serde_json from these structs (fields in declaration
//! order, the project's maps in the model's order), so the same input makes
//! the same bytes. The reader never serializes it again: the signature
//! covers the bytes as written, and parsing happens only after the seal
//! matched.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use turtle_compose::Project;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The format version; must equal the header's (so the signed bytes fix it).
    pub format: u16,
    /// The images' architecture, in the engine's names (`amd64`, `arm64`).
    pub architecture: String,
    /// The compose project as Turtle normalized it when the bundle was
    /// made, without `build:` sections (their images travel in the bundle).
    pub project: Project,
    pub images: Vec<Image>,
    /// The files of the `docker save` archive, in bundle order.
    pub parts: Vec<Part>,
    /// Symbolic links of the archive (newer engines link legacy layer paths
    /// to their blobs); they carry no data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// `sha256:<hex>`: the SHA-256 of its config part, as the engine names it.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// The part holding its config.
    pub config: String,
    /// The parts (or links) holding its layers, bottom first.
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Its path in the `docker save` archive.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub path: String,
    pub target: String,
}

impl Manifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest serializes")
    }

    /// Parses and checks the manifest's own consistency ([`Self::check`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let m: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        m.check()?;
        Ok(m)
    }

    /// Every path safe and unique, every size adding up, every hash
    /// well-formed, every image naming parts the bundle has, and each image
    /// ID the hash of its config.
    pub fn check(&self) -> Result<(), String> {
        if self.architecture.is_empty() {
            return Err("no architecture".into());
        }
        let mut seen = HashSet::new();
        let mut total: u64 = 0;
        let mut hashes = HashMap::new();
        for p in &self.parts {
            check_path(&p.path)?;
            if !seen.insert(p.path.as_str()) {
                return Err(format!("part {} is listed twice", p.path));
            }
            if p.sha256.len() != 64
                || !p
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(format!(
                    "part {}: sha256 {:?} is not 64 lowercase hex digits",
                    p.path, p.sha256
                ));
            }
            total = total
                .checked_add(p.size)
                .ok_or_else(|| format!("part {}: the sizes overflow", p.path))?;
            hashes.insert(p.path.as_str(), p.sha256.as_str());
        }
        for l in &self.links {
            check_path(&l.path)?;
            if !seen.insert(l.path.as_str()) {
                return Err(format!("link {} is also a part or another link", l.path));
            }
            if l.target.is_empty() || l.target.starts_with('/') || l.target.contains('\0') {
                return Err(format!(
                    "link {}: target {:?} is not a relative path",
                    l.path, l.target
                ));
            }
        }
        for i in &self.images {
            let config = hashes
                .get(i.config.as_str())
                .ok_or_else(|| format!("image {}: its config {} is not a part", i.id, i.config))?;
            if i.id != format!("sha256:{config}") {
                return Err(format!(
                    "image {}: its config {} hashes to sha256:{config}",
                    i.id, i.config
                ));
            }
            if let Some(l) = i.layers.iter().find(|l| !seen.contains(l.as_str())) {
                return Err(format!(
                    "image {}: its layer {l} is neither a part nor a link",
                    i.id
                ));
            }
        }
        Ok(())
    }

    /// The bytes of all parts.
    pub fn data_len(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

/// A relative path of plain components, as the archive's tar names it.
fn check_path(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= 4096
        && !path.contains('\0')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "path {path:?} is not a relative path of plain components"
        ))
    }
}

/// This machine's architecture in the engine's names.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_archive_are_refused() {
        for p in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a/"] {
            assert!(check_path(p).is_err(), "{p:?}");
        }
        for p in ["manifest.json", "abc/layer.tar", "blobs/sha256/00"] {
            check_path(p).unwrap();
        }
    }
}
