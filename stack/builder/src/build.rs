//! One build job: wait for a slot, build with the engine, tag, push, report.
//!
//! The job runs in its own task and talks to the client only through a
//! channel of [`Line`]s, which the HTTP layer streams as NDJSON. Steps:
//!
//! 1. **Slot.** The job comes with its build slot, taken by the request before
//!    its context was read (see [`crate::slots`]), and holds it to the end.
//! 2. **Build.** The spooled context goes to the engine's `/build` as it came,
//!    with the classic builder (Docker 20.10 has no BuildKit here), tagged
//!    with the first requested reference. The engine's output becomes log
//!    lines; an `errorDetail` in its stream (a bad Dockerfile, a failing
//!    `RUN`) ends the job with the engine's message. The registry's
//!    credentials go along (X-Registry-Config), so a `FROM` of an image in
//!    our own registry can be pulled.
//! 3. **Tag.** The built image (by ID) gets every further requested reference.
//! 4. **Push.** Each reference is pushed with X-Registry-Auth
//!    `{username: --push-user, password: builder token, serveraddress:
//!    registry}`; the engine does the registry's token dance with the api
//!    itself. The manifest digest comes from the push stream's last status,
//!    `<tag>: digest: sha256:<hex> size: <n>` (bollard's model drops the
//!    `aux` object that carries it too).
//! 5. **Clean up.** With `--keep-local false` the local tags are removed
//!    (success or not), and with them the image unless something else uses it.
//! 6. **Report**: one final line, the digest and every pushed repository
//!    pinned by its digest, or the error.
//!
//! A client that goes away (the channel closes) stops the job: dropping the
//! engine's build stream closes its connection, which cancels the build.
//!
//! # Limitations
//!
//! - References are engine-global: two jobs running at once (`--max-builds`
//!   above 1) that build the same reference race for its tag, and one may push
//!   the other's image. The default of one build at a time avoids it.
//! - With several references, `digest` is the first one's; each entry of
//!   `images` carries its own repository's digest (they are equal unless the
//!   registry re-compressed a layer).

use std::collections::HashMap;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::ProgressDetail;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, PushImageOptionsBuilder, RemoveImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::engine::{BUILD_TIMEOUT_SECS, Engine};
use crate::ndjson::{Line, log_lines};
use crate::reference::{ImageRef, Registry};
use crate::slots::{Slot, Slots};
use crate::spool::Context;

/// What a job needs that outlives it: the engine, where and as whom to push,
/// and the build slots.
#[derive(Debug)]
pub struct Builder {
    engine: Engine,
    registry: Registry,
    push_user: String,
    push_password: String,
    keep_local: bool,
    slots: Slots,
}

/// One requested build.
#[derive(Debug)]
pub struct Job {
    /// The references to push, at least one; the first is the build's tag.
    pub refs: Vec<ImageRef>,
    /// The Dockerfile's path in the context (the engine's default,
    /// `Dockerfile`, when `None`).
    pub dockerfile: Option<String>,
    /// The build context.
    pub context: Context,
    /// The build slot, held until the job ends.
    pub slot: Slot,
}

/// The client went away: nobody is left to report to.
#[derive(Debug)]
pub struct Gone;

/// Why a job failed (its message is the final `{"error"}` line).
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("client went away")]
    Gone,
    #[error("{0}")]
    Engine(String),
    #[error("build failed: {0}")]
    Build(String),
    #[error("tagging the image as {reference} failed: {message}")]
    Tag { reference: String, message: String },
    #[error("push of {reference} failed: {message}{hint}")]
    Push {
        reference: String,
        message: String,
        hint: &'static str,
    },
    #[error(
        "the engine pushed {reference} without reporting the manifest digest: \
         see `docker push` of it on the box"
    )]
    NoDigest { reference: String },
}

impl From<Gone> for JobError {
    fn from(_: Gone) -> JobError {
        JobError::Gone
    }
}

/// Sends a line; [`Gone`] when the client has left.
pub async fn send(tx: &mpsc::Sender<Line>, line: Line) -> Result<(), Gone> {
    tx.send(line).await.map_err(|_| Gone)
}

impl Builder {
    /// A builder pushing to `registry` as `push_user` with `push_password`.
    pub fn new(
        engine: Engine,
        registry: Registry,
        push_user: String,
        push_password: String,
        slots: Slots,
        keep_local: bool,
    ) -> Builder {
        Builder {
            engine,
            registry,
            push_user,
            push_password,
            keep_local,
            slots,
        }
    }

    /// The build slots requests take before their context is read.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// The engine this builder drives.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The registry images are pushed to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs `job`, streaming its lines to `tx`; the last line is final unless
    /// the client went away.
    pub async fn run(&self, job: Job, tx: mpsc::Sender<Line>) {
        let names: Vec<String> = job.refs.iter().map(ImageRef::full).collect();
        let outcome = self.work(job, &tx).await;
        let last = match outcome {
            Ok(done) => {
                if let Line::Done { digest, .. } = &done {
                    tracing::info!(images = ?names, %digest, "pushed");
                }
                done
            }
            Err(JobError::Gone) => {
                tracing::info!(images = ?names, "client went away; build stopped");
                return;
            }
            Err(e) => {
                tracing::warn!(images = ?names, error = %e, "build failed");
                Line::error(e.to_string())
            }
        };
        let _ = send(&tx, last).await;
    }

