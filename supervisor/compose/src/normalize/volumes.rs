//! Volumes: the top-level `volumes:` (engine names), and a service's mounts:
//! `volumes:` entries, short ([`parse_volume`]) or long, and `tmpfs:`. A named
//! volume a service mounts must be declared at the top level.

use std::collections::HashMap;
use std::path::Path;

use docker_compose_types as dct;
use indexmap::IndexMap;

use super::values::{labels, opts_map};
use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::{ByteSize, Mount, MountKind, Volume};
use crate::paths::resolve_path;

/// The top-level `volumes:`, sorted by key. The engine name is `name:`, else
/// the key for an external volume (or its `external.name`), else
/// `<project>_<key>`.
pub(super) fn top_level(project: &str, volumes: &dct::TopLevelVolumes) -> IndexMap<String, Volume> {
    let mut out = IndexMap::new();
    for (key, entry) in &volumes.0 {
        let v: Option<dct::ComposeVolume> = entry.clone().into();
        let (external, ext_name, given, driver, driver_opts, vlabels) = match &v {
            None => (false, None, None, None, IndexMap::new(), IndexMap::new()),
            Some(v) => {
                let (external, ext_name) = match &v.external {
                    Some(dct::ExternalVolume::Bool(b)) => (*b, None),
                    Some(dct::ExternalVolume::Name { name }) => (true, Some(name.clone())),
                    None => (false, None),
                };
                (
                    external,
                    ext_name,
                    v.name.clone(),
                    v.driver.clone(),
                    opts_map(&v.driver_opts),
                    labels(&v.labels),
                )
            }
        };
        let engine_name = match (external, given) {
            (_, Some(g)) => g,
            (true, None) => ext_name.unwrap_or_else(|| key.clone()),
            (false, None) => format!("{project}_{key}"),
        };
        out.insert(
            key.clone(),
            Volume {
                name: engine_name,
                driver,
                driver_opts,
                external,
                labels: vlabels,
            },
        );
    }
    out.sort_keys();
    out
}

/// A service's `volumes:`, short and long entries.
pub(super) fn mounts(
    ctx: &Ctx,
    service: &str,
    list: &[dct::Volumes],
    declared: &IndexMap<String, Volume>,
) -> Result<Vec<Mount>, LoadError> {
    let err = |m: String| LoadError::service(service, m);
    let mut out = Vec::new();
    for v in list {
        let m = match v {
            dct::Volumes::Simple(spec) => {
                parse_volume(spec, &ctx.project_dir, &ctx.env).map_err(err)?
            }
            dct::Volumes::Advanced(a) => long_mount(ctx, a).map_err(err)?,
        };
        if m.kind == MountKind::Volume
            && let Some(src) = &m.source
            && !declared.contains_key(src)
        {
            return Err(err(format!(
                "uses volume {src:?}, which is not declared in the top-level volumes: section (declare it, or use ./{src} for a bind mount)"
            )));
        }
        out.push(m);
    }
    Ok(out)
}

/// A long `volumes:` entry: `{type: volume|bind|tmpfs, source, target, ...}`.
fn long_mount(ctx: &Ctx, a: &dct::AdvancedVolumes) -> Result<Mount, String> {
    let kind = match a._type.as_str() {
        "volume" => MountKind::Volume,
        "bind" => MountKind::Bind,
        "tmpfs" => MountKind::Tmpfs,
        other => {
            return Err(format!(
                "volume type {other:?} is not supported: use volume, bind or tmpfs"
            ));
        }
    };
    let source = match (kind, &a.source) {
        (MountKind::Bind, Some(src)) => Some(
            resolve_path(&ctx.project_dir, src, &ctx.env)
                .display()
                .to_string(),
        ),
        (MountKind::Bind, None) => {
            return Err(format!("bind mount to {} needs source:", a.target));
        }
        (MountKind::Volume, src) => src.clone().filter(|s| !s.is_empty()),
        (MountKind::Tmpfs, _) => None,
        (MountKind::Image | MountKind::Npipe, src) => src.clone(),
    };
    Ok(Mount {
        kind,
        source,
        target: a.target.clone(),
        read_only: a.read_only,
        tmpfs_size: a.tmpfs.as_ref().map(|t| ByteSize(t.size)),
        ..Default::default()
    })
}

/// `tmpfs:`: one path or a list.
pub(super) fn tmpfs(t: Option<&dct::Tmpfs>) -> Vec<String> {
    match t {
        None => Vec::new(),
        Some(dct::Tmpfs::Simple(t)) => vec![t.clone()],
        Some(dct::Tmpfs::List(l)) => l.clone(),
    }
}

/// Parses a short volume (`[SOURCE:]TARGET[:MODE]`). Sources starting with
/// `/`, `.` or `~` are bind mounts (made absolute against `dir`); others
/// name a volume.
pub fn parse_volume(
    spec: &str,
    dir: &Path,
    env: &HashMap<String, String>,
) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, m] => (Some(*s), *t, *m),
        _ => {
            return Err(format!(
                "invalid volume {spec:?}: expected [SOURCE:]TARGET[:MODE]"
            ));
        }
    };
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume {spec:?}: the container path {target:?} must be absolute"
        ));
    }
    let read_only = mode.split(',').any(|m| m == "ro");
    let (kind, source) = match source {
        None => (MountKind::Volume, None),
        Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => (
            MountKind::Bind,
            Some(resolve_path(dir, s, env).display().to_string()),
        ),
        Some(s) => (MountKind::Volume, Some(s.to_string())),
    };
    Ok(Mount {
        kind,
        source,
        target: target.to_string(),
        read_only,
        tmpfs_size: None,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_volumes() {
        let env: HashMap<String, String> = [("HOME".to_string(), "/home/u".to_string())].into();
        let d = Path::new("/proj");
        let v = |s: &str| parse_volume(s, d, &env).unwrap();
        let m = v("data:/var/lib/data");
        assert_eq!(
            (m.kind, m.source.as_deref(), m.target.as_str(), m.read_only),
            (MountKind::Volume, Some("data"), "/var/lib/data", false)
        );
        let m = v("./conf:/etc/conf:ro");
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only),
            (MountKind::Bind, Some("/proj/conf"), true)
        );
        let m = v("/abs:/x:ro,z");
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only),
            (MountKind::Bind, Some("/abs"), true)
        );
        let m = v("~/cache:/cache");
        assert_eq!(m.source.as_deref(), Some("/home/u/cache"));
        let m = v("/anon");
        assert_eq!((m.kind, m.source), (MountKind::Volume, None));
        assert!(parse_volume("a:relative", d, &env).is_err());
        assert!(parse_volume("a:/b:ro:x", d, &env).is_err());
    }
}
