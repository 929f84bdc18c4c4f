//! Following the fleet's target: an ETag poll of the parent's api, the
//! decision (`decide`, pure), the fleet release turned into a project with
//! its images pinned by digest and pushed through the release machinery
//! (strategies, locks, health gate, rollback), and a state report after
//! every decision.

use std::time::Duration;

use turtle_compose::{LoadOptions, Project, ProjectName};
use turtle_fleet_api::Release as FleetRelease;
use turtle_runtime::release::{Origin, Outcome, Release};

/// What to do about the fleet's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The fleet has no release yet.
    Nothing,
    /// The target runs, committed.
    UpToDate,
    /// This box already ran the target and it was rolled back: not tried
    /// again until the target moves (the reason is reported).
    Skip { outcome: Outcome, reason: String },
    /// The target failed before it ran (a pull, the disk): tried again
    /// after a wait that doubles with each failure.
    Wait { until_ms: i64 },
    /// Apply the target.
    Apply,
}

/// The longest wait between tries of a release that failed before it ran.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(3600);

/// The fleet release a local release came from.
pub fn fleet_release(r: &Release) -> Option<i64> {
    match &r.origin {
        Origin::Fleet { release, .. } => Some(*release),
        _ => None,
    }
}

/// Decides from the target and the project's local releases (newest
/// first), at `now_ms`, retrying a failure after `interval` doubled per
/// failure (at most [`MAX_RETRY_WAIT`]).
pub fn decide(
    target: Option<&FleetRelease>,
    releases: &[Release],
    now_ms: i64,
    interval: Duration,
) -> Decision {
    let Some(target) = target else {
        return Decision::Nothing;
    };
    let current = releases.iter().find(|r| r.outcome == Outcome::Committed);
    if current.and_then(fleet_release) == Some(target.id) {
        return Decision::UpToDate;
    }
    let tries: Vec<&Release> = releases
        .iter()
        .filter(|r| fleet_release(r) == Some(target.id))
        .collect();
    // The newest try of the target decides.
    match tries.first() {
        Some(r) if r.outcome == Outcome::RolledBack => Decision::Skip {
            outcome: r.outcome,
            reason: r.reason.clone().unwrap_or_default(),
        },
        Some(r) if r.outcome == Outcome::Failed => {
            let failures = tries
                .iter()
                .take_while(|r| r.outcome == Outcome::Failed)
                .count() as u32;
            let wait = interval
                .saturating_mul(1 << (failures - 1).min(16))
                .min(MAX_RETRY_WAIT);
            let until_ms = r.finished_ms.unwrap_or(r.created_ms) + wait.as_millis() as i64;
            if now_ms >= until_ms {
                Decision::Apply
            } else {
                Decision::Wait { until_ms }
            }
        }
        _ => Decision::Apply,
    }
}

/// The fleet release as a project: its compose text read in memory under
/// the fleet's name, each service running the image the release pins (by
/// digest, pulled from the parent's registry), no build.
pub fn project_of(
    fleet: &str,
    release: &FleetRelease,
    workdir: &std::path::Path,
) -> Result<Project, String> {
    let name = fleet
        .parse::<ProjectName>()
        .map_err(|e| format!("fleet {fleet} is not a project name here: {e}"))?;
    let file = std::path::PathBuf::from("docker-compose.yml");
    let opts = LoadOptions {
        files: vec![file.clone()],
        project_name: Some(name),
        cwd: workdir.to_path_buf(),
        ..Default::default()
    };
    let loaded = turtle_compose::load_in_memory(&opts, [(file, release.compose.clone())])
        .map_err(|e| format!("release {} of fleet {fleet}: {e}", release.version))?;
    let mut project = loaded.project;
    for (service, s) in &mut project.services {
        match release.images.get(service.as_str()) {
            Some(image) => {
                s.image = Some(image.clone());
                s.build = None;
                s.pull_policy = None;
            }
            None if s.build.is_some() => {
                return Err(format!(
                    "release {} of fleet {fleet}: service {service} builds from sources and the release pins no image for it: push the release with `turtle fleet push`, which builds it",
                    release.version
                ));
            }
            None => {}
        }
    }
    Ok(project)
}

/// The wait before the next poll: `interval` give or take a tenth.
pub fn jittered(interval: Duration) -> Duration {
    let tenth = interval / 10;
    let mut b = [0u8; 2];
    {
        use ring::rand::SecureRandom;
        let _ = ring::rand::SystemRandom::new().fill(&mut b);
    }
    let r = u16::from_le_bytes(b) as f64 / u16::MAX as f64; // 0..=1
    interval - tenth + tenth.mul_f64(2.0 * r)
}

