//! Images on the engine: pull, build (classic builder, context streamed by
//! [`super::context`]), tag, import a root filesystem, load and save
//! `docker save` archives, list (each image inspected for its layers).

use std::path::Path;
use std::time::{Duration, SystemTime};

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    BuildImageOptions, BuildImageOptionsBuilder, BuilderVersion, CreateImageOptionsBuilder,
    ImportImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::context::{self, BuildContext, ContextError};
use super::{BUILD_TIMEOUT_SECS, Docker, map_error, split_reference};
use crate::errors::{error_chain, is_connection_error};
use crate::{BoxStream, BuildSpec, EngineError, Progress, Result};

impl Docker {
    /// The image's `LastTagTime` when the engine recorded one (a build, a
    /// tag), else its `Created` time.
    pub(super) async fn refreshed_at(&self, reference: &str) -> Result<Option<SystemTime>> {
        match self.client.inspect_image(reference).await {
            Ok(i) => Ok(i
                .metadata
                .and_then(|m| m.last_tag_time)
                .and_then(|t| rfc3339(&t))
                .or_else(|| i.created.and_then(|t| rfc3339(&t)))
                .or(Some(SystemTime::UNIX_EPOCH))),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(map_error(&self.socket, format!("image {reference}"), e)),
        }
    }

    pub(super) async fn image_info(&self, reference: &str) -> Result<Option<crate::ImageInfo>> {
        match self.client.inspect_image(reference).await {
            Ok(i) => Ok(Some(crate::ImageInfo {
                id: i.id.unwrap_or_default(),
                repo_tags: i.repo_tags.unwrap_or_default(),
                repo_digests: i.repo_digests.unwrap_or_default(),
                layers: i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                size: i.size.unwrap_or_default().max(0) as u64,
            })),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(map_error(&self.socket, format!("image {reference}"), e)),
        }
    }

    /// The top-level images (`all=false`: not the classic builder's
    /// intermediate images, whose layers their children hold anyway), each
    /// inspected: the list does not carry layers.
    pub(super) async fn images_inspected(&self) -> Result<Vec<crate::ImageInfo>> {
        let opts = bollard::query_parameters::ListImagesOptionsBuilder::new()
            .all(false)
            .build();
        let list = self
            .client
            .list_images(Some(opts))
            .await
            .map_err(|e| map_error(&self.socket, "image list".to_string(), e))?;
        let mut out = Vec::with_capacity(list.len());
        for summary in list {
            if let Some(info) = self.image_info(&summary.id).await? {
                out.push(info);
            }
        }
        Ok(out)
    }

    pub(super) async fn remove(&self, reference: &str) -> Result<()> {
        let opts = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .force(false)
            .noprune(false)
            .build();
        self.client
            .remove_image(reference, Some(opts), None)
            .await
            .map(|_| ())
            .map_err(|e| map_error(&self.socket, format!("image {reference}"), e))
    }

    pub(super) fn pull(&self, reference: &str) -> BoxStream<Result<Progress>> {
        let (from_image, tag) = split_reference(reference);
        let opts = CreateImageOptionsBuilder::new()
            .from_image(&from_image)
            .tag(&tag)
            .build();
        let socket = self.socket.clone();
        let what = format!("image {reference}");
        let mut failed = false;
        let credentials = self.auth_for(reference);
        let stream = self
            .client
            .create_image(Some(opts), None, credentials)
            .map(move |item| match item {
                Ok(info) => Ok(Progress::Layer {
                    id: info.id.unwrap_or_default(),
                    status: info.status.unwrap_or_default(),
                    current: info
                        .progress_detail
                        .as_ref()
                        .and_then(|p| p.current)
                        .map(|c| c.max(0) as u64),
                    total: info
                        .progress_detail
                        .as_ref()
                        .and_then(|p| p.total)
                        .map(|t| t.max(0) as u64),
                }),
                Err(BollardError::DockerStreamError { error }) => Err(EngineError::Other {
                    what: format!("pull of {what}"),
                    message: error,
                }),
                Err(e) => Err(map_error(&socket, what.clone(), e)),
            })
            // The stream ends at the first error.
            .take_while(move |item| {
                let go = !failed;
                failed |= item.is_err();
                std::future::ready(go)
            });
        Box::pin(stream)
    }

