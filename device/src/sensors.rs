//! Readers for what the shedding policy watches: thermal zones
//! (`/sys/class/thermal/thermal_zoneN/{temp,type}`), memory pressure
//! (`/proc/pressure/memory`) and the kernel's OOM kill counter (`/proc/vmstat`).
//!
//! Every reader works under a root and never fails: a zone that cannot be read is
//! reported with its error, a missing pressure file (a kernel without PSI) is `None`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::paths::Paths;
use crate::profile::{Profile, ThermalConfig};
use crate::units::Millidegrees;

/// One thermal zone's temperature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneReading {
    /// `thermal_zone0`.
    pub zone: String,
    /// The zone's `type` (`cpu-thermal`, `x86_pkg_temp`), when readable.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Millidegrees Celsius; `None` when `error` says why.
    pub millideg: Option<i64>,
    pub error: Option<String>,
}

impl ZoneReading {
    pub fn temperature(&self) -> Option<Millidegrees> {
        self.millideg.map(Millidegrees)
    }
}

/// PSI memory pressure: the share of time (percent) some / all tasks stalled on
/// memory, over 10, 60 and 300 seconds, and the total stall in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    pub some_avg10: f64,
    pub some_avg60: f64,
    pub some_avg300: f64,
    pub some_total: u64,
    /// The `full` line (absent on some kernels).
    pub full_avg10: Option<f64>,
    pub full_avg60: Option<f64>,
    pub full_avg300: Option<f64>,
    pub full_total: Option<u64>,
}

