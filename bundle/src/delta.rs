//! Delta bundles: only the layers the target does not already have.
//!
//! What the target has is a [`BaseSet`]: layer chains (a layer on top of
//! the ones below it, [`chain_ids`]), taken from an earlier bundle's
//! manifest ([`BaseSet::from_manifest`]: a box that applied it has every
//! layer of its images) or from images in an engine
//! ([`BaseSet::from_images`]: a release of this box). [`plan`] leaves out
//! every layer file of the `docker save` archive whose every use, in every
//! image of the bundle, is a chain of the base set, and lists in the
//! manifest ([`Delta`]) what it left out and which layers the box must
//! have, by diff ID and chain ID, with the images that need them.
//!
//! # Applying a delta
//!
//! The engine's `docker load` (moby's `image/tarexport/load.go`, the
//! classic image store) looks each layer's chain up in its layer store
//! before it opens the layer's file, and reads the file only when the chain
//! is missing; so an archive without the files of layers the engine has
//! loads as a complete one would (tested against the engine in
//! `tests/docker_delta.rs`). What it does not do is say which layer is
//! missing, or refuse before it starts: a missing file fails the load
//! part-way, after earlier images of the archive were loaded. Hence
//! [`missing_layers`]: before anything is loaded, every required chain is
//! looked up in the engine's images ([`Engine::list_images`]); one missing
//! refuses the bundle, naming the layer and the images that need it.
//!
//! Rejected: rebuilding a complete archive on the box by saving the base
//! images the box has and taking the missing files from that save. It
//! costs a `docker save` of every base image (the Debian base alone is
//! 100 MB and more) and as much free disk, for bytes the engine then
//! skips because it has the layers.

use std::collections::{HashMap, HashSet};

use turtle_engine::Engine;

use crate::BundleError;
use crate::manifest::{Delta, Image, Link, Manifest, Omitted, Part, Required, chain_ids};

/// The layers a target already has, as layer chains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseSet {
    since: String,
    /// Chain ID -> the image it came from (for messages).
    chains: HashMap<String, String>,
}

impl BaseSet {
    /// An empty set; `since` names what it describes (a release ID, a
    /// bundle's file name), for the manifest and messages.
    pub fn new(since: impl Into<String>) -> Self {
        Self {
            since: since.into(),
            chains: HashMap::new(),
        }
    }

    pub fn since(&self) -> &str {
        &self.since
    }

    /// Adds every layer of an image (diff IDs bottom first): the image's
    /// layers are there, and so is each one's chain.
    pub fn add_image(&mut self, name: &str, diff_ids: &[String]) {
        for chain in chain_ids(diff_ids) {
            self.chains.entry(chain).or_insert_with(|| name.to_string());
        }
    }

    /// Whether the target has this layer chain.
    pub fn contains(&self, chain_id: &str) -> bool {
        self.chains.contains_key(chain_id)
    }

    /// Layer chains in the set.
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// What a box has after applying the bundle of `manifest`: every layer
    /// of its images (a delta's too: it was refused unless the box had the
    /// rest).
    pub fn from_manifest(
        manifest: &Manifest,
        since: impl Into<String>,
    ) -> Result<Self, BundleError> {
        let mut set = Self::new(since);
        for i in &manifest.images {
            if i.diff_ids.len() != i.layers.len() {
                return Err(BundleError::Create {
                    message: format!(
                        "{}: image {} has no diff IDs in its manifest (a bundle made by an older turtle): make the delta against a release ID, or a bundle made by this version",
                        set.since,
                        i.name()
                    ),
                });
            }
            set.add_image(i.name(), &i.diff_ids);
        }
        Ok(set)
    }

    /// The layers of these images (references or IDs) in `engine`: what a
    /// box that runs them has.
    pub async fn from_images<E: Engine>(
        engine: &E,
        images: &[String],
        since: impl Into<String>,
    ) -> Result<Self, BundleError> {
        let mut set = Self::new(since);
        for reference in images {
            let info = engine
                .inspect_image(reference)
                .await
                .map_err(|e| BundleError::Engine(e.to_string()))?
                .ok_or_else(|| BundleError::Create {
                    message: format!(
                        "{}: image {reference} is no longer in this engine, so its layers are unknown: make the delta against that release's bundle file instead",
                        set.since
                    ),
                })?;
            set.add_image(reference, &info.layers);
        }
        Ok(set)
    }
}