    pub(super) fn build(&self, spec: &BuildSpec) -> BoxStream<Result<Progress>> {
        let client = self
            .client
            .clone()
            .with_timeout(Duration::from_secs(BUILD_TIMEOUT_SECS));
        let socket = self.socket.clone();
        let spec = spec.clone();
        // bollard's build stream borrows the client: run it in a task that
        // owns the client, feeding a channel. The task starts on first poll.
        let stream = futures_util::stream::once(async move {
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            tokio::spawn(run_build(client, socket, spec, tx));
            tokio_stream::wrappers::ReceiverStream::new(rx)
        })
        .flatten();
        Box::pin(stream)
    }

    pub(super) async fn tag(&self, source: &str, target: &str) -> Result<()> {
        let (repo, tag) = split_reference(target);
        let opts = TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build();
        self.client
            .tag_image(source, Some(opts))
            .await
            .map_err(|e| map_error(&self.socket, format!("tag {source} as {target}"), e))
    }

    pub(super) async fn import(
        &self,
        tarball: &Path,
        reference: &str,
        changes: &[String],
    ) -> Result<()> {
        let what = format!("import of {reference} from {}", tarball.display());
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|e| EngineError::Other {
                what: what.clone(),
                message: e.to_string(),
            })?;
        let (repo, tag) = split_reference(reference);
        let mut opts = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(&repo)
            .tag(&tag)
            .message("imported by turtle");
        if !changes.is_empty() {
            opts = opts.changes(changes.to_vec());
        }
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
        let mut stream = self
            .client
            .clone()
            .with_timeout(Duration::from_secs(BUILD_TIMEOUT_SECS))
            .create_image(Some(opts.build()), Some(body), None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => {}
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(EngineError::Other {
                        what,
                        message: error,
                    });
                }
                Err(e) => return Err(map_error(&self.socket, what, e)),
            }
        }
        Ok(())
    }

    pub(super) async fn load(&self, archive: &Path) -> Result<()> {
        let what = format!("load of {}", archive.display());
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(|e| EngineError::Other {
                what: what.clone(),
                message: e.to_string(),
            })?;
        let chunks = tokio_util::io::ReaderStream::new(file).map(|c| c.map(Vec::from));
        self.load_stream(what, Box::pin(chunks)).await
    }

    /// Sends a `docker save` archive to the engine's load; an error in
    /// `archive` aborts the request body, and the engine loads nothing.
    pub(super) async fn load_stream(
        &self,
        what: String,
        archive: BoxStream<std::io::Result<Vec<u8>>>,
    ) -> Result<()> {
        let opts = ImportImageOptionsBuilder::new().quiet(true).build();
        let body = archive.map(|c| c.map(bytes::Bytes::from));
        let mut stream = self
            .client
            .clone()
            .with_timeout(Duration::from_secs(BUILD_TIMEOUT_SECS))
            .import_image_stream(opts, body, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) if info.error_detail.is_some() => {
                    return Err(EngineError::Other {
                        what,
                        message: info
                            .error_detail
                            .and_then(|d| d.message)
                            .unwrap_or_default(),
                    });
                }
                Ok(_) => {}
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(EngineError::Other {
                        what,
                        message: error,
                    });
                }
                Err(e) => return Err(map_error(&self.socket, what, e)),
            }
        }
        Ok(())
    }

    /// `docker save` of `references`, as the engine streams it.
    pub(super) fn save(&self, references: &[String]) -> BoxStream<Result<Vec<u8>>> {
        let what = format!("save of {}", references.join(", "));
        let names: Vec<&str> = references.iter().map(String::as_str).collect();
        let socket = self.socket.clone();
        let stream = self
            .client
            .clone()
            .with_timeout(Duration::from_secs(BUILD_TIMEOUT_SECS))
            .export_images(&names)
            .map(move |item| match item {
                Ok(chunk) => Ok(Vec::from(chunk)),
                Err(e) => Err(map_error(&socket, what.clone(), e)),
            });
        Box::pin(stream)
    }
}