/// Reads the zones `cfg` watches under `<root>/sys/class/thermal`, sorted by zone
/// number. `"*"` means every `thermal_zoneN` there (none when the directory is
/// missing or empty); a named zone that is missing is reported with an error.
pub fn read_zones(paths: &Paths, cfg: &ThermalConfig) -> Vec<ZoneReading> {
    let base = paths.sys("class/thermal");
    let mut names: Vec<String> = cfg.zones.iter().filter(|z| *z != "*").cloned().collect();
    if cfg.zones.iter().any(|z| z == "*")
        && let Ok(entries) = std::fs::read_dir(&base)
    {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("thermal_zone") && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names.sort_by_key(|n| {
        (
            n.trim_start_matches("thermal_zone")
                .parse::<u64>()
                .unwrap_or(u64::MAX),
            n.clone(),
        )
    });
    names.dedup();
    names
        .into_iter()
        .map(|zone| read_zone(&base, zone))
        .collect()
}

fn read_zone(base: &Path, zone: String) -> ZoneReading {
    let dir = base.join(&zone);
    let kind = std::fs::read_to_string(dir.join("type"))
        .ok()
        .map(|s| s.trim().to_string());
    let temp_path = dir.join("temp");
    let (millideg, error) = match std::fs::read_to_string(&temp_path) {
        Ok(text) => match text.trim().parse::<i64>() {
            Ok(m) => (Some(m), None),
            Err(_) => (
                None,
                Some(format!(
                    "{} holds {:?}, not millidegrees",
                    temp_path.display(),
                    text.trim()
                )),
            ),
        },
        Err(e) => (
            None,
            Some(format!("cannot read {}: {e}", temp_path.display())),
        ),
    };
    ZoneReading {
        zone,
        kind,
        millideg,
        error,
    }
}

/// The hottest readable zone.
pub fn hottest(zones: &[ZoneReading]) -> Option<&ZoneReading> {
    zones
        .iter()
        .filter(|z| z.millideg.is_some())
        .max_by_key(|z| z.millideg)
}

/// Parses `/proc/pressure/memory`.
pub fn parse_psi(text: &str) -> Option<Psi> {
    let line = |prefix: &str| -> Option<(f64, f64, f64, u64)> {
        let l = text.lines().find(|l| l.starts_with(prefix))?;
        let mut avg10 = None;
        let mut avg60 = None;
        let mut avg300 = None;
        let mut total = None;
        for word in l.split_whitespace().skip(1) {
            let (k, v) = word.split_once('=')?;
            match k {
                "avg10" => avg10 = v.parse().ok(),
                "avg60" => avg60 = v.parse().ok(),
                "avg300" => avg300 = v.parse().ok(),
                "total" => total = v.parse().ok(),
                _ => {}
            }
        }
        Some((avg10?, avg60?, avg300?, total?))
    };
    let some = line("some ")?;
    let full = line("full ");
    Some(Psi {
        some_avg10: some.0,
        some_avg60: some.1,
        some_avg300: some.2,
        some_total: some.3,
        full_avg10: full.map(|f| f.0),
        full_avg60: full.map(|f| f.1),
        full_avg300: full.map(|f| f.2),
        full_total: full.map(|f| f.3),
    })
}

/// `<root>/proc/pressure/memory`; `None` without PSI (kernel < 4.20, or `psi=0`).
pub fn read_psi(paths: &Paths) -> Option<Psi> {
    parse_psi(&std::fs::read_to_string(paths.proc("pressure/memory")).ok()?)
}

/// The kernel's count of OOM kills since boot (`oom_kill` in `<root>/proc/vmstat`,
/// Linux 4.13+). It counts kills inside containers' memory limits too.
pub fn read_oom_kills(paths: &Paths) -> Option<u64> {
    let text = std::fs::read_to_string(paths.proc("vmstat")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

/// One sample of everything the policy watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub zones: Vec<ZoneReading>,
    pub psi: Option<Psi>,
    /// OOM kills since the previous sample (0 on the first).
    pub oom_kills_since_last: u32,
}

impl Sample {
    /// The hottest readable zone.
    pub fn hottest(&self) -> Option<&ZoneReading> {
        hottest(&self.zones)
    }

    /// PSI memory `some avg10`.
    pub fn memory_pressure(&self) -> Option<f64> {
        self.psi.map(|p| p.some_avg10)
    }
}

/// Reads a [`Sample`] per call, remembering the OOM counter between calls.
#[derive(Debug, Clone)]
pub struct Sampler {
    paths: Paths,
    thermal: Option<ThermalConfig>,
    last_oom_kills: Option<u64>,
}

impl Sampler {
    /// Samples what `profile` watches (no zones when `thermal` is null).
    pub fn new(paths: Paths, profile: &Profile) -> Self {
        Self {
            paths,
            thermal: profile.thermal.clone(),
            last_oom_kills: None,
        }
    }

    pub fn sample(&mut self) -> Sample {
        let zones = self
            .thermal
            .as_ref()
            .map(|t| read_zones(&self.paths, t))
            .unwrap_or_default();
        let oom = read_oom_kills(&self.paths);
        let since = match (self.last_oom_kills, oom) {
            (Some(before), Some(now)) => now.saturating_sub(before).min(u32::MAX as u64) as u32,
            _ => 0,
        };
        if oom.is_some() {
            self.last_oom_kills = oom;
        }
        Sample {
            zones,
            psi: read_psi(&self.paths),
            oom_kills_since_last: since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn thermal(zones: &[&str]) -> ThermalConfig {
        ThermalConfig {
            zones: zones.iter().map(|z| z.to_string()).collect(),
            warn: Millidegrees(70_000),
            throttle: Millidegrees(80_000),
            critical: Millidegrees(85_000),
            hysteresis: Millidegrees(5_000),
        }
    }

    #[test]
    fn zones_from_a_fake_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(root, "sys/class/thermal/thermal_zone0/temp", "48312\n");
        write(
            root,
            "sys/class/thermal/thermal_zone0/type",
            "cpu-thermal\n",
        );
        write(root, "sys/class/thermal/thermal_zone10/temp", "85200\n");
        write(root, "sys/class/thermal/thermal_zone2/temp", "garbage\n");
        write(root, "sys/class/thermal/cooling_device0/type", "fan\n");
        let paths = Paths::new(root);

        let all = read_zones(&paths, &thermal(&["*"]));
        let names: Vec<_> = all.iter().map(|z| z.zone.as_str()).collect();
        assert_eq!(names, ["thermal_zone0", "thermal_zone2", "thermal_zone10"]);
        assert_eq!(all[0].millideg, Some(48_312));
        assert_eq!(all[0].kind.as_deref(), Some("cpu-thermal"));
        assert!(all[1].millideg.is_none());
        assert!(all[1].error.as_ref().unwrap().contains("not millidegrees"));
        assert_eq!(hottest(&all).unwrap().zone, "thermal_zone10");

        let named = read_zones(&paths, &thermal(&["thermal_zone0", "thermal_zone7"]));
        assert_eq!(named.len(), 2);
        assert_eq!(named[0].millideg, Some(48_312));
        assert!(named[1].error.as_ref().unwrap().contains("cannot read"));

        // This machine's real situation: an empty /sys/class/thermal.
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(empty.path().join("sys/class/thermal")).unwrap();
        assert!(read_zones(&Paths::new(empty.path()), &thermal(&["*"])).is_empty());
    }

    #[test]
    fn psi_and_oom() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let paths = Paths::new(root);
        assert!(read_psi(&paths).is_none());
        write(
            root,
            "proc/pressure/memory",
            "some avg10=42.50 avg60=10.00 avg300=2.00 total=123456\n\
             full avg10=5.25 avg60=1.00 avg300=0.00 total=789\n",
        );
        let psi = read_psi(&paths).unwrap();
        assert_eq!(psi.some_avg10, 42.5);
        assert_eq!(psi.some_total, 123_456);
        assert_eq!(psi.full_avg10, Some(5.25));
        assert_eq!(psi.full_total, Some(789));

        write(root, "proc/vmstat", "nr_free_pages 1\noom_kill 3\n");
        assert_eq!(read_oom_kills(&paths), Some(3));
        let profile = crate::builtin_profiles()
            .unwrap()
            .into_iter()
            .find(|p| p.name == "raspberrypi3")
            .unwrap();
        let mut sampler = Sampler::new(paths.clone(), &profile);
        assert_eq!(sampler.sample().oom_kills_since_last, 0);
        write(root, "proc/vmstat", "nr_free_pages 1\noom_kill 5\n");
        let s = sampler.sample();
        assert_eq!(s.oom_kills_since_last, 2);
        assert_eq!(s.memory_pressure(), Some(42.5));
        assert_eq!(sampler.sample().oom_kills_since_last, 0);
    }
}
