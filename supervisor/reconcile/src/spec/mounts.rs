//! Mounts: named and anonymous volumes, binds, tmpfs, and the host files of
//! the secrets and configs that are bound rather than copied (see
//! [`super::files`]).

use std::collections::HashMap;
use std::path::Path;

use bollard_stubs::models::{Mount as EngineMount, MountTmpfsOptions, MountType};
use turtle_compose::{MountKind, Project, Service};

use super::SpecError;

/// The service's mounts, in the order of the file: volumes, binds and tmpfs,
/// then secrets and configs.
pub(super) fn mounts(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<Vec<EngineMount>, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
    let mut mounts = Vec::new();
    for m in &service.volumes {
        let mount =
            match m.kind {
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
                    EngineMount {
                        typ: Some(MountType::VOLUME),
                        source,
                        target: Some(m.target.clone()),
                        read_only: m.read_only.then_some(true),
                        ..Default::default()
                    }
                }
                MountKind::Bind => EngineMount {
                    typ: Some(MountType::BIND),
                    source: Some(m.source.clone().ok_or_else(|| {
                        invalid(format!("bind mount at {} has no source", m.target))
                    })?),
                    target: Some(m.target.clone()),
                    read_only: m.read_only.then_some(true),
                    ..Default::default()
                },
                MountKind::Image | MountKind::Npipe => {
                    return Err(invalid(format!(
                        "{}: {:?} mounts are not carried to the engine yet",
                        m.target, m.kind
                    )));
                }
                MountKind::Tmpfs => EngineMount {
                    typ: Some(MountType::TMPFS),
                    target: Some(m.target.clone()),
                    read_only: m.read_only.then_some(true),
                    tmpfs_options: m.tmpfs_size.map(|s| MountTmpfsOptions {
                        size_bytes: Some(s.0 as i64),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            };
        mounts.push(mount);
    }
    for (file, target) in super::files::bound(project, service_name, service)? {
        mounts.push(file_mount(file, &target));
    }
    Ok(mounts)
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