/// How long a finished request waits for its tar thread to report: it ends
/// as soon as the body it feeds is gone.
const TAR_REPORT_SECS: u64 = 10;

/// Streams the context, runs the build, forwards its output to `tx`.
async fn run_build(
    client: bollard::Docker,
    socket: String,
    spec: BuildSpec,
    tx: tokio::sync::mpsc::Sender<Result<Progress>>,
) {
    let image = spec.tag.clone();
    let fail = |message: String| EngineError::Build {
        image: image.clone(),
        message,
    };
    let unreadable = |e: &ContextError| {
        fail(format!(
            "cannot read the build context {}: {e}",
            spec.context.display()
        ))
    };
    let (context, dockerfile, files, inline) = (
        spec.context.clone(),
        spec.dockerfile.clone(),
        spec.files.clone(),
        spec.dockerfile_inline.clone(),
    );
    let checked = tokio::task::spawn_blocking(move || {
        let c = BuildContext::new(&context, &dockerfile, &files)?;
        match inline {
            Some(text) => c.with_inline_dockerfile(text),
            None => Ok(c),
        }
    })
    .await;
    let build_context = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let _ = tx.send(Err(unreadable(&e))).await;
            return;
        }
        Err(e) => {
            let _ = tx.send(Err(fail(format!("tar task failed: {e}")))).await;
            return;
        }
    };
    let opts = match options(&spec, build_context.dockerfile()) {
        Ok(o) => o,
        Err(message) => {
            let _ = tx.send(Err(fail(message))).await;
            return;
        }
    };
    let (body, tarring) = context::stream(build_context);
    let mut stream = client.build_image(opts, None, Some(bollard::body_try_stream(body)));
    let mut failed = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                let text = info.stream.or(info.status).unwrap_or_default();
                let lines = text
                    .lines()
                    .map(|l| l.trim_end_matches('\r'))
                    .filter(|l| !l.trim().is_empty());
                for l in lines {
                    if tx.send(Ok(Progress::Log(l.to_string()))).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // The request is over (its body with it, which ends the tar thread).
    drop(stream);
    // A context that could not be read aborted the request: the file is the
    // cause, whatever the request's error says. A request that ended well
    // read the whole body, which a failed tar would have cut short; checked
    // all the same.
    let error = match (tar_failure(tarring).await, failed) {
        (Some(cause), _) => unreadable(&cause),
        (None, Some(e)) => build_error(&socket, &image, e),
        (None, None) => match tag_more(&client, &socket, &spec).await {
            Ok(()) => return,
            Err(e) => e,
        },
    };
    let _ = tx.send(Err(error)).await;
}

/// The query of the build request (the classic builder's options).
fn options(spec: &BuildSpec, dockerfile: &str) -> std::result::Result<BuildImageOptions, String> {
    let mut opts = BuildImageOptionsBuilder::new()
        .t(&spec.tag)
        .dockerfile(dockerfile)
        .buildargs(&spec.args)
        .labels(&spec.labels)
        .rm(true)
        .forcerm(true)
        .nocache(spec.no_cache)
        // The classic builder: the target machines have no BuildKit.
        .version(BuilderVersion::BuilderV1);
    if let Some(t) = &spec.target {
        opts = opts.target(t);
    }
    if !spec.cache_from.is_empty() {
        opts = opts.cachefrom(&spec.cache_from);
    }
    match spec.extra_hosts.as_slice() {
        [] => {}
        [one] => opts = opts.extrahosts(one),
        more => {
            return Err(format!(
                "build extra_hosts has {} entries, and turtle can send the engine only one (bollard's build options take a single extrahosts): keep one, or add the others with RUN echo >> /etc/hosts",
                more.len()
            ));
        }
    }
    if let Some(n) = &spec.network {
        opts = opts.networkmode(n);
    }
    if let Some(size) = spec.shm_size {
        let size = i32::try_from(size).map_err(|_| {
            format!("build shm_size {size} is too large: the engine's build takes at most 2 GiB - 1 byte")
        })?;
        opts = opts.shmsize(size);
    }
    if spec.pull {
        opts = opts.pull("1");
    }
    Ok(opts.build())
}