/// What [`plan`] decided: the parts kept, in order, and the delta.
#[derive(Debug)]
pub struct Plan {
    pub kept: Vec<Part>,
    pub delta: Delta,
    /// Bytes of the parts left out.
    pub left_out_bytes: u64,
}

/// Leaves out of `parts` every layer file whose every use (by any image,
/// directly or through a link) is a chain of `base`. A file is left out
/// only when its SHA-256 is the layer's diff ID, as it is in the engine's
/// `docker save` archives: the file is then exactly the layer the box has.
pub fn plan(parts: &[Part], links: &[Link], images: &[Image], base: &BaseSet) -> Plan {
    let resolve = |path: &str| -> String {
        links
            .iter()
            .find(|l| l.path == path)
            .and_then(|l| crate::manifest::resolve_link(&l.path, &l.target))
            .unwrap_or_else(|| path.to_string())
    };
    // Per file: whether some use needs its bytes, and the layer it holds.
    let mut needed: HashMap<String, bool> = HashMap::new();
    let mut layer_of: HashMap<String, String> = HashMap::new();
    for i in images {
        let chains = chain_ids(&i.diff_ids);
        for (n, layer) in i.layers.iter().enumerate() {
            let real = resolve(layer);
            let in_base = i.diff_ids.len() == i.layers.len() && base.contains(&chains[n]);
            *needed.entry(real.clone()).or_insert(false) |= !in_base;
            if let Some(d) = i.diff_ids.get(n) {
                layer_of.insert(real, d.clone());
            }
        }
    }
    let mut omitted = Vec::new();
    let mut kept = Vec::new();
    let mut left_out_bytes = 0;
    for p in parts {
        let leave_out = needed.get(&p.path) == Some(&false)
            && layer_of
                .get(&p.path)
                .is_some_and(|d| d.strip_prefix("sha256:") == Some(p.sha256.as_str()));
        if leave_out {
            omitted.push(Omitted {
                path: p.path.clone(),
                diff_id: layer_of[&p.path].clone(),
            });
            left_out_bytes += p.size;
        } else {
            kept.push(p.clone());
        }
    }
    let left: HashSet<&str> = omitted.iter().map(|o| o.path.as_str()).collect();
    let mut requires: Vec<Required> = Vec::new();
    for i in images {
        let chains = chain_ids(&i.diff_ids);
        for (n, layer) in i.layers.iter().enumerate() {
            if !left.contains(resolve(layer).as_str()) {
                continue;
            }
            match requires.iter_mut().find(|r| r.chain_id == chains[n]) {
                Some(r) => {
                    if !r.images.iter().any(|x| x == i.name()) {
                        r.images.push(i.name().to_string());
                    }
                }
                None => requires.push(Required {
                    diff_id: i.diff_ids[n].clone(),
                    chain_id: chains[n].clone(),
                    images: vec![i.name().to_string()],
                }),
            }
        }
    }
    Plan {
        kept,
        delta: Delta {
            since: base.since.clone(),
            omitted,
            requires,
        },
        left_out_bytes,
    }
}

/// The layers a delta bundle needs that `engine` lacks (none for a full
/// bundle), looked up in the engine's images before anything is loaded.
pub async fn missing_layers<E: Engine>(
    engine: &E,
    manifest: &Manifest,
) -> Result<Vec<Required>, BundleError> {
    let Some(delta) = &manifest.delta else {
        return Ok(Vec::new());
    };
    if delta.requires.is_empty() {
        return Ok(Vec::new());
    }
    let images = engine
        .list_images()
        .await
        .map_err(|e| BundleError::Engine(e.to_string()))?;
    let mut present = BaseSet::new("this box");
    for i in &images {
        present.add_image(&i.id, &i.layers);
    }
    Ok(delta
        .requires
        .iter()
        .filter(|r| !present.contains(&r.chain_id))
        .cloned()
        .collect())
}