    async fn work(&self, job: Job, tx: &mpsc::Sender<Line>) -> Result<Line, JobError> {
        let Job {
            refs,
            dockerfile,
            context,
            slot: _slot,
        } = job;
        self.engine.ready().await.map_err(JobError::Engine)?;
        let names: Vec<String> = refs.iter().map(ImageRef::full).collect();
        send(
            tx,
            Line::log(format!(
                "building {} from a {} byte context",
                names.join(", "),
                context.len()
            )),
        )
        .await?;
        let id = self
            .build(&refs[0], dockerfile.as_deref(), context, tx)
            .await?;
        let pushed = self.tag_and_push(&id, &refs, tx).await;
        // Once built, the local tags go whatever happened next (even when
        // the client left), unless they are to be kept.
        if !self.keep_local {
            self.untag(&refs, tx).await;
        }
        let digests = pushed?;
        let digest = digests[0].clone();
        let mut images: Vec<String> = Vec::new();
        for (r, d) in refs.iter().zip(&digests) {
            let pinned = r.pinned(d);
            if !images.contains(&pinned) {
                images.push(pinned);
            }
        }
        Ok(Line::Done { digest, images })
    }

    fn credentials(&self) -> DockerCredentials {
        DockerCredentials {
            username: Some(self.push_user.clone()),
            password: Some(self.push_password.clone()),
            serveraddress: Some(self.registry.to_string()),
            ..Default::default()
        }
    }

    /// Builds the context tagged with the first reference; returns the image ID.
    async fn build(
        &self,
        tag: &ImageRef,
        dockerfile: Option<&str>,
        context: Context,
        tx: &mpsc::Sender<Line>,
    ) -> Result<String, JobError> {
        let first = tag.full();
        let mut opts = BuildImageOptionsBuilder::new()
            .t(&first)
            .rm(true)
            .forcerm(true)
            // The classic builder: the target engines have no BuildKit.
            .version(BuilderVersion::BuilderV1);
        if let Some(d) = dockerfile {
            opts = opts.dockerfile(d);
        }
        let client = self
            .engine
            .client()
            .clone()
            .with_timeout(Duration::from_secs(BUILD_TIMEOUT_SECS));
        let registry_config = HashMap::from([(self.registry.to_string(), self.credentials())]);
        let mut stream = client.build_image(
            opts.build(),
            Some(registry_config),
            Some(bollard::body_try_stream(context.into_stream())),
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = &info.stream {
                        for line in log_lines(text) {
                            send(tx, line).await?;
                        }
                    }
                    if let Some(line) = status_line(
                        info.id.as_deref(),
                        info.status.as_deref(),
                        info.progress_detail.as_ref(),
                    ) {
                        send(tx, line).await?;
                    }
                }
                Err(e) => return Err(self.build_error(&e)),
            }
        }
        drop(stream);
        let image = self
            .engine
            .client()
            .inspect_image(&first)
            .await
            .map_err(|e| {
                JobError::Engine(format!(
                    "the build ended but its image {first} cannot be inspected: {}",
                    self.engine.describe("image inspect", &e)
                ))
            })?;
        image.id.ok_or_else(|| {
            JobError::Engine(format!(
                "the engine reports no ID for the built image {first}"
            ))
        })
    }

    fn build_error(&self, e: &BollardError) -> JobError {
        match e {
            // What the build itself reported: a bad Dockerfile, a failing step.
            BollardError::DockerStreamError { error } => JobError::Build(error.clone()),
            BollardError::DockerResponseServerError { message, .. } => {
                JobError::Build(message.clone())
            }
            e => JobError::Engine(self.engine.describe("image build", e)),
        }
    }

    /// Tags the image `id` with every reference but the first (the build's
    /// own), pushes all, returns their digests in order.
    async fn tag_and_push(
        &self,
        id: &str,
        refs: &[ImageRef],
        tx: &mpsc::Sender<Line>,
    ) -> Result<Vec<String>, JobError> {
        for r in &refs[1..] {
            let opts = TagImageOptionsBuilder::new()
                .repo(&r.repository())
                .tag(r.tag())
                .build();
            self.engine
                .client()
                .tag_image(id, Some(opts))
                .await
                .map_err(|e| JobError::Tag {
                    reference: r.full(),
                    message: self.engine.describe("image tag", &e),
                })?;
        }
        let mut digests = Vec::with_capacity(refs.len());
        for r in refs {
            digests.push(self.push(r, tx).await?);
        }
        Ok(digests)
    }

    /// Pushes one reference; returns the manifest digest the engine reported.
    async fn push(&self, r: &ImageRef, tx: &mpsc::Sender<Line>) -> Result<String, JobError> {
        send(tx, Line::log(format!("pushing {r}"))).await?;
        let opts = PushImageOptionsBuilder::new().tag(r.tag()).build();
        let mut stream =
            self.engine
                .client()
                .push_image(&r.repository(), Some(opts), Some(self.credentials()));
        let mut digest = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(d) = info.status.as_deref().and_then(digest_in_status) {
                        digest = Some(d);
                    }
                    if let Some(line) =
                        status_line(None, info.status.as_deref(), info.progress_detail.as_ref())
                    {
                        send(tx, line).await?;
                    }
                }
                Err(e) => {
                    let message = self.engine.describe("image push", &e);
                    let hint = push_hint(&message);
                    return Err(JobError::Push {
                        reference: r.full(),
                        message,
                        hint,
                    });
                }
            }
        }
        digest.ok_or_else(|| JobError::NoDigest {
            reference: r.full(),
        })
    }

    /// Removes the local tags (`--keep-local false`); failures become log lines.
    async fn untag(&self, refs: &[ImageRef], tx: &mpsc::Sender<Line>) {
        for r in refs {
            let opts = RemoveImageOptionsBuilder::new().build();
            let line = match self
                .engine
                .client()
                .remove_image(&r.full(), Some(opts), None)
                .await
            {
                Ok(_) => Line::log(format!("removed the local tag {r}")),
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => continue,
                Err(e) => Line::log(format!(
                    "could not remove the local tag {r}: {}",
                    self.engine.describe("image remove", &e)
                )),
            };
            if send(tx, line).await.is_err() {
                // Keep cleaning up even when nobody listens.
                continue;
            }
        }
    }
}

