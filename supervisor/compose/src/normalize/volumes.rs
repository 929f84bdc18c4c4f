//! Volumes: the top-level `volumes:` (engine names), and a service's mounts:
//! `volumes:` entries, short ([`parse_volume`]) or long, and `tmpfs:`. A named
//! volume a service mounts must be declared at the top level.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use super::values::{
    boolean, engine_name, file_mode, get, opt_bool, scalar, size, string, string_map, strings, sub,
};
use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::{BindOptions, Mount, MountKind, Volume, VolumeOptions};
use crate::paths::{clean, resolve_path};

/// The top-level `volumes:`, sorted by key.
pub(super) fn top_level(project: &str, volumes: &Mapping) -> IndexMap<String, Volume> {
    let empty = Mapping::new();
    let mut out = IndexMap::new();
    for (key, entry) in volumes {
        let key = crate::keys::key_string(key);
        let v = entry.as_mapping().unwrap_or(&empty);
        let (name, external) = engine_name(project, &key, v);
        out.insert(
            key,
            Volume {
                name,
                driver: string(v, "driver"),
                driver_opts: string_map(v, "driver_opts"),
                external,
                labels: string_map(v, "labels"),
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
    svc: &Mapping,
    declared: &IndexMap<String, Volume>,
) -> Result<Vec<Mount>, LoadError> {
    let err = |m: String| LoadError::service(service, m);
    let Some(Value::Sequence(list)) = get(svc, "volumes") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for v in list {
        let m = match v {
            Value::Mapping(long) => long_mount(ctx, service, long)?,
            other => parse_volume(
                &scalar(other).unwrap_or_default(),
                &ctx.project_dir,
                &ctx.env,
            )
            .map_err(err)?,
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

/// A container path as compose writes it: cleaned lexically (`/data/` and
/// `/data/./` are `/data`).
pub(super) fn container_path(p: &str) -> String {
    clean(Path::new(p)).display().to_string()
}

/// A long `volumes:` entry: `{type, source, target, read_only, bind, volume,
/// tmpfs, image}`.
fn long_mount(ctx: &Ctx, service: &str, a: &Mapping) -> Result<Mount, LoadError> {
    let err = |m: String| LoadError::service(service, m);
    let target = string(a, "target")
        .map(|t| container_path(&t))
        .ok_or_else(|| err("volumes: every long entry needs target: PATH".into()))?;
    let kind = match string(a, "type").as_deref().unwrap_or("volume") {
        "volume" => MountKind::Volume,
        "bind" => MountKind::Bind,
        "tmpfs" => MountKind::Tmpfs,
        "image" => MountKind::Image,
        "npipe" => MountKind::Npipe,
        "cluster" => {
            return Err(err(format!(
                "volumes: {target}: cluster volumes need swarm: use volume, bind, tmpfs or image"
            )));
        }
        other => {
            return Err(err(format!(
                "volumes: {target}: type {other:?} is unknown: use volume, bind, tmpfs, image or npipe"
            )));
        }
    };
    let source = string(a, "source").filter(|s| !s.is_empty());
    let source = match (kind, source) {
        (MountKind::Bind, Some(src)) => Some(
            resolve_path(&ctx.project_dir, &src, &ctx.env)
                .display()
                .to_string(),
        ),
        (MountKind::Bind | MountKind::Image | MountKind::Npipe, None) => {
            return Err(err(format!("volumes: {target}: this mount needs source:")));
        }
        (MountKind::Tmpfs, _) => None,
        (_, src) => src,
    };
    let tmpfs = sub(a, "tmpfs");
    let bind = sub(a, "bind").map(|b| BindOptions {
        propagation: string(b, "propagation"),
        create_host_path: opt_bool(b, "create_host_path"),
        selinux: string(b, "selinux"),
    });
    let volume = sub(a, "volume").map(|v| VolumeOptions {
        nocopy: boolean(v, "nocopy"),
        subpath: string(v, "subpath"),
    });
    let image_subpath = sub(a, "image").and_then(|i| string(i, "subpath"));
    Ok(Mount {
        kind,
        source,
        read_only: boolean(a, "read_only"),
        tmpfs_size: size(
            service,
            &format!("volumes.{target}.tmpfs.size"),
            tmpfs.and_then(|t| string(t, "size")),
        )?,
        tmpfs_mode: file_mode(
            service,
            &format!("volumes.{target}.tmpfs.mode"),
            tmpfs.and_then(|t| get(t, "mode")),
        )?,
        bind: bind.filter(|b| *b != BindOptions::default()),
        volume: match (volume, image_subpath) {
            (v, Some(subpath)) => Some(VolumeOptions {
                subpath: Some(subpath),
                ..v.unwrap_or_default()
            }),
            (v, None) => v.filter(|v| *v != VolumeOptions::default()),
        },
        target,
    })
}

/// `tmpfs:`: one path or a list.
pub(super) fn tmpfs(svc: &Mapping) -> Vec<String> {
    strings(svc, "tmpfs")
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
    let mut read_only = false;
    let mut bind = BindOptions::default();
    let mut volume = VolumeOptions::default();
    for opt in mode.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" => bind.selinux = Some(opt.to_string()),
            "nocopy" => volume.nocopy = true,
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                bind.propagation = Some(opt.to_string())
            }
            other => {
                return Err(format!(
                    "invalid volume {spec:?}: unknown option {other:?} (ro, rw, z, Z, nocopy or a propagation)"
                ));
            }
        }
    }
    let (kind, source) = match source {
        None => (MountKind::Volume, None),
        Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => (
            MountKind::Bind,
            Some(resolve_path(dir, s, env).display().to_string()),
        ),
        Some(s) => (MountKind::Volume, Some(s.to_string())),
    };
    // Compose creates a missing bind source for the short syntax.
    let bind = (kind == MountKind::Bind && bind != BindOptions::default()).then_some(bind);
    let volume = (kind == MountKind::Volume && volume.nocopy).then_some(volume);
    Ok(Mount {
        kind,
        source,
        target: container_path(target),
        read_only,
        bind,
        volume,
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