/// The refusal of a delta whose layers the box lacks: the lowest missing
/// layer of each image first (the manifest lists them bottom first).
pub fn describe_missing(missing: &[Required]) -> String {
    const SHOWN: usize = 3;
    let mut out: Vec<String> = missing
        .iter()
        .take(SHOWN)
        .map(|r| {
            format!(
                "layer {} (chain {}), needed by image {}",
                r.diff_id,
                r.chain_id,
                r.images.join(", ")
            )
        })
        .collect();
    if missing.len() > SHOWN {
        out.push(format!("and {} more", missing.len() - SHOWN));
    }
    out.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn part(path: &str, diff: &str) -> Part {
        Part {
            path: path.into(),
            size: 10,
            sha256: diff.trim_start_matches("sha256:").into(),
        }
    }

    fn image(name: &str, layers: &[(&str, &str)]) -> Image {
        Image {
            id: digest('f'),
            repo_tags: vec![name.into()],
            config: "c.json".into(),
            layers: layers.iter().map(|(p, _)| p.to_string()).collect(),
            diff_ids: layers.iter().map(|(_, d)| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_layer_is_left_out_only_when_every_use_of_it_is_in_the_base() {
        let (a, b, c) = (digest('a'), digest('b'), digest('c'));
        let parts = vec![
            part("a/layer.tar", &a),
            part("b/layer.tar", &b),
            part("c/layer.tar", &c),
        ];
        // old: a+b; new: a+b+c; other: b alone at the bottom (another chain).
        let old = image("old", &[("a/layer.tar", &a), ("b/layer.tar", &b)]);
        let new = image(
            "new",
            &[
                ("a/layer.tar", &a),
                ("b/layer.tar", &b),
                ("c/layer.tar", &c),
            ],
        );
        let mut base = BaseSet::new("v1");
        base.add_image("old", &old.diff_ids);
        let p = plan(&parts, &[], std::slice::from_ref(&new), &base);
        let left: Vec<&str> = p.delta.omitted.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(left, ["a/layer.tar", "b/layer.tar"]);
        assert_eq!(p.kept.len(), 1);
        assert_eq!(p.left_out_bytes, 20);
        assert_eq!(p.delta.requires.len(), 2);
        assert_eq!(p.delta.requires[1].chain_id, chain_ids(&old.diff_ids)[1]);
        assert_eq!(p.delta.requires[0].images, ["new"]);

        // The same file, used at a chain the base lacks, stays.
        let other = image("other", &[("b/layer.tar", &b)]);
        let p = plan(&parts, &[], &[new, other], &base);
        let left: Vec<&str> = p.delta.omitted.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(left, ["a/layer.tar"]);
    }

    #[test]
    fn a_link_counts_as_a_use_of_its_target() {
        let (a, b) = (digest('a'), digest('b'));
        let parts = vec![part("x/layer.tar", &a), part("y/layer.tar", &b)];
        let links = vec![Link {
            path: "z/layer.tar".into(),
            target: "../x/layer.tar".into(),
        }];
        let one = image("one", &[("x/layer.tar", &a)]);
        // `two` has layer a on top of b (another chain), through the link.
        let two = image("two", &[("y/layer.tar", &b), ("z/layer.tar", &a)]);
        let mut base = BaseSet::new("v1");
        base.add_image("one", &one.diff_ids);
        let p = plan(&parts, &links, &[one, two], &base);
        assert!(p.delta.omitted.is_empty(), "{:?}", p.delta.omitted);
    }

    #[test]
    fn a_file_that_is_not_its_layer_is_kept() {
        let a = digest('a');
        let mut parts = vec![part("a/layer.tar", &a)];
        parts[0].sha256 = "0".repeat(64);
        let one = image("one", &[("a/layer.tar", &a)]);
        let mut base = BaseSet::new("v1");
        base.add_image("one", &one.diff_ids);
        assert!(plan(&parts, &[], &[one], &base).delta.omitted.is_empty());
    }
}
