//! Which profile fits this box.
//!
//! ([`detect`] documents the order).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::paths::Paths;
use crate::profile::Profile;

/// Detection found nothing to use.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("no device profile named {name:?}: choose one of {}", available.join(", "))]
    UnknownProfile {
        name: String,
        available: Vec<String>,
    },

    #[error(
        "no device profile fits this box ({facts}): name a profile explicitly, \
         or add one for it to the profile directory"
    )]
    NoProfile { facts: String },
}

/// What detection read from the box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// `std::env::consts::ARCH` (or the test's).
    pub arch: String,
    /// `/proc/device-tree/model` without its trailing NUL.
    pub device_tree_model: Option<String>,
    /// `/sys/class/dmi/id/product_name`, trimmed.
    pub dmi_product_name: Option<String>,
    /// `MemTotal` in bytes.
    pub mem_total: Option<u64>,
}

impl std::fmt::Display for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "arch {}", self.arch)?;
        match &self.device_tree_model {
            Some(m) => write!(f, ", device-tree model {m:?}")?,
            None => write!(f, ", no device-tree model")?,
        }
        match &self.dmi_product_name {
            Some(m) => write!(f, ", DMI product name {m:?}")?,
            None => write!(f, ", no DMI product name")?,
        }
        if let Some(m) = self.mem_total {
            write!(f, ", {} of RAM", crate::units::ByteSize(m))?;
        }
        Ok(())
    }
}

/// The chosen profile, the facts and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detected {
    pub profile: Profile,
    pub facts: Facts,
    /// `device-tree model "Raspberry Pi 3 Model B Rev 1.2" matches raspberrypi3`.
    pub reason: String,
}

/// Reads the facts under `root`; what cannot be read is `None`.
pub fn read_facts(root: &Path, arch: &str) -> Facts {
    let paths = Paths::new(root);
    let text = |p: std::path::PathBuf| {
        std::fs::read(p).ok().and_then(|bytes| {
            let s = String::from_utf8_lossy(&bytes);
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            (!s.is_empty()).then(|| s.to_string())
        })
    };
    Facts {
        arch: arch.to_string(),
        device_tree_model: text(paths.proc("device-tree/model")),
        dmi_product_name: text(paths.sys("class/dmi/id/product_name")),
        mem_total: read_mem_total(&paths),
    }
}

/// `MemTotal` from `<root>/proc/meminfo`, in bytes.
pub fn read_mem_total(paths: &Paths) -> Option<u64> {
    let text = std::fs::read_to_string(paths.proc("meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Picks the profile for the box under `root`.
///
/// # Design
///
/// Detection reads three facts under a root — `/proc/device-tree/model` (ARM boards),
/// `/sys/class/dmi/id/product_name` (PCs and virtual machines) and `MemTotal` from
/// `/proc/meminfo` — and takes the architecture as an argument
/// (`std::env::consts::ARCH` in production). The order:
///
/// 1. an override by name (the operator knows best); an unknown name is an error
///    that lists the names;
/// 2. a profile whose `match.device_tree_model` has a substring of the model;
/// 3. a profile whose `match.dmi_product_name` has a substring of the product name;
/// 4. the generic profile of the architecture: the first whose `match` lists the
///    architecture and no model or product name patterns (`generic-amd64`,
///    `generic-aarch64`).
///
/// In steps 2-4 the profile's `match.arch` must list the architecture and
/// `MemTotal` must be within `match.min_memory`/`max_memory` (when both are known).
/// When several profiles match, the one with the longest matching pattern wins
/// (`"Raspberry Pi Compute Module 3"` over a hypothetical `"Raspberry Pi"`); ties go to
/// the earlier profile in the list. Patterns are case-sensitive substrings.
pub fn detect(
    root: &Path,
    arch: &str,
    profiles: &[Profile],
    override_name: Option<&str>,
) -> Result<Detected, DetectError> {
    let facts = read_facts(root, arch);
    choose(facts, profiles, override_name)
}

/// [`detect`] on facts already read.
pub fn choose(
    facts: Facts,
    profiles: &[Profile],
    override_name: Option<&str>,
) -> Result<Detected, DetectError> {
    let found = |profile: &Profile, reason: String, facts: Facts| Detected {
        profile: profile.clone(),
        facts,
        reason,
    };

    if let Some(name) = override_name {
        return match profiles.iter().find(|p| p.name == name) {
            Some(p) => Ok(found(
                p,
                format!("profile {name} chosen by override"),
                facts,
            )),
            None => Err(DetectError::UnknownProfile {
                name: name.to_string(),
                available: profiles.iter().map(|p| p.name.clone()).collect(),
            }),
        };
    }

    let fits = |p: &Profile| {
        let m = &p.matching;
        m.arch.contains(&facts.arch)
            && facts.mem_total.is_none_or(|mem| {
                m.min_memory.is_none_or(|lo| mem >= lo.0)
                    && m.max_memory.is_none_or(|hi| mem <= hi.0)
            })
    };

    let best = |value: &str, patterns: fn(&Profile) -> &Vec<String>| {
        let mut best: Option<(&Profile, usize)> = None;
        for p in profiles.iter().filter(|p| fits(p)) {
            let longest = patterns(p)
                .iter()
                .filter(|pat| value.contains(pat.as_str()))
                .map(|pat| pat.len())
                .max();
            if let Some(len) = longest
                && best.is_none_or(|(_, l)| len > l)
            {
                best = Some((p, len));
            }
        }
        best.map(|(p, _)| p)
    };

    if let Some(model) = &facts.device_tree_model
        && let Some(p) = best(model, |p| &p.matching.device_tree_model)
    {
        let reason = format!("device-tree model {model:?} matches {}", p.name);
        return Ok(found(p, reason, facts));
    }
    if let Some(product) = &facts.dmi_product_name
        && let Some(p) = best(product, |p| &p.matching.dmi_product_name)
    {
        let reason = format!("DMI product name {product:?} matches {}", p.name);
        return Ok(found(p, reason, facts));
    }
    if let Some(p) = profiles.iter().find(|p| {
        fits(p) && p.matching.device_tree_model.is_empty() && p.matching.dmi_product_name.is_empty()
    }) {
        let unmatched = match (&facts.device_tree_model, &facts.dmi_product_name) {
            (Some(m), _) => format!("device-tree model {m:?} matches no profile"),
            (None, Some(d)) => format!("DMI product name {d:?} matches no profile"),
            (None, None) => "no device-tree model or DMI product name".to_string(),
        };
        let reason = format!(
            "{unmatched}: {} is the generic profile for {}",
            p.name, facts.arch
        );
        return Ok(found(p, reason, facts));
    }
    Err(DetectError::NoProfile {
        facts: facts.to_string(),
    })
}
