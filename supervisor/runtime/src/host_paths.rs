//! The host side of a service's mounts, readied before its container is
//! created: compose creates a missing bind source for the short syntax (the
//! engine's `Mounts` API would refuse it), and a secret's or config's file
//! must exist. The only file-system work between planning and creating.

use std::path::Path;

use turtle_compose::{MountKind, Project, Service};
use turtle_reconcile::spec::SpecError;

/// Readies the host side of a service's mounts: creates every missing bind
/// source as a directory (compose does so for the short syntax; the engine's
/// `Mounts` API would refuse a missing path) unless the bind says
/// `create_host_path: false`, which refuses it, and checks that the files
/// behind its secrets and configs exist.
pub fn prepare_host_paths(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<(), SpecError> {
    let host_err = |path: &Path, message: String| SpecError::HostPath {
        service: service_name.to_string(),
        path: path.display().to_string(),
        message,
    };
    for m in &service.volumes {
        if m.kind != MountKind::Bind {
            continue;
        }
        let Some(src) = &m.source else { continue };
        let path = Path::new(src);
        if !path.is_absolute() {
            return Err(host_err(path, "bind source is not absolute".to_string()));
        }
        let create = m.bind.as_ref().and_then(|b| b.create_host_path) != Some(false);
        if !path.exists() && !create {
            return Err(host_err(
                path,
                "bind source does not exist and create_host_path is false: create it, or drop create_host_path"
                    .to_string(),
            ));
        }
        if !path.exists() {
            std::fs::create_dir_all(path)
                .map_err(|e| host_err(path, format!("cannot create bind source: {e}")))?;
        }
    }
    let files = service
        .secrets
        .iter()
        .map(|s| project.secrets.get(&s.source))
        .chain(
            service
                .configs
                .iter()
                .map(|c| project.configs.get(&c.source)),
        );
    for file in files.flatten().filter_map(|o| o.file.as_deref()) {
        if !file.is_file() {
            return Err(host_err(file, "file not found".to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use turtle_compose::{FileObject, FileRef, Mount};
    use turtle_reconcile::test_support::{project, service};

    use super::*;

    #[test]
    fn host_paths_are_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let bind = dir.path().join("a/b");
        let secret = dir.path().join("token.txt");
        let mut p = project("demo", vec![]);
        p.secrets.insert(
            "token".into(),
            FileObject {
                file: Some(secret.clone()),
                ..Default::default()
            },
        );
        let mut s = service("web:1");
        s.volumes = vec![Mount {
            kind: MountKind::Bind,
            source: Some(bind.display().to_string()),
            target: "/x".into(),
            read_only: false,
            tmpfs_size: None,
            ..Default::default()
        }];
        s.secrets = vec![FileRef {
            source: "token".into(),
            target: "/run/secrets/token".into(),
            mode: None,
            ..Default::default()
        }];
        let err = prepare_host_paths(&p, "web", &s).unwrap_err();
        assert!(matches!(err, SpecError::HostPath { .. }), "{err}");
        std::fs::write(&secret, "s3cret").unwrap();
        prepare_host_paths(&p, "web", &s).unwrap();
        assert!(bind.is_dir());

        // create_host_path: false refuses a missing source instead.
        let kept = dir.path().join("not/made");
        s.volumes[0].source = Some(kept.display().to_string());
        s.volumes[0].bind = Some(turtle_compose::BindOptions {
            create_host_path: Some(false),
            ..Default::default()
        });
        let err = prepare_host_paths(&p, "web", &s).unwrap_err();
        assert!(err.to_string().contains("create_host_path"), "{err}");
        assert!(!kept.exists());
        std::fs::create_dir_all(&kept).unwrap();
        prepare_host_paths(&p, "web", &s).unwrap();
    }
}
