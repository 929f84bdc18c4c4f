//! Secrets and configs copied into a container after it is created and
//! before it starts: content-backed ones, and `file:` ones whose reference
//! asks for a mode or owner (which of them, and how, is
//! [`turtle_reconcile::spec::files`]'s pure rule). This is docker compose
//! v2's way for content-backed objects (the archive API, with the mode and
//! owner in the tar entry), so the content is never written on the host by
//! Turtle; it lives in the container's own layer, like compose's.

use turtle_compose::{Project, Service};
use turtle_engine::FileUpload;
use turtle_reconcile::spec::{CopiedSource, SpecError, copied_files};

/// The files to write into a container of `service`; a `file:` object's
/// host file is read now.
pub fn uploads(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<Vec<FileUpload>, SpecError> {
    copied_files(project, service_name, service)?
        .into_iter()
        .map(|f| {
            let content = match f.source {
                CopiedSource::Content(c) => c.as_bytes().to_vec(),
                CopiedSource::File(path) => {
                    std::fs::read(path).map_err(|e| SpecError::HostPath {
                        service: service_name.to_string(),
                        path: path.display().to_string(),
                        message: format!("cannot read the {} {:?}: {e}", f.kind, f.key),
                    })?
                }
            };
            Ok(FileUpload {
                path: f.target,
                content,
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
            })
        })
        .collect()
}
