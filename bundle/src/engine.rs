//! Creating a bundle from the engine's images, and applying one to it.
//!
//! Create: the project's images (and the bases it carries for builds) are
//! saved by the engine (`docker save`) into a spool file beside the
//! output, taken apart into parts, for a delta the layers of the base set
//! left out ([`crate::delta`]), and the bundle is written to a temporary
//! file there, then renamed into place.
//! Apply: verify the file completely ([`verify_file`]); for a delta, check
//! the engine has every layer it leaves out; then rebuild the archive from
//! the file on a blocking thread (the second pass) and stream it to the
//! engine's load; afterwards every image must be in the engine under its
//! tags with the ID the manifest names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use turtle_compose::{Project, PullPolicy};
use turtle_engine::{BoxStream, Engine};

use crate::BundleError;
use crate::archive;
use crate::delta::{self, BaseSet};
use crate::file::{VerifiedFile, verify_file};
use crate::format::VERSION;
use crate::keys::{SecretKey, Trust};
use crate::manifest::{Manifest, ReleaseInfo, host_architecture};
use crate::verify::{Signer, VerifyError};
use crate::write::write_bundle;

/// What [`create`] wrote.
#[derive(Debug)]
pub struct Created {
    pub path: PathBuf,
    pub size: u64,
    pub manifest: Manifest,
    pub signed_by: Option<String>,
    /// For a delta: the bytes of the layers left out.
    pub left_out_bytes: u64,
}

/// How [`create_with`] makes a bundle.
#[derive(Clone, Default)]
pub struct CreateOptions<'a> {
    /// Signs the manifest; unsigned without.
    pub key: Option<&'a SecretKey>,
    /// Images carried besides the services' own, for builds on the box
    /// (the Debian base the services build FROM), by reference.
    pub bases: Vec<String>,
    /// Makes a delta: the layers of this set are left out.
    pub since: Option<&'a BaseSet>,
    /// The release's version and notes, kept in the manifest.
    pub release: Option<ReleaseInfo>,
}

/// What [`apply`] loaded: the project to bring up.
#[derive(Debug)]
pub struct Applied {
    pub project: Project,
    pub manifest: Manifest,
    pub signer: Signer,
}

/// The project as a bundle carries it, and the image each service runs.
/// `build:` sections are dropped (the built image travels in the bundle,
/// its context does not), and `pull_policy: build` becomes `missing`.
pub fn bundled_project(project: &Project) -> Result<(Project, Vec<String>), BundleError> {
    let mut project = project.clone();
    let mut images = Vec::new();
    for (name, s) in &mut project.services {
        s.build = None;
        if s.pull_policy == Some(PullPolicy::Build) {
            s.pull_policy = Some(PullPolicy::Missing);
        }
        let image = s.image.clone().ok_or_else(|| BundleError::Create {
            message: format!("service {name} has no image"),
        })?;
        if !images.contains(&image) {
            images.push(image);
        }
    }
    if images.is_empty() {
        return Err(BundleError::Create {
            message: format!("project {} has no service", project.name),
        });
    }
    Ok((project, images))
}

/// Writes a bundle of `project` and its images to `out`.
pub async fn create<E: Engine>(
    engine: &E,
    project: &Project,
    key: Option<&SecretKey>,
    out: &Path,
) -> Result<Created, BundleError> {
    let opts = CreateOptions {
        key,
        ..Default::default()
    };
    create_with(engine, project, &opts, out).await
}

/// Writes a delta bundle of `project` to `out`: its images without the
/// layers `since` holds (what the target box already has, from an earlier
/// bundle's manifest or a release's images: [`BaseSet`]). The manifest
/// lists the layers left out and those the box must have; applying it to
/// a box that lacks one is refused before anything is loaded
/// ([`delta::missing_layers`]). With nothing in common, the bundle is a
/// full one (its manifest has no delta).
pub async fn create_delta<E: Engine>(
    engine: &E,
    project: &Project,
    key: Option<&SecretKey>,
    since: &BaseSet,
    out: &Path,
) -> Result<Created, BundleError> {
    let opts = CreateOptions {
        key,
        since: Some(since),
        ..Default::default()
    };
    create_with(engine, project, &opts, out).await
}

/// Writes a bundle as `opts` say ([`create`], [`create_delta`]):
/// [`prepare_with`] with the spool beside `out`, then [`Prepared::write`]
/// to a temporary file there, renamed into place.
pub async fn create_with<E: Engine>(
    engine: &E,
    project: &Project,
    opts: &CreateOptions<'_>,
    out: &Path,
) -> Result<Created, BundleError> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // The archive is spooled beside the output: the same file system, and
    // no assumption that /tmp can hold the images.
    let prepared = prepare_with(engine, project, opts, &dir).await?;
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io(&dir))?;
        prepared.write(std::io::BufWriter::new(tmp.as_file()))?;
        tmp.as_file().sync_all().map_err(io(&out))?;
        let file = tmp.persist(&out).map_err(|e| BundleError::Io {
            path: out.clone(),
            source: e.error,
        })?;
        let size = file.metadata().map_err(io(&out))?.len();
        Ok(Created {
            path: out,
            size,
            signed_by: prepared.signed_by(),
            left_out_bytes: prepared.left_out_bytes,
            manifest: prepared.manifest,
        })
    })
    .await
    .map_err(|e| BundleError::Create {
        message: format!("the writing task failed: {e}"),
    })?
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BundleError + use<> {
    let path = path.to_path_buf();
    move |source| BundleError::Io {
        path: path.clone(),
        source,
    }
}

