//! The Docker engine behind one trait: the only door to Docker.
//!
//! [`Engine`] is the only way the supervisor touches the engine.
//! [`docker::Docker`] (feature `docker`, on by default) implements it with
//! bollard; [`fake::FakeEngine`] (feature `fake`, for tests only) is an
//! in-memory recording fake for unit tests of planning and applying.
//! Observed state comes back as our own small types ([`types`]: what the
//! planner needs), while creation takes bollard's request bodies (the
//! engine's own vocabulary; `turtle-reconcile` builds them).
//!
//! # Design
//!
//! - Without its default features this crate is the trait and the types
//!   only (bollard's model structs come from `bollard-stubs`, with no HTTP
//!   client): the pure planner (`turtle-reconcile`) depends on it that way.
//! - The trait uses `impl Future + Send` returns rather than `dyn`: the
//!   supervisor is generic over `E: Engine`, so there is no boxing on the hot
//!   path.
//! - [`errors`] (feature `docker`) says how a bollard error reads and whether
//!   it means the engine is gone; the stack's builder, which talks to the
//!   engine directly, uses it too.

#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "docker")]
pub mod errors;
#[cfg(feature = "fake")]
pub mod fake;
pub mod types;

use std::future::Future;
use std::pin::Pin;

use bollard_stubs::models::{NetworkCreateRequest, VolumeCreateRequest};
use futures_core::Stream;

pub use types::*;

pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("docker engine not reachable at {socket}: is dockerd running? ({detail})")]
    Unreachable { socket: String, detail: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what}: conflict: {message}")]
    Conflict { what: String, message: String },
    #[error("docker engine error {status} on {what}: {message}")]
    Api {
        what: String,
        status: u16,
        message: String,
    },
    #[error("image build failed for {image}: {message}")]
    Build { image: String, message: String },
    /// The request needs a newer engine API than the server speaks, and has
    /// no older form (sending it would silently lose the setting).
    #[error(
        "{what}: {feature} needs docker engine API {needs} or newer, and this engine speaks {api}: upgrade docker, or remove the setting"
    )]
    TooOld {
        what: String,
        /// The setting, as the compose file names it.
        feature: String,
        needs: String,
        api: String,
    },
    #[error("{what}: {message}")]
    Other { what: String, message: String },
}