/// A log line for an engine status, or `None` for progress noise (layer
/// progress bars, "Waiting", "Preparing").
fn status_line(
    id: Option<&str>,
    status: Option<&str>,
    progress: Option<&ProgressDetail>,
) -> Option<Line> {
    let status = status?.trim();
    if status.is_empty() {
        return None;
    }
    if progress.is_some_and(|p| p.current.is_some() || p.total.is_some()) {
        return None;
    }
    const NOISE: [&str; 5] = [
        "Preparing",
        "Waiting",
        "Pulling fs layer",
        "Verifying Checksum",
        "Download complete",
    ];
    if NOISE.contains(&status) {
        return None;
    }
    Some(match id {
        Some(id) if !id.is_empty() => Line::log(format!("{id}: {status}")),
        _ => Line::log(status),
    })
}

/// The digest in a push's last status, `<tag>: digest: sha256:<hex> size: <n>`.
pub fn digest_in_status(status: &str) -> Option<String> {
    let start = status.find("digest: ")? + "digest: ".len();
    let rest = &status[start..];
    let hex = rest.strip_prefix("sha256:")?;
    let hex: String = hex.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (hex.len() == 64 && hex.chars().all(|c| !c.is_ascii_uppercase()))
        .then(|| format!("sha256:{hex}"))
}

/// A hint for common push failures.
fn push_hint(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("unauthorized") || m.contains("authentication required") || m.contains("denied") {
        " (the registry refused the builder's credentials: check that the api's \
         --builder-token-file holds the same token as the builder's --token-file)"
    } else if m.contains("http response to https client") {
        " (the registry speaks plain HTTP: reach it through the proxy's HTTPS name, or list it \
         in the engine's insecure-registries)"
    } else if m.contains("x509") || m.contains("certificate") {
        " (the engine does not trust the registry's certificate: install Turtle's root in \
         /etc/docker/certs.d/<registry>/ca.crt on the box)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_comes_from_the_last_push_status() {
        let hex = "4f".repeat(32);
        assert_eq!(
            digest_in_status(&format!("1.0: digest: sha256:{hex} size: 528")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_in_status(&format!("latest: digest: sha256:{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_in_status("Pushed"), None);
        assert_eq!(digest_in_status("latest: digest: sha256:abc size: 1"), None);
        assert_eq!(
            digest_in_status(&format!("latest: digest: sha512:{hex}")),
            None
        );
    }

    #[test]
    fn progress_noise_is_not_logged() {
        let bar = ProgressDetail {
            current: Some(10),
            total: Some(100),
        };
        assert_eq!(status_line(Some("abc"), Some("Pushing"), Some(&bar)), None);
        assert_eq!(status_line(Some("abc"), Some("Waiting"), None), None);
        assert_eq!(status_line(None, Some("  "), None), None);
        assert_eq!(
            status_line(
                Some("abc"),
                Some("Pushed"),
                Some(&ProgressDetail::default())
            ),
            Some(Line::log("abc: Pushed"))
        );
        assert_eq!(
            status_line(None, Some("The push refers to repository [r.x/a]"), None),
            Some(Line::log("The push refers to repository [r.x/a]"))
        );
    }
}
