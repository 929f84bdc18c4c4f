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
    /// The release's version and notes, when its maker gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseInfo>,
    pub images: Vec<Image>,
    /// Images carried for builds on the box rather than run by a service
    /// (the Debian base the stack builds FROM), by reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<String>,
    /// The files of the `docker save` archive, in bundle order.
    pub parts: Vec<Part>,
    /// Symbolic links of the archive (newer engines link legacy layer paths
    /// to their blobs); they carry no data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Set for a delta bundle: the layers it leaves out, which the box must
    /// already have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delta {
    /// What it was made against, as its maker named it (a release ID, a
    /// bundle's file name): for messages only.
    pub since: String,
    /// The archive's layer files left out.
    pub omitted: Vec<Omitted>,
    /// Every layer the box must have, in image order, bottom first.
    pub requires: Vec<Required>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Omitted {
    /// Its path in the `docker save` archive.
    pub path: String,
    /// `sha256:<hex>`: the layer's diff ID, the SHA-256 of the file.
    pub diff_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Required {
    /// `sha256:<hex>`: the layer.
    pub diff_id: String,
    /// `sha256:<hex>`: the layer on top of those below it in the images
    /// that need it, as the engine's layer store keys it.
    pub chain_id: String,
    /// The images that need it (a tag, else the ID).
    pub images: Vec<String>,
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
    /// `sha256:<hex>` diff IDs of its layers, bottom first (from its config).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff_ids: Vec<String>,
}

impl Image {
    /// A tag, else the ID: how messages name it.
    pub fn name(&self) -> &str {
        self.repo_tags.first().unwrap_or(&self.id)
    }
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
            if !i.diff_ids.is_empty() && i.diff_ids.len() != i.layers.len() {
                return Err(format!(
                    "image {}: {} diff IDs for {} layers",
                    i.id,
                    i.diff_ids.len(),
                    i.layers.len()
                ));
            }
            if let Some(d) = i.diff_ids.iter().find(|d| !is_digest(d)) {
                return Err(format!(
                    "image {}: diff ID {d:?} is not a sha256 digest",
                    i.id
                ));
            }
        }
        let omitted: HashMap<&str, &str> = match &self.delta {
            Some(d) => self.check_delta(d, &seen)?,
            None => HashMap::new(),
        };
        for i in &self.images {
            if let Some(l) = i
                .layers
                .iter()
                .find(|l| !seen.contains(l.as_str()) && !omitted.contains_key(l.as_str()))
            {
                return Err(format!(
                    "image {}: its layer {l} is neither a part, a link nor a layer the delta leaves out",
                    i.id
                ));
            }
        }
        Ok(())
    }

    /// A delta's consistency: the left-out files are neither parts nor
    /// links, every image using one (directly or through a link) has its
    /// diff IDs, names the same layer, and lists the layer's chain in
    /// `requires`. Answers the left-out paths with their diff IDs.
    fn check_delta<'a>(
        &'a self,
        d: &'a Delta,
        seen: &HashSet<&str>,
    ) -> Result<HashMap<&'a str, &'a str>, String> {
        let mut omitted = HashMap::new();
        for o in &d.omitted {
            check_path(&o.path)?;
            if seen.contains(o.path.as_str()) {
                return Err(format!(
                    "left-out layer {} is also a part or a link",
                    o.path
                ));
            }
            if !is_digest(&o.diff_id) {
                return Err(format!(
                    "left-out layer {}: diff ID {:?} is not a sha256 digest",
                    o.path, o.diff_id
                ));
            }
            if omitted
                .insert(o.path.as_str(), o.diff_id.as_str())
                .is_some()
            {
                return Err(format!("left-out layer {} is listed twice", o.path));
            }
        }
        let mut required = HashSet::new();
        for r in &d.requires {
            if !is_digest(&r.diff_id) || !is_digest(&r.chain_id) {
                return Err(format!(
                    "required layer {:?} (chain {:?}) is not a sha256 digest",
                    r.diff_id, r.chain_id
                ));
            }
            if !required.insert(r.chain_id.as_str()) {
                return Err(format!(
                    "required layer chain {} is listed twice",
                    r.chain_id
                ));
            }
        }
        for i in &self.images {
            let chains = chain_ids(&i.diff_ids);
            for (n, layer) in i.layers.iter().enumerate() {
                let Some(diff_id) = omitted.get(self.resolve(layer).as_str()) else {
                    continue;
                };
                if i.diff_ids.is_empty() {
                    return Err(format!(
                        "image {}: uses the left-out layer {layer} and has no diff IDs",
                        i.id
                    ));
                }
                if i.diff_ids[n] != *diff_id {
                    return Err(format!(
                        "image {}: its layer {} is {}, and the left-out file {layer} is {diff_id}",
                        i.id,
                        n + 1,
                        i.diff_ids[n]
                    ));
                }
                if !required.contains(chains[n].as_str()) {
                    return Err(format!(
                        "image {}: its layer {} ({diff_id}) is left out and not listed as required",
                        i.id,
                        n + 1
                    ));
                }
            }
        }
        Ok(omitted)
    }

    /// The archive path a layer entry's bytes are at: a link's target
    /// (relative to the link's directory), else the path itself.
    pub fn resolve(&self, path: &str) -> String {
        match self.links.iter().find(|l| l.path == path) {
            Some(l) => resolve_link(&l.path, &l.target).unwrap_or_else(|| path.to_string()),
            None => path.to_string(),
        }
    }

    pub fn is_delta(&self) -> bool {
        self.delta.is_some()
    }

    /// The bytes of all parts.
    pub fn data_len(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

/// `sha256:` and 64 lowercase hex digits.
fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The chain ID of each layer of an image (diff IDs bottom first): the
/// first is its diff ID, each next one the SHA-256 of the one below, a
/// space and its diff ID, as the OCI image spec defines it. The engine
/// keys its layer store by them: a layer is on the box exactly when its
/// chain is.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(below) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{below} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// `target` seen from the directory of the link at `path`, with `..`
/// resolved; `None` when it leaves the archive.
pub fn resolve_link(path: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
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
    fn chain_ids_follow_the_oci_definition() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chains[0], a);
        use sha2::{Digest, Sha256};
        let want = hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()));
        assert_eq!(chains[1], format!("sha256:{want}"));
    }

    #[test]
    fn links_resolve_from_their_directory() {
        assert_eq!(
            resolve_link("abc/layer.tar", "../def/layer.tar").as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(
            resolve_link("blobs/sha256/x", "y").as_deref(),
            Some("blobs/sha256/y")
        );
        assert_eq!(resolve_link("a", "../../b"), None);
    }

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
