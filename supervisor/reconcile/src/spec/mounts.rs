//! Mounts: named and anonymous volumes, binds, tmpfs, and the host files of
//! the secrets and configs that are bound rather than copied (see
//! [`super::files`]).

use std::collections::HashMap;
use std::path::Path;

use bollard_stubs::models::{
    Mount as EngineMount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions,
    MountType, MountVolumeOptions,
};
use turtle_compose::{Mount, MountKind, Project, Service};

use super::SpecError;

/// The service's mounts, in the order of the file: volumes, binds and tmpfs,
/// then secrets and configs.
pub(super) fn mounts(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<Vec<EngineMount>, SpecError> {
    let mut mounts = Vec::new();
    for m in &service.volumes {
        if selinux_bind(m).is_some() {
            // In `binds` instead: see [`binds`].
            continue;
        }
        mounts.push(service_mount(project, service_name, m)?);
    }
    for (file, target) in super::files::bound(project, service_name, service)? {
        mounts.push(file_mount(file, &target));
    }
    Ok(mounts)
}

/// One entry of the service's `volumes:` as the engine's `Mounts` take it.
fn service_mount(
    project: &Project,
    service_name: &str,
    m: &Mount,
) -> Result<EngineMount, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
    let read_only = m.read_only.then_some(true);
    Ok(match m.kind {
        MountKind::Volume => {
            let source = match &m.source {
                Some(key) => Some(
                    project
                        .volumes
                        .get(key)
                        .ok_or_else(|| SpecError::UnknownVolume {
                            service: service_name.to_string(),
                            key: key.clone(),
                        })?
                        .name
                        .clone(),
                ),
                None => None,
            };
            // `subpath` needs API 1.45: the engine adapter refuses it on
            // older engines.
            let volume_options = m
                .volume
                .as_ref()
                .filter(|v| v.nocopy || v.subpath.is_some())
                .map(|v| MountVolumeOptions {
                    no_copy: v.nocopy.then_some(true),
                    subpath: v.subpath.clone(),
                    ..Default::default()
                });
            EngineMount {
                typ: Some(MountType::VOLUME),
                source,
                target: Some(m.target.clone()),
                read_only,
                volume_options,
                ..Default::default()
            }
        }
        MountKind::Bind => {
            let propagation = m
                .bind
                .as_ref()
                .and_then(|b| b.propagation.as_deref())
                .map(|p| propagation(p).map_err(&invalid))
                .transpose()?;
            EngineMount {
                typ: Some(MountType::BIND),
                source: Some(
                    m.source.clone().ok_or_else(|| {
                        invalid(format!("bind mount at {} has no source", m.target))
                    })?,
                ),
                target: Some(m.target.clone()),
                read_only,
                bind_options: propagation.map(|p| MountBindOptions {
                    propagation: Some(p),
                    ..Default::default()
                }),
                ..Default::default()
            }
        }
        // API 1.47+: the engine adapter refuses it on older engines.
        MountKind::Image => EngineMount {
            typ: Some(MountType::IMAGE),
            source: Some(m.source.clone().ok_or_else(|| {
                invalid(format!(
                    "image mount at {} has no source: name the image",
                    m.target
                ))
            })?),
            target: Some(m.target.clone()),
            read_only,
            ..Default::default()
        },
        MountKind::Npipe => {
            return Err(invalid(format!(
                "{}: npipe mounts are Windows named pipes, which a Linux engine cannot mount: remove it",
                m.target
            )));
        }
        MountKind::Tmpfs => EngineMount {
            typ: Some(MountType::TMPFS),
            target: Some(m.target.clone()),
            read_only,
            tmpfs_options: (m.tmpfs_size.is_some() || m.tmpfs_mode.is_some()).then(|| {
                MountTmpfsOptions {
                    size_bytes: m.tmpfs_size.map(|s| s.0 as i64),
                    mode: m.tmpfs_mode.map(i64::from),
                    ..Default::default()
                }
            }),
            ..Default::default()
        },
    })
}

/// The SELinux label of a bind mount that asks for one.
fn selinux_bind(m: &Mount) -> Option<&str> {
    if m.kind != MountKind::Bind {
        return None;
    }
    m.bind.as_ref()?.selinux.as_deref()
}

/// `HostConfig.Binds`: the bind mounts with an SELinux label (`z`, `Z`),
/// which the engine's `Mounts` cannot carry, in the legacy
/// `SOURCE:TARGET:OPTIONS` form compose falls back to for them (with the
/// propagation too, which compose would drop).
pub(super) fn binds(service_name: &str, service: &Service) -> Result<Vec<String>, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
    let mut binds = Vec::new();
    for m in &service.volumes {
        let Some(label) = selinux_bind(m) else {
            continue;
        };
        if !matches!(label, "z" | "Z") {
            return Err(invalid(format!(
                "{}: invalid bind selinux {label:?}: expected z (shared) or Z (private)",
                m.target
            )));
        }
        let source = m
            .source
            .as_deref()
            .ok_or_else(|| invalid(format!("bind mount at {} has no source", m.target)))?;
        if source.contains(':') || m.target.contains(':') {
            return Err(invalid(format!(
                "{}: a bind with an SELinux label cannot have ':' in its paths (the engine takes it as SOURCE:TARGET:OPTIONS)",
                m.target
            )));
        }
        let mut options = vec![if m.read_only { "ro" } else { "rw" }, label];
        if let Some(p) = m.bind.as_ref().and_then(|b| b.propagation.as_deref()) {
            propagation(p).map_err(&invalid)?;
            options.push(p);
        }
        binds.push(format!("{source}:{}:{}", m.target, options.join(",")));
    }
    Ok(binds)
}

fn propagation(p: &str) -> Result<MountBindOptionsPropagationEnum, String> {
    use MountBindOptionsPropagationEnum as P;
    Ok(match p {
        "private" => P::PRIVATE,
        "rprivate" => P::RPRIVATE,
        "shared" => P::SHARED,
        "rshared" => P::RSHARED,
        "slave" => P::SLAVE,
        "rslave" => P::RSLAVE,
        _ => {
            return Err(format!(
                "invalid bind propagation {p:?}: expected private, rprivate, shared, rshared, slave or rslave"
            ));
        }
    })
}

/// `tmpfs:` entries (`PATH[:OPTIONS]`) as the engine's map.
pub(super) fn tmpfs(service: &Service) -> HashMap<String, String> {
    service
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), opts.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect()
}

fn file_mount(file: &Path, target: &str) -> EngineMount {
    EngineMount {
        typ: Some(MountType::BIND),
        source: Some(file.display().to_string()),
        target: Some(target.to_string()),
        read_only: Some(true),
        ..Default::default()
    }
}