impl EngineError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The Docker engine, as the supervisor uses it.
///
/// Label filters are `key=value` (or bare `key`) strings, as the engine's
/// `label` filter takes them.
pub trait Engine: Send + Sync + 'static {
    /// Checks the engine answers.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;

    /// All containers (running or not) carrying every given label.
    fn list_containers(
        &self,
        labels: &[String],
    ) -> impl Future<Output = Result<Vec<ContainerSummary>>> + Send;
    fn inspect_container(&self, id: &str) -> impl Future<Output = Result<ContainerDetails>> + Send;
    /// Creates the container, connects `extra_networks`; returns its ID.
    fn create_container(&self, spec: &ContainerSpec)
    -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Stops with the engine's stop signal, then SIGKILL after `timeout_secs`.
    fn stop_container(
        &self,
        id: &str,
        timeout_secs: Option<i64>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn restart_container(
        &self,
        id: &str,
        timeout_secs: Option<i64>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Sets the container's CPU limit in billionths of a CPU. The engine
    /// takes 0 as "unchanged", so lifting a cap means setting the limit the
    /// container had, or every CPU of the host.
    fn update_cpus(&self, id: &str, nano_cpus: i64) -> impl Future<Output = Result<()>> + Send;
    fn pause_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn unpause_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Sends a signal (`SIGHUP`, `HUP`, `1`) to the container's main process.
    fn kill_container(&self, id: &str, signal: &str) -> impl Future<Output = Result<()>> + Send;
    /// Force-removes the container (and its anonymous volumes when `volumes`).
    fn remove_container(&self, id: &str, volumes: bool) -> impl Future<Output = Result<()>> + Send;
    /// Writes files into a container (created or running), with their mode
    /// and owner as given; missing parent directories are made (root, 0755).
    /// The engine refuses a container whose root file system is read-only.
    fn upload_files(
        &self,
        id: &str,
        files: &[FileUpload],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Runs a command in a running container and waits for it to end.
    fn exec(&self, id: &str, spec: &ExecSpec) -> impl Future<Output = Result<ExecOutcome>> + Send;

    fn list_networks(
        &self,
        labels: &[String],
    ) -> impl Future<Output = Result<Vec<NetworkSummary>>> + Send;
    /// Network by exact name, if it exists.
    fn find_network(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<NetworkSummary>>> + Send;
    fn create_network(&self, req: &NetworkCreateRequest)
    -> impl Future<Output = Result<()>> + Send;
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    fn list_volumes(
        &self,
        labels: &[String],
    ) -> impl Future<Output = Result<Vec<VolumeSummary>>> + Send;
    /// Volume by exact name, if it exists.
    fn find_volume(&self, name: &str)
    -> impl Future<Output = Result<Option<VolumeSummary>>> + Send;
    fn create_volume(&self, req: &VolumeCreateRequest) -> impl Future<Output = Result<()>> + Send;
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    /// The image ID for a reference, `None` when the engine does not have it.
    fn image_id(&self, reference: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    /// The image `reference` (or ID), `None` when the engine does not have it.
    fn inspect_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>>> + Send;
    /// Every image the engine lists (tagged or dangling; not the hidden
    /// parents a classic build leaves, whose layers their children hold),
    /// each inspected for its layers: one request per image.
    fn list_images(&self) -> impl Future<Output = Result<Vec<ImageInfo>>> + Send;
    /// Removes the image `reference` (or ID) without force: the engine
    /// refuses (`Conflict`) an image a container uses or several
    /// references name.
    fn remove_image(&self, reference: &str) -> impl Future<Output = Result<()>> + Send;
    /// The engine's data directory (`DockerRootDir`): where images and
    /// volumes take their space.
    fn data_root(&self) -> impl Future<Output = Result<std::path::PathBuf>> + Send;
    /// When the image `reference` was last tagged on this engine (a build,
    /// a `docker tag`, Turtle's stamp after a pull), else when it was built;
    /// `None` when the engine does not have it.
    fn image_refreshed_at(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<std::time::SystemTime>>> + Send;
    /// Pulls an image; the stream ends when the pull is done or failed.
    fn pull_image(&self, reference: &str) -> BoxStream<Result<Progress>>;
    /// Builds an image; the stream ends when the build is done or failed.
    fn build_image(&self, spec: &BuildSpec) -> BoxStream<Result<Progress>>;
    /// Gives `source` (a reference or ID) the reference `target` too.
    fn tag_image(&self, source: &str, target: &str) -> impl Future<Output = Result<()>> + Send;
    /// Makes the image `reference` from a root filesystem tarball
    /// (`docker import`), with Dockerfile-style `changes` (`CMD ["bash"]`).
    fn import_rootfs(
        &self,
        tarball: &std::path::Path,
        reference: &str,
        changes: &[String],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Loads the images of a `docker save` archive (`docker load`).
    fn load_images(&self, archive: &std::path::Path) -> impl Future<Output = Result<()>> + Send;
    /// Loads the images of a `docker save` archive given as a stream of
    /// chunks. An error in the stream aborts the request: the engine unpacks
    /// the whole archive before it loads anything, so a stream that fails
    /// part-way loads nothing.
    fn load_images_stream(
        &self,
        archive: BoxStream<std::io::Result<Vec<u8>>>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The images (references or IDs) as one `docker save` archive, in
    /// chunks; layers shared by several images are in it once.
    fn save_images(&self, references: &[String]) -> BoxStream<Result<Vec<u8>>>;

    /// Container events carrying every given label, from now on. The stream
    /// ends (or yields an error) when the connection to the engine drops.
    fn events(&self, labels: &[String]) -> BoxStream<Result<EngineEvent>>;
    /// A container's output; with `follow`, until the container stops.
    fn logs(&self, id: &str, follow: bool, tail: Option<u64>) -> BoxStream<Result<LogChunk>>;
}
