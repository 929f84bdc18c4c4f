//! Secrets and configs: bound or copied.
//!
//! A `file:` object whose reference asks for no `mode`, `uid` or `gid` is a
//! read-only bind mount of the host file (compose's way; the file may change
//! under a running container). Every other one is copied into the container
//! after it is created and before it starts, as a file with the reference's
//! mode (0444 unless given) and owner (0:0 unless given): a content-backed
//! object (`content:`, `environment:`) always, a `file:` object when the
//! reference sets `mode`, `uid` or `gid` (compose ignores them there, with a
//! warning). A copy needs a writable root file system: for a `read_only`
//! service a `file:` object stays a bind (its `mode`, `uid`, `gid` do not
//! apply) and a content-backed one is refused.

use std::path::Path;

use turtle_compose::{FileObject, FileRef, Project, Service};

use super::SpecError;

/// What a copied file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopiedSource<'a> {
    /// The object's content, as loaded.
    Content(&'a str),
    /// A host file, read when the container is created.
    File(&'a Path),
}

/// A secret or config copied into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedFile<'a> {
    /// `secret` or `config`, and its key, for messages.
    pub kind: &'static str,
    pub key: &'a str,
    /// Absolute path in the container.
    pub target: String,
    pub source: CopiedSource<'a>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// Mode of a copied file when the reference gives none (compose's).
pub const DEFAULT_MODE: u32 = 0o444;

/// One secret or config a service uses, with its top-level object.
struct Use<'a> {
    kind: &'static str,
    reference: &'a FileRef,
    object: &'a FileObject,
}

fn uses<'a>(
    project: &'a Project,
    service_name: &str,
    service: &'a Service,
) -> Result<Vec<Use<'a>>, SpecError> {
    let mut out = Vec::new();
    for r in &service.secrets {
        let object = project
            .secrets
            .get(&r.source)
            .ok_or_else(|| SpecError::UnknownSecret {
                service: service_name.to_string(),
                key: r.source.clone(),
            })?;
        out.push(Use {
            kind: "secret",
            reference: r,
            object,
        });
    }
    for r in &service.configs {
        let object = project
            .configs
            .get(&r.source)
            .ok_or_else(|| SpecError::UnknownConfig {
                service: service_name.to_string(),
                key: r.source.clone(),
            })?;
        out.push(Use {
            kind: "config",
            reference: r,
            object,
        });
    }
    if let Some(u) = out.iter().find(|u| u.object.external) {
        return Err(SpecError::Invalid {
            service: service_name.to_string(),
            message: format!(
                "{} {:?} is external, a swarm object one engine cannot provide (docker compose v2 refuses it too): declare it with file:, environment: or content:",
                u.kind, u.reference.source
            ),
        });
    }
    Ok(out)
}

/// Whether the object is copied rather than bound (see the module docs).
fn copied(service: &Service, u: &Use<'_>) -> bool {
    let r = u.reference;
    u.object.content.is_some()
        || (!service.read_only && (r.mode.is_some() || r.uid.is_some() || r.gid.is_some()))
}

/// The absolute target: a relative one is under `/run/secrets` (secrets)
/// or `/` (configs), as compose places them.
fn target(u: &Use<'_>) -> String {
    let t = &u.reference.target;
    match (t.starts_with('/'), u.kind) {
        (true, _) => t.clone(),
        (false, "secret") => format!("/run/secrets/{t}"),
        (false, _) => format!("/{t}"),
    }
}

/// Host files bind-mounted read-only: `(file, target)`.
pub(super) fn bound<'a>(
    project: &'a Project,
    service_name: &str,
    service: &'a Service,
) -> Result<Vec<(&'a Path, String)>, SpecError> {
    let mut out = Vec::new();
    for u in uses(project, service_name, service)? {
        if copied(service, &u) {
            continue;
        }
        let file = u.object.file.as_deref().ok_or_else(|| SpecError::Invalid {
            service: service_name.to_string(),
            message: format!(
                "{} {:?} has neither file: nor content: (nor environment:)",
                u.kind, u.reference.source
            ),
        })?;
        out.push((file, target(&u)));
    }
    Ok(out)
}

/// The secrets and configs copied into the service's containers, checked:
/// numeric owners, and no content-backed object in a `read_only` service.
pub fn copied_files<'a>(
    project: &'a Project,
    service_name: &str,
    service: &'a Service,
) -> Result<Vec<CopiedFile<'a>>, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
    let id = |u: &Use<'_>, what: &str, v: &Option<String>| -> Result<u64, SpecError> {
        match v {
            None => Ok(0),
            Some(v) => v.trim().parse().map_err(|_| {
                invalid(format!(
                    "{} {:?}: {what} {v:?} is not a number: the file is copied with numeric ids (look the user up in the image, e.g. `id -u postgres`)",
                    u.kind, u.reference.source
                ))
            }),
        }
    };
    let mut out = Vec::new();
    for u in uses(project, service_name, service)? {
        if !copied(service, &u) {
            continue;
        }
        if service.read_only {
            return Err(invalid(format!(
                "{} {:?} has its content in the compose file (content: or environment:), which is copied into the container, and the service is read_only: use file: instead, or drop read_only",
                u.kind, u.reference.source
            )));
        }
        let source = match (&u.object.content, &u.object.file) {
            (Some(c), _) => CopiedSource::Content(c),
            (None, Some(f)) => CopiedSource::File(f),
            (None, None) => unreachable!("copied() holds for content or file only"),
        };
        out.push(CopiedFile {
            kind: u.kind,
            key: &u.reference.source,
            target: target(&u),
            source,
            mode: u.reference.mode.unwrap_or(DEFAULT_MODE),
            uid: id(&u, "uid", &u.reference.uid)?,
            gid: id(&u, "gid", &u.reference.gid)?,
        });
    }
    Ok(out)
}
