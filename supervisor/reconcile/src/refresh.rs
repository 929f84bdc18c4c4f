//! Images refreshed before planning: `up --build` and `pull_policy`.
//!
//! These steps run (and finish) before the plan proper is made, so the
//! planner compares image IDs afterwards and recreates only the containers
//! whose image really changed (a pull that found nothing new, or a build
//! that hit the cache, recreates nothing). Only `up` refreshes; the
//! daemon's repairs never pull or build what the engine has.
//!
//! Per image (once, in dependency order), by its service's `pull_policy`:
//! `always` pulls; `build` builds; `every_<d>` (`daily`, `weekly`) pulls
//! when the image was last refreshed longer than `d` ago, or is missing;
//! `missing` (the default) and `never` do nothing here (the planner pulls a
//! missing image, or refuses one under `never`). `up --build` builds every
//! service with a `build:` section whatever its policy.
//!
//! "Last refreshed" is the engine's `LastTagTime` of the image, else its
//! creation time ([`turtle_engine::Engine::image_refreshed_at`]); the
//! runtime stamps the tag after every pull, so the time counts from the
//! last pull on this box, not from when the image was built upstream.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use turtle_compose::{Project, PullPolicy};

use crate::plan::{Action, Plan, PlanError, dependency_order};

/// The pulls and builds due before planning. `refreshed` holds, for each
/// image a service with `every_<d>` uses, when it was last refreshed
/// (`None`: missing); `now` is the wall clock.
pub fn refresh_plan(
    project: &Project,
    refreshed: &HashMap<String, Option<SystemTime>>,
    now: SystemTime,
    build_all: bool,
) -> Result<Plan, PlanError> {
    let mut p = Plan {
        project: project.name.to_string(),
        steps: Vec::new(),
    };
    let mut seen = HashSet::new();
    for name in dependency_order(project)? {
        let service = &project.services[name.as_str()];
        let Some(image) = &service.image else {
            return Err(PlanError::NoImage { service: name });
        };
        let build = || Action::BuildImage {
            service: name.clone(),
            image: image.clone(),
        };
        let pull = || Action::PullImage {
            image: image.clone(),
        };
        let action = match (&service.pull_policy, &service.build) {
            (_, Some(_)) if build_all => Some(build()),
            (Some(PullPolicy::Build), Some(_)) => Some(build()),
            (Some(PullPolicy::Build), None) => {
                return Err(PlanError::BuildWithoutBuild { service: name });
            }
            (Some(PullPolicy::Always), _) => Some(pull()),
            (Some(PullPolicy::Every(d)), _) => {
                let due = match refreshed.get(image).copied().flatten() {
                    None => true,
                    Some(at) => now.duration_since(at).unwrap_or_default() >= d.as_std(),
                };
                due.then(pull)
            }
            (Some(PullPolicy::Missing | PullPolicy::Never) | None, _) => None,
        };
        if let Some(action) = action
            && seen.insert(image.clone())
        {
            p.push(action, vec![]);
        }
    }
    Ok(p)
}

/// The images whose last refresh [`refresh_plan`] needs to know.
pub fn images_to_date(project: &Project) -> Vec<String> {
    let mut v: Vec<String> = project
        .services
        .values()
        .filter(|s| matches!(s.pull_policy, Some(PullPolicy::Every(_))))
        .filter_map(|s| s.image.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use turtle_compose::Build;

    use super::*;
    use crate::test_support::{project, service};

    fn with(policy: Option<PullPolicy>, build: bool) -> Project {
        let mut s = service("app:1");
        s.pull_policy = policy;
        if build {
            s.build = Some(Build::default());
        }
        project("demo", vec![("web", s)])
    }

    fn actions(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.action.to_string()).collect()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn each_policy_refreshes_as_compose_does() {
        let now = SystemTime::UNIX_EPOCH + 1000 * HOUR;
        let none = HashMap::new();
        let plan = |p: &Project, at: Option<SystemTime>| {
            let r = HashMap::from([("app:1".to_string(), at)]);
            actions(&refresh_plan(p, &r, now, false).unwrap())
        };
        assert_eq!(plan(&with(None, false), None), Vec::<String>::new());
        assert_eq!(
            plan(&with(Some(PullPolicy::Missing), false), None),
            Vec::<String>::new()
        );
        assert_eq!(
            plan(&with(Some(PullPolicy::Never), false), None),
            Vec::<String>::new()
        );
        assert_eq!(
            plan(&with(Some(PullPolicy::Always), false), Some(now)),
            ["pull image app:1"]
        );
        assert_eq!(
            plan(&with(Some(PullPolicy::Build), true), Some(now)),
            ["build image app:1 for web"]
        );
        let daily = Some(PullPolicy::Every(turtle_compose::Duration::from_secs(
            24 * 3600,
        )));
        let p = with(daily, false);
        assert_eq!(plan(&p, Some(now - 23 * HOUR)), Vec::<String>::new());
        assert_eq!(plan(&p, Some(now - 25 * HOUR)), ["pull image app:1"]);
        assert_eq!(plan(&p, None), ["pull image app:1"], "missing");
        assert_eq!(images_to_date(&p), ["app:1"]);
        assert!(images_to_date(&with(Some(PullPolicy::Always), false)).is_empty());
        // up --build builds what has a build section, whatever the policy.
        let built = refresh_plan(&with(Some(PullPolicy::Never), true), &none, now, true).unwrap();
        assert_eq!(actions(&built), ["build image app:1 for web"]);
    }

    #[test]
    fn pull_policy_build_needs_a_build_section() {
        let e = refresh_plan(
            &with(Some(PullPolicy::Build), false),
            &HashMap::new(),
            SystemTime::now(),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e,
            PlanError::BuildWithoutBuild {
                service: "web".into()
            }
        );
    }
}