/// The next wait after a failure: doubled, from 1 s up to `interval`.
pub fn backoff(last: Duration, interval: Duration) -> Duration {
    (last * 2).clamp(Duration::from_secs(1), interval.max(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet_rel(id: i64, version: i32) -> FleetRelease {
        FleetRelease {
            compose: "services:\n  web:\n    image: busybox\n".into(),
            created_at: "t".into(),
            fleet_id: 1,
            id,
            images: [(
                "web".to_string(),
                "registry.p.local/prod/web@sha256:ab".to_string(),
            )]
            .into(),
            version,
        }
    }

    fn local(fleet_release: i64, outcome: Outcome) -> Release {
        Release {
            id: format!("r{fleet_release}{outcome:?}"),
            project: "prod".into(),
            seq: 1,
            version: fleet_release.to_string(),
            notes: String::new(),
            created_ms: 0,
            origin: Origin::Fleet {
                fleet: "prod".into(),
                release: fleet_release,
                version: fleet_release as i32,
            },
            compose: turtle_reconcile::test_support::project("prod", vec![]),
            images: Default::default(),
            outcome,
            reason: Some("web: unhealthy".into()),
            finished_ms: None,
        }
    }

    #[test]
    fn the_target_is_applied_once_and_a_bad_one_not_again() {
        let i = Duration::from_secs(30);
        let d = |t, r: &[Release]| decide(t, r, 0, i);
        assert_eq!(d(None, &[]), Decision::Nothing);
        let v1 = fleet_rel(10, 1);
        let v2 = fleet_rel(11, 2);
        assert_eq!(d(Some(&v1), &[]), Decision::Apply);
        let on_v1 = [local(10, Outcome::Committed)];
        assert_eq!(d(Some(&v1), &on_v1), Decision::UpToDate);
        assert_eq!(d(Some(&v2), &on_v1), Decision::Apply);
        // v2 rolled back: v1 still runs, v2 is not tried again.
        let rolled = [
            local(11, Outcome::RolledBack),
            local(10, Outcome::Committed),
        ];
        assert_eq!(
            d(Some(&v2), &rolled),
            Decision::Skip {
                outcome: Outcome::RolledBack,
                reason: "web: unhealthy".into()
            }
        );
        // The fleet pinned back to v1: up to date.
        assert_eq!(d(Some(&v1), &rolled), Decision::UpToDate);
        // A push cut short (pending) is applied again.
        let pending = [local(11, Outcome::Pending), local(10, Outcome::Committed)];
        assert_eq!(d(Some(&v2), &pending), Decision::Apply);
        // A local push on top: the fleet's target is applied again.
        let mut mine = local(10, Outcome::Committed);
        mine.origin = Origin::Push;
        assert_eq!(d(Some(&v1), &[mine]), Decision::Apply);
    }

    #[test]
    fn a_release_that_failed_before_it_ran_is_tried_again_later_and_later() {
        let i = Duration::from_secs(30);
        let v2 = fleet_rel(11, 2);
        let failed = |at: i64| {
            let mut r = local(11, Outcome::Failed);
            r.finished_ms = Some(at);
            r
        };
        let once = [failed(1_000), local(10, Outcome::Committed)];
        assert_eq!(
            decide(Some(&v2), &once, 1_000, i),
            Decision::Wait { until_ms: 31_000 }
        );
        assert_eq!(decide(Some(&v2), &once, 31_000, i), Decision::Apply);
        // Three failures in a row: 4 intervals.
        let thrice = [failed(5_000), failed(3_000), failed(1_000)];
        assert_eq!(
            decide(Some(&v2), &thrice, 5_000, i),
            Decision::Wait { until_ms: 125_000 }
        );
        // Never more than an hour.
        let many: Vec<Release> = (0..20).map(|_| failed(0)).collect();
        assert_eq!(
            decide(Some(&v2), &many, 0, i),
            Decision::Wait {
                until_ms: MAX_RETRY_WAIT.as_millis() as i64
            }
        );
    }

    #[test]
    fn a_fleet_release_runs_its_pinned_images() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = fleet_rel(10, 1);
        r.compose = "services:\n  web:\n    build: ./web\n    image: prod/web:latest\n    pull_policy: build\n  db:\n    image: postgres:16\n".into();
        let p = project_of("prod", &r, dir.path()).unwrap();
        assert_eq!(p.name.as_str(), "prod");
        let web = &p.services["web"];
        assert_eq!(
            web.image.as_deref(),
            Some("registry.p.local/prod/web@sha256:ab")
        );
        assert!(web.build.is_none() && web.pull_policy.is_none());
        assert_eq!(p.services["db"].image.as_deref(), Some("postgres:16"));
        // A built service the release pins nothing for.
        r.images.clear();
        let e = project_of("prod", &r, dir.path()).unwrap_err();
        assert!(e.contains("service web builds from sources"), "{e}");
    }

    #[test]
    fn waits_are_jittered_and_back_off_to_the_interval() {
        let i = Duration::from_secs(30);
        for _ in 0..50 {
            let w = jittered(i);
            assert!(
                w >= Duration::from_secs(27) && w <= Duration::from_secs(33),
                "{w:?}"
            );
        }
        assert_eq!(backoff(Duration::ZERO, i), Duration::from_secs(1));
        assert_eq!(backoff(Duration::from_secs(4), i), Duration::from_secs(8));
        assert_eq!(backoff(Duration::from_secs(20), i), i);
    }
}