/// Gives the built image its extra tags.
async fn tag_more(client: &bollard::Docker, socket: &str, spec: &BuildSpec) -> Result<()> {
    for extra in &spec.extra_tags {
        let (repo, tag) = split_reference(extra);
        let opts = TagImageOptionsBuilder::new().repo(&repo).tag(&tag).build();
        client
            .tag_image(&spec.tag, Some(opts))
            .await
            .map_err(|e| map_error(socket, format!("tag {} as {extra}", spec.tag), e))?;
    }
    Ok(())
}

/// What the tar thread failed with, once it is done; `None` when it sent the
/// whole context, or stopped only because the request went away.
async fn tar_failure(
    task: tokio::task::JoinHandle<std::result::Result<(), ContextError>>,
) -> Option<ContextError> {
    match tokio::time::timeout(Duration::from_secs(TAR_REPORT_SECS), task).await {
        Ok(Ok(Ok(()) | Err(ContextError::Send(_)))) | Err(_) => None,
        Ok(Ok(Err(e))) => Some(e),
        Ok(Err(e)) => Some(ContextError::Send(std::io::Error::other(format!(
            "tar task failed: {e}"
        )))),
    }
}

/// The error a failed build request reads as.
fn build_error(socket: &str, image: &str, e: BollardError) -> EngineError {
    let fail = |message: String| EngineError::Build {
        image: image.to_string(),
        message,
    };
    match e {
        BollardError::DockerStreamError { error } => fail(error),
        e if is_connection_error(&e) => map_error(socket, format!("image build {image}"), e),
        BollardError::DockerResponseServerError { message, .. } => fail(message),
        e => fail(error_chain(&e)),
    }
}

/// An RFC 3339 time as the engine writes it; the zero time it writes for
/// "never" (`0001-01-01T00:00:00Z`) and anything before 1970 are `None`.
fn rfc3339(s: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let secs = u64::try_from(t.unix_timestamp()).ok().filter(|s| *s > 0)?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, t.nanosecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_options_carry_the_spec() {
        let spec = BuildSpec {
            tag: "p-web:latest".into(),
            cache_from: vec!["p-web:cache".into()],
            extra_hosts: vec!["mirror:10.0.0.5".into()],
            network: Some("host".into()),
            shm_size: Some(64 << 20),
            no_cache: true,
            pull: true,
            ..Default::default()
        };
        let o = options(&spec, "Dockerfile").unwrap();
        assert_eq!(o.t.as_deref(), Some("p-web:latest"));
        assert_eq!(o.cachefrom, Some(vec!["p-web:cache".to_string()]));
        assert_eq!(o.extrahosts.as_deref(), Some("mirror:10.0.0.5"));
        assert_eq!(o.networkmode.as_deref(), Some("host"));
        assert_eq!(o.shmsize, Some(64 << 20));
        assert!(o.nocache);
        assert_eq!(o.pull.as_deref(), Some("1"));

        let plain = options(&BuildSpec::default(), "Dockerfile").unwrap();
        assert_eq!(
            (plain.cachefrom, plain.extrahosts, plain.pull, plain.nocache),
            (None, None, None, false)
        );

        let two = BuildSpec {
            extra_hosts: vec!["a:10.0.0.1".into(), "b:10.0.0.2".into()],
            ..Default::default()
        };
        let e = options(&two, "Dockerfile").unwrap_err();
        assert!(e.contains("2 entries"), "{e}");
        let huge = BuildSpec {
            shm_size: Some(4 << 30),
            ..Default::default()
        };
        assert!(
            options(&huge, "Dockerfile")
                .unwrap_err()
                .contains("shm_size")
        );
    }
}
