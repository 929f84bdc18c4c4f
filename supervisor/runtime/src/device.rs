//! The box the supervisor runs on: its profile, the budgets it gives each
//! service priority, and the tuning done at daemon start.
//!
//! # Design
//!
//! [`Device::open`] loads the shipped profiles (plus a directory of the
//! operator's, overriding by name) and picks one: the config's, or the
//! detected one (`turtle_device::detect`). Every path is read under the
//! config's `device.root`, so tests run against a fake `/proc` and `/sys`.
//!
//! [`decorate`] (pure) turns each service's `io.turtle.priority` label
//! (default `normal`) into its memory limit, CPU shares and CPU cap from the
//! profile's budgets, where the compose file does not set them itself. Like
//! the trust injection it runs before planning, so a budget is part of the
//! config hash: a new profile recreates what it changes.
//!
//! Shedding (thermal, memory pressure) lives in [`crate::shed`].

use std::path::{Path, PathBuf};

use turtle_compose::{Project, Service};
use turtle_device::{Detected, Paths, Priority, Profile};

use crate::config::{Config, DeviceSection};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Profile(#[from] turtle_device::ProfileError),
    #[error(transparent)]
    Detect(#[from] turtle_device::DetectError),
    #[error("service {service}: {source}")]
    Priority {
        service: String,
        source: turtle_device::PriorityError,
    },
    #[error(transparent)]
    System(#[from] turtle_device::SystemError),
}

/// What Turtle set up on the box, under the state directory.
const STATE_FILE: &str = "device.json";

/// The profile in force and where the box's files are.
pub struct Device {
    detected: Detected,
    paths: Paths,
    /// What Turtle set up on the system (swap, zram, sysctls), for reset.
    state_file: PathBuf,
    config: DeviceSection,
}

impl Device {
    pub fn open(state_dir: &Path, config: &Config) -> Result<Self, DeviceError> {
        let section = config.device.clone();
        let profiles = turtle_device::load_profiles(section.profiles_dir.as_deref())?;
        let detected = turtle_device::detect(
            &section.root,
            std::env::consts::ARCH,
            &profiles,
            section.profile.as_deref(),
        )?;
        Ok(Self {
            detected,
            paths: Paths::new(&section.root),
            state_file: state_dir.join(STATE_FILE),
            config: section,
        })
    }

    pub fn profile(&self) -> &Profile {
        &self.detected.profile
    }

    pub fn detected(&self) -> &Detected {
        &self.detected
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn config(&self) -> &DeviceSection {
        &self.config
    }

    /// Sets up the profile's swap file, zram and sysctls (idempotent).
    pub fn tune(&self) -> Result<turtle_device::ApplyReport, DeviceError> {
        Ok(turtle_device::apply(
            &self.paths,
            self.profile(),
            &self.state_file,
        )?)
    }

    /// Undoes what [`Device::tune`] set up. Needs no profile: a box whose
    /// profile no longer loads can still be reset.
    pub fn reset(
        state_dir: &Path,
        config: &Config,
    ) -> Result<turtle_device::ResetReport, DeviceError> {
        Ok(turtle_device::reset(
            &Paths::new(&config.device.root),
            &state_dir.join(STATE_FILE),
        )?)
    }

    /// Swap, zram and sysctls as they are now.
    pub fn system_status(&self) -> turtle_device::DeviceStatus {
        turtle_device::status(&self.paths, &self.state_file)
    }

    pub fn decorate(&self, project: &Project) -> Result<Project, DeviceError> {
        decorate(project, self.profile())
    }
}

/// A service's priority (its label; `normal` without one).
pub fn priority(name: &str, service: &Service) -> Result<Priority, DeviceError> {
    Priority::from_label(
        service
            .labels
            .get(turtle_device::PRIORITY_LABEL)
            .map(String::as_str),
    )
    .map_err(|source| DeviceError::Priority {
        service: name.to_string(),
        source,
    })
}

/// Each service with its priority's budget where the file sets no limit.
pub fn decorate(project: &Project, profile: &Profile) -> Result<Project, DeviceError> {
    let mut out = project.clone();
    for (name, service) in out.services.iter_mut() {
        let budget = profile.budget(priority(name, service)?);
        let r = &mut service.resources;
        let memory = budget.memory_bytes as u64;
        // A file that reserves more, or caps swap below the budget, means
        // more than the budget: the engine would refuse the pair.
        let conflicts = r.memory_reservation.is_some_and(|m| m.0 > memory)
            || r.memswap_limit
                .is_some_and(|m| (m.0 as i64) >= 0 && m.0 < memory);
        if r.memory_limit.is_none() && !conflicts {
            r.memory_limit = Some(turtle_units::ByteSize(memory));
        }
        if r.cpu_shares.is_none() {
            r.cpu_shares = Some(budget.cpu_shares);
        }
        if r.cpus.is_none()
            && let Some(n) = budget.nano_cpus
        {
            r.cpus = Some(format_cpus(n));
        }
    }
    Ok(out)
}

/// 500_000_000 -> "0.5", as compose writes `cpus`.
fn format_cpus(nano: i64) -> String {
    let s = format!("{:.9}", nano as f64 / 1e9);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The CPU limit a service's containers have when nothing is shed: its
/// `cpus`, or every CPU of the host.
pub fn normal_nano_cpus(service: &Service) -> i64 {
    service
        .resources
        .cpus
        .as_deref()
        .and_then(|c| turtle_reconcile::spec::nano_cpus(c).ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            cpus as i64 * 1_000_000_000
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use turtle_reconcile::test_support::project;

    fn profile() -> Profile {
        turtle_device::builtin_profiles()
            .unwrap()
            .into_iter()
            .find(|p| p.name == "raspberrypi3")
            .unwrap()
    }

    fn labelled(priority: &str) -> Service {
        let mut s = Service::default();
        s.labels
            .insert(turtle_device::PRIORITY_LABEL.into(), priority.into());
        s
    }

    #[test]
    fn priorities_become_the_profiles_budgets() {
        let p = profile();
        let d = decorate(
            &project("p", vec![("a", labelled("low")), ("b", Service::default())]),
            &p,
        )
        .unwrap();
        let low = p.budget(Priority::Low);
        let a = &d.services["a"].resources;
        assert_eq!(a.memory_limit.unwrap().0 as i64, low.memory_bytes);
        assert_eq!(a.cpu_shares, Some(low.cpu_shares));
        let normal = p.budget(Priority::Normal);
        let b = &d.services["b"].resources;
        assert_eq!(b.memory_limit.unwrap().0 as i64, normal.memory_bytes);
    }

    #[test]
    fn limits_in_the_file_win() {
        let mut s = labelled("low");
        s.resources.memory_limit = Some(turtle_units::ByteSize(1 << 30));
        s.resources.cpus = Some("1.5".into());
        let d = decorate(&project("p", vec![("a", s)]), &profile()).unwrap();
        let r = &d.services["a"].resources;
        assert_eq!(r.memory_limit, Some(turtle_units::ByteSize(1 << 30)));
        assert_eq!(r.cpus.as_deref(), Some("1.5"));
    }

    #[test]
    fn a_reservation_above_the_budget_keeps_the_file_as_written() {
        let mut s = labelled("low");
        s.resources.memory_reservation = Some(turtle_units::ByteSize(1 << 30));
        let d = decorate(&project("p", vec![("a", s)]), &profile()).unwrap();
        assert_eq!(d.services["a"].resources.memory_limit, None);
    }

    #[test]
    fn a_bad_priority_names_the_service() {
        let e = decorate(&project("p", vec![("web", labelled("urgent"))]), &profile()).unwrap_err();
        assert!(e.to_string().contains("web"), "{e}");
    }

    #[test]
    fn cpus_are_written_as_compose_writes_them() {
        assert_eq!(format_cpus(500_000_000), "0.5");
        assert_eq!(format_cpus(2_000_000_000), "2");
        assert_eq!(format_cpus(250_000_000), "0.25");
    }
}