/// A bundle ready to be written: the project's images saved by the engine
/// into an unnamed spool file, taken apart into parts, and the manifest.
/// Its exact length is known before a byte is written ([`Prepared::len`]),
/// so it can be streamed (a remote push) as well as written to a file.
#[derive(Debug)]
pub struct Prepared {
    manifest: Manifest,
    spool: std::fs::File,
    offsets: std::collections::HashMap<String, u64>,
    key: Option<SecretKey>,
    left_out_bytes: u64,
}

impl Prepared {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The id of the key that signs it, `None` when unsigned.
    pub fn signed_by(&self) -> Option<String> {
        self.key.as_ref().map(|k| k.public().id())
    }

    /// For a delta: the bytes of the layers left out.
    pub fn left_out_bytes(&self) -> u64 {
        self.left_out_bytes
    }

    /// The bundle's length in bytes, as [`Prepared::write`] writes it.
    pub fn len(&self) -> u64 {
        crate::write::bundle_len(&self.manifest, self.key.is_some())
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the bundle to `out` (blocking: run it on a blocking thread),
    /// hashing every part again as it is copied from the spool.
    pub fn write<W: std::io::Write>(&self, out: W) -> Result<(), BundleError> {
        write_bundle(out, &self.manifest, self.key.as_ref(), |p| {
            Ok(std::io::BufReader::with_capacity(
                CHUNK,
                SpoolReader {
                    file: &self.spool,
                    pos: self.offsets[&p.path],
                },
            ))
        })
        .map_err(|e| BundleError::Create {
            message: e.to_string(),
        })
    }
}

/// Reads the spool from a position of its own (no shared file offset).
struct SpoolReader<'a> {
    file: &'a std::fs::File,
    pos: u64,
}

impl std::io::Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A full bundle of `project`, prepared: [`prepare_with`] with a key only.
pub async fn prepare<E: Engine>(
    engine: &E,
    project: &Project,
    key: Option<&SecretKey>,
    spool_dir: &Path,
) -> Result<Prepared, BundleError> {
    let opts = CreateOptions {
        key,
        ..Default::default()
    };
    prepare_with(engine, project, &opts, spool_dir).await
}

/// Saves the project's images (and the bases `opts` carry) from the engine
/// into an unnamed spool file in `spool_dir`, leaves out the layers of
/// `opts.since` for a delta, and makes the manifest: everything but
/// writing the bundle. The spool goes away with the [`Prepared`].
pub async fn prepare_with<E: Engine>(
    engine: &E,
    project: &Project,
    opts: &CreateOptions<'_>,
    spool_dir: &Path,
) -> Result<Prepared, BundleError> {
    let (project, mut images) = bundled_project(project)?;
    let mut bases = Vec::new();
    for b in &opts.bases {
        if !images.contains(b) {
            images.push(b.clone());
            bases.push(b.clone());
        }
    }
    for image in &images {
        let present = engine
            .image_id(image)
            .await
            .map_err(|e| BundleError::Engine(e.to_string()))?;
        if present.is_none() {
            let services: Vec<&str> = project
                .services
                .iter()
                .filter(|(_, s)| s.image.as_deref() == Some(image.as_str()))
                .map(|(n, _)| n.as_str())
                .collect();
            let whose = if services.is_empty() {
                "the base the services build FROM".to_string()
            } else {
                format!("service {}", services.join(", "))
            };
            return Err(BundleError::Create {
                message: format!(
                    "image {image} ({whose}) is not in the engine: build or pull it first (`turtle up --build`, `turtle base`, `docker pull`)"
                ),
            });
        }
    }
    let dir = spool_dir;
    let spool = tempfile::tempfile_in(dir).map_err(io(dir))?;
    let mut writer = tokio::fs::File::from_std(spool);
    let mut saved = engine.save_images(&images);
    while let Some(chunk) = saved.next().await {
        let chunk = chunk.map_err(|e| BundleError::Engine(e.to_string()))?;
        writer.write_all(&chunk).await.map_err(io(dir))?;
    }
    writer.flush().await.map_err(io(dir))?;
    let mut spool = writer.into_std().await;
    let key = opts.key.cloned();
    let since = opts.since.cloned();
    let release = opts.release.clone();
    tokio::task::spawn_blocking(move || {
        let scanned = archive::scan(&mut spool).map_err(|message| BundleError::Create {
            message: format!("the engine's docker save archive: {message}"),
        })?;
        let offsets = scanned
            .parts
            .iter()
            .map(|(p, o)| (p.path.clone(), *o))
            .collect();
        let parts: Vec<_> = scanned.parts.into_iter().map(|(p, _)| p).collect();
        let (parts, delta, left_out_bytes) = match &since {
            Some(base) => {
                let plan = delta::plan(&parts, &scanned.links, &scanned.images, base);
                if plan.delta.omitted.is_empty() {
                    (parts, None, 0)
                } else {
                    (plan.kept, Some(plan.delta), plan.left_out_bytes)
                }
            }
            None => (parts, None, 0),
        };
        let manifest = Manifest {
            format: VERSION,
            architecture: scanned.architecture,
            project,
            release,
            images: scanned.images,
            bases,
            parts,
            links: scanned.links,
            delta,
        };
        Ok(Prepared {
            manifest,
            spool,
            offsets,
            key,
            left_out_bytes,
        })
    })
    .await
    .map_err(|e| BundleError::Create {
        message: format!("the scanning task failed: {e}"),
    })?
}

