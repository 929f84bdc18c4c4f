//! From the typed parse to [`Project`]: every short syntax expanded, paths
//! made absolute, profiles applied, references checked.
//!
//! `project()` here is the flow: the project name, then the top-level
//! networks (`networks.rs`), volumes (`volumes.rs`), secrets and configs
//! (`secrets.rs`), then each service enabled by the profiles (`service.rs`,
//! which reads the environment with `env.rs`, ports with `ports.rs`, mounts
//! with `volumes.rs`, networks with `networks.rs`, `depends_on` with
//! `depends.rs`, limits with `resources.rs`), then the references between
//! services (`depends.rs`) and the implicit `default` network. `values.rs`
//! holds the small readers they share. The submodules are private (the public
//! items are re-exported here) and depend on each other only downwards, never
//! on this module.

mod depends;
mod env;
mod networks;
mod ports;
mod resources;
mod secrets;
mod service;
mod values;
mod volumes;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_norway::Value;

use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::Project;
use crate::typed;
pub use env::{EnvFileEntry, EnvFileFormat, env_file_entries};
pub use ports::parse_port;
use service::Top;
pub use volumes::parse_volume;

/// Lowercase, only `[a-z0-9_-]`, no leading `_` or `-` (compose's rule).
pub fn normalize_project_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect::<String>()
        .trim_start_matches(['_', '-'])
        .to_string()
}

/// `-p`, then `COMPOSE_PROJECT_NAME`, then `name:`, then the directory name.
pub fn project_name(
    cli: Option<&str>,
    env: Option<&str>,
    top: Option<&str>,
    dir: &Path,
) -> Result<String, LoadError> {
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().to_string());
    let raw = [cli, env, top, dir_name.as_deref()]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let name = normalize_project_name(raw);
    if name.is_empty() {
        return Err(LoadError::project(format!(
            "invalid project name {raw:?}: it must contain a lowercase letter or a digit (use -p NAME)"
        )));
    }
    Ok(name)
}

/// Is a service with these profiles enabled by `active`?
pub fn profile_enabled(service_profiles: &[String], active: &[String]) -> bool {
    service_profiles.is_empty()
        || active.iter().any(|a| a == "*")
        || service_profiles.iter().any(|p| active.contains(p))
}

/// Builds the project from the merged value.
pub(crate) fn project(
    ctx: &mut Ctx,
    merged: Value,
    files: &[PathBuf],
    cli_name: Option<&str>,
    profiles: &[String],
) -> Result<Project, LoadError> {
    let t = typed::parse(merged)?;
    let name = project_name(
        cli_name,
        ctx.env.get("COMPOSE_PROJECT_NAME").map(String::as_str),
        t.compose.name.as_deref(),
        &ctx.project_dir,
    )?;

    let mut networks = networks::top_level(&name, &t.compose.networks, &t.ipam);
    let volumes = volumes::top_level(&name, &t.compose.volumes);
    let secrets = secrets::file_objects(ctx, "secrets", &t.secrets)?;
    let configs = secrets::file_objects(ctx, "configs", &t.configs)?;

    let top = Top {
        project: &name,
        networks: &networks,
        volumes: &volumes,
        secrets: &secrets,
        configs: &configs,
    };
    let mut services = IndexMap::new();
    let mut disabled = BTreeSet::new();
    for (sname, ts) in t.services {
        if !profile_enabled(&ts.svc.profiles, profiles) {
            disabled.insert(sname);
            continue;
        }
        let s = service::service(ctx, &top, &sname, ts)?;
        services.insert(sname, s);
    }
    services.sort_keys();

    depends::check(ctx, &mut services, &disabled)?;

    networks::add_default(&name, &services, &mut networks);
    networks.sort_keys();

    Ok(Project {
        name,
        working_dir: ctx.project_dir.clone(),
        files: files.to_vec(),
        services,
        networks,
        volumes,
        secrets,
        configs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        let d = Path::new("/x/My App.v2");
        assert_eq!(project_name(None, None, None, d).unwrap(), "myappv2");
        assert_eq!(project_name(None, None, Some("Top"), d).unwrap(), "top");
        assert_eq!(
            project_name(None, Some("env"), Some("Top"), d).unwrap(),
            "env"
        );
        assert_eq!(
            project_name(Some("_Cli-1"), Some("env"), None, d).unwrap(),
            "cli-1"
        );
        assert_eq!(project_name(Some(""), None, Some("t"), d).unwrap(), "t");
        assert!(project_name(Some("!!!"), None, None, d).is_err());
    }

    #[test]
    fn profiles() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(profile_enabled(&[], &[]));
        assert!(!profile_enabled(&p(&["debug"]), &[]));
        assert!(profile_enabled(&p(&["debug", "x"]), &p(&["x"])));
        assert!(profile_enabled(&p(&["debug"]), &p(&["*"])));
        assert!(!profile_enabled(&p(&["debug"]), &p(&["other"])));
    }
}
