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
mod options;
mod ports;
mod resources;
mod secrets;
mod service;
mod values;
mod volumes;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::Project;
use crate::name::{ProjectName, ServiceName};
pub use env::{EnvFileEntry, EnvFileFormat, env_file_entries};
pub use ports::parse_port;
use service::Top;
pub use volumes::parse_volume;

/// The project name as compose v2 picks it: `-p` (already parsed), then
/// `COMPOSE_PROJECT_NAME`, both of which must be valid names as they are;
/// else the file's `name:` and then the project directory's name, each
/// normalized ([`ProjectName::normalize`]), the first that leaves a name.
pub fn project_name(
    cli: Option<&ProjectName>,
    env: Option<&str>,
    top: Option<&str>,
    dir: &Path,
) -> Result<ProjectName, LoadError> {
    if let Some(name) = cli {
        return Ok(name.clone());
    }
    if let Some(raw) = env.filter(|s| !s.is_empty()) {
        return raw
            .parse()
            .map_err(|e| LoadError::project(format!("COMPOSE_PROJECT_NAME: {e}")));
    }
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().to_string());
    top.and_then(ProjectName::normalize)
        .or_else(|| dir_name.as_deref().and_then(ProjectName::normalize))
        .ok_or_else(|| {
            LoadError::project(format!(
                "no project name: the directory name {:?} has no lowercase letter or digit and the file sets no `name:` (use -p NAME)",
                dir_name.unwrap_or_default()
            ))
        })
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
    cli_name: Option<&ProjectName>,
    profiles: &[String],
) -> Result<Project, LoadError> {
    let mut merged = merged;
    crate::yaml::strip_tags(&mut merged);
    let Value::Mapping(top_level) = merged else {
        return Err(LoadError::project("the compose file must be a mapping"));
    };
    let section = |key: &str| -> Result<Mapping, LoadError> {
        match top_level.get(key) {
            None | Some(Value::Null) => Ok(Mapping::new()),
            Some(Value::Mapping(m)) => Ok(m.clone()),
            Some(_) => Err(LoadError::project(format!(
                "top-level {key}: must be a mapping of names to definitions"
            ))),
        }
    };
    let name = project_name(
        cli_name,
        ctx.env.get("COMPOSE_PROJECT_NAME").map(String::as_str),
        top_level.get("name").and_then(values::scalar).as_deref(),
        &ctx.project_dir,
    )?;

    let mut networks = networks::top_level(&name, &section("networks")?);
    let volumes = volumes::top_level(&name, &section("volumes")?);
    let secrets = secrets::file_objects(ctx, "secrets", &section("secrets")?)?;
    let configs = secrets::file_objects(ctx, "configs", &section("configs")?)?;

    let top = Top {
        project: &name,
        networks: &networks,
        volumes: &volumes,
        secrets: &secrets,
        configs: &configs,
    };
    let mut services = IndexMap::new();
    let mut disabled = BTreeSet::new();
    let empty = Mapping::new();
    for (sname, svc) in &section("services")? {
        let sname: ServiceName = crate::keys::key_string(sname)
            .try_into()
            .map_err(|e: crate::name::NameError| LoadError::project(e.to_string()))?;
        let svc = match svc {
            Value::Mapping(m) => m,
            Value::Null => &empty,
            _ => {
                return Err(LoadError::service(&sname, "must be a mapping of settings"));
            }
        };
        if !profile_enabled(&values::strings(svc, "profiles"), profiles) {
            disabled.insert(sname);
            continue;
        }
        let s = service::service(ctx, &top, &sname, svc)?;
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
        let p = |s: &str| s.parse::<ProjectName>().unwrap();
        let name = |cli, env, top| project_name(cli, env, top, d).map(String::from);
        assert_eq!(name(None, None, None).unwrap(), "myappv2");
        // The file's name: is normalized; one that leaves nothing falls
        // back to the directory's.
        assert_eq!(name(None, None, Some("Top")).unwrap(), "top");
        assert_eq!(name(None, None, Some("!!!")).unwrap(), "myappv2");
        assert_eq!(name(None, Some("env"), Some("Top")).unwrap(), "env");
        let cli = p("cli-1");
        assert_eq!(name(Some(&cli), Some("env"), None).unwrap(), "cli-1");
        // An empty COMPOSE_PROJECT_NAME is unset, as in compose.
        assert_eq!(name(None, Some(""), Some("t")).unwrap(), "t");
        // COMPOSE_PROJECT_NAME must be valid as it is, as -p must.
        let e = name(None, Some("_Env"), None).unwrap_err().to_string();
        assert!(
            e.contains("COMPOSE_PROJECT_NAME") && e.contains("invalid project name \"_Env\""),
            "{e}"
        );
        let e = project_name(None, None, None, Path::new("/x/!!!"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("use -p NAME"), "{e}");
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