/// Verifies the bundle at `path` completely (on a blocking thread).
pub async fn verify(path: &Path, trust: &Trust) -> Result<VerifiedFile, BundleError> {
    let (p, trust) = (path.to_path_buf(), trust.clone());
    tokio::task::spawn_blocking(move || verify_file(&p, &trust))
        .await
        .map_err(|e| BundleError::Create {
            message: format!("the verifying task failed: {e}"),
        })?
        .map_err(|source| BundleError::Verify {
            path: path.to_path_buf(),
            source,
        })
}

/// Verifies the bundle, then loads its images: [`verify`] then [`load`].
pub async fn apply<E: Engine>(
    engine: &E,
    path: &Path,
    trust: &Trust,
) -> Result<Applied, BundleError> {
    let verified = verify(path, trust).await?;
    load(engine, verified).await
}

/// Loads the images of a verified bundle into the engine and checks they
/// are there; hands back the project for the caller to bring up. A delta
/// whose left-out layers the engine lacks is refused first, with nothing
/// loaded.
pub async fn load<E: Engine>(engine: &E, verified: VerifiedFile) -> Result<Applied, BundleError> {
    let arch = &verified.manifest().architecture;
    if arch != host_architecture() {
        return Err(BundleError::Architecture {
            bundle: arch.clone(),
            host: host_architecture().to_string(),
        });
    }
    let missing = delta::missing_layers(engine, verified.manifest()).await?;
    if !missing.is_empty() {
        let since = verified
            .manifest()
            .delta
            .as_ref()
            .map(|d| d.since.clone())
            .unwrap_or_default();
        return Err(BundleError::MissingLayers { since, missing });
    }
    let path = verified.path().to_path_buf();
    let verified = Arc::new(verified);
    let (stream, producer) = archive_stream(verified.clone());
    let loaded = engine.load_images_stream(stream).await;
    // The second pass's failure is the cause, whatever the engine says.
    match producer.await {
        Ok(Ok(())) => {}
        Ok(Err(source)) => return Err(BundleError::Verify { path, source }),
        Err(e) => {
            return Err(BundleError::Create {
                message: format!("the reading task failed: {e}"),
            });
        }
    }
    loaded.map_err(|e| BundleError::Engine(e.to_string()))?;
    let manifest = verified.manifest().clone();
    for image in &manifest.images {
        for tag in &image.repo_tags {
            let id = engine
                .image_id(tag)
                .await
                .map_err(|e| BundleError::Engine(e.to_string()))?;
            if id.as_deref() != Some(image.id.as_str()) {
                return Err(BundleError::NotLoaded {
                    image: tag.clone(),
                    expected: image.id.clone(),
                    found: id,
                });
            }
        }
    }
    Ok(Applied {
        project: manifest.project.clone(),
        signer: verified.signer().clone(),
        manifest,
    })
}

/// Chunks of the rebuilt archive, and the task writing them.
type Producer = tokio::task::JoinHandle<Result<(), VerifyError>>;

/// The archive as a stream, written by a blocking thread through a bounded
/// channel (never whole in memory). A failed second pass ends the stream
/// with an error, which aborts the engine's load.
fn archive_stream(verified: Arc<VerifiedFile>) -> (BoxStream<std::io::Result<Vec<u8>>>, Producer) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
    let producer = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
            closed: false,
        };
        let result = verified.write_archive(&mut w);
        if w.closed {
            // The engine stopped reading: its answer says why.
            return Ok(());
        }
        if let Err(e) = &result {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        result
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (Box::pin(stream), producer)
}

const CHUNK: usize = 256 << 10;

/// Sends what is written as chunks over a channel.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    /// The receiver is gone.
    closed: bool,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        if self.tx.blocking_send(Ok(chunk)).is_err() {
            self.closed = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the engine stopped reading the archive",
            ));
        }
        Ok(())
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
