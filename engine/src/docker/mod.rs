//! [`Engine`] on the real Docker engine, through bollard.
//!
//! # Design
//!
//! - One [`Docker`] per supervisor, cheap to clone (bollard's client is an
//!   `Arc` around a hyper client on the engine's unix socket). Only unix sockets
//!   are supported: `connect(None)` uses `DOCKER_HOST` when it is a `unix://`
//!   address, else `/var/run/docker.sock`.
//! - bollard 0.21 sends requests without a `/vX.Y` prefix, so the daemon
//!   answers in its own default API version (1.41 on Docker 20.10). The server's
//!   API version is read once ([`Docker::api_version`]) and requests are
//!   adapted to it ([`api_compat`]): a field with an older form is rewritten
//!   or dropped when the engine works without it (healthcheck
//!   `StartInterval`, 1.44+; every endpoint but the first at container
//!   create, 1.44+, the rest connected after create, before
//!   `create_container` returns), and one that would change what the
//!   container is, with no older form, is refused with
//!   [`EngineError::TooOld`], naming the setting and both API versions.
//! - Errors: HTTP 404 becomes [`EngineError::NotFound`], 409
//!   [`EngineError::Conflict`], other statuses [`EngineError::Api`], each with a
//!   `what` naming the object (`container web-1`). A socket that is missing,
//!   refuses connections or denies permission becomes
//!   [`EngineError::Unreachable`], whose message asks whether dockerd runs.
//!   Idempotent calls treat "already so" as success: start/stop answering 304,
//!   removing something already gone (404).
//! - bollard's client timeout (120 s) covers the time to response headers only.
//!   Stop and restart wait for the container before answering, so they use a
//!   client whose timeout is the stop timeout plus a margin; builds one of an
//!   hour (the request includes uploading the context). Other streams (pull,
//!   events, logs) get headers quickly and then run as long as needed.
//! - Builds use the classic builder (no BuildKit on the target machines). The
//!   context is tarred on a blocking thread and streamed to the engine as the
//!   request's body, through a bounded channel: memory stays a few hundred KiB
//!   whatever the context's size (see [`context`]).
//!
//! # Limitations
//!
//! - `.dockerignore` support covers the common patterns (`*`, `?`, `**`,
//!   leading `/`, `!` exceptions, last match wins, a matched directory
//!   excludes what is under it); character classes (`[a-z]`) and escapes are
//!   not supported and match literally.
//! - Networks: Docker 20.10 creates a second network with an existing name
//!   (API < 1.44 only refuses when the request sets `CheckDuplicate`, a field
//!   bollard's 1.53 models no longer have), so [`Docker::create_network`] looks
//!   the name up first and answers [`EngineError::Conflict`]. The look-up and
//!   the create are not atomic; the supervisor is the only writer of its
//!   networks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{NetworkConnectRequest, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    RenameContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::OnceCell;
mod api_compat;
pub mod context;
mod exec;
mod images;

pub use context::{BuildContext, ContextError};

use crate::errors::{error_chain, is_connection_error};
use crate::{
    BoxStream, BuildSpec, ContainerDetails, ContainerSpec, ContainerSummary, Engine, EngineError,
    EngineEvent, Health, HealthTest, LogChunk, NetworkSummary, Progress, Result, State,
    VolumeMount, VolumeSummary,
};

/// The engine's socket when neither the caller nor `DOCKER_HOST` names one.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Time to response headers for ordinary calls (bollard's default).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Time to response headers of a build: it covers uploading the context, and
/// the classic builder answers only once it has unpacked it.
pub(crate) const BUILD_TIMEOUT_SECS: u64 = 3600;

/// The Docker engine on a unix socket.
#[derive(Debug, Clone)]
pub struct Docker {
    client: bollard::Docker,
    socket: String,
    /// The server's API version, `(major, minor)`, read on first use.
    api: Arc<OnceCell<(u64, u64)>>,
    /// Credentials pulls send, by registry host (`registry.box.local:8443`);
    /// shared by every clone, so one set by the fleet agent reaches the
    /// supervisor's pulls.
    registry_auth: Arc<std::sync::RwLock<std::collections::BTreeMap<String, RegistryAuth>>>,
}

/// A user and password a registry accepts (for a device: its uuid and key).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The registry host of an image reference (`registry.box.local:8443` of
/// `registry.box.local:8443/prod/web@sha256:…`), `None` for Docker Hub's
/// (a first component without a dot or a port, other than `localhost`).
pub fn registry_host(reference: &str) -> Option<&str> {
    let (first, rest) = reference.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// The socket `Docker::connect(None)` uses: `DOCKER_HOST` when it is a
/// `unix://` address, else [`DEFAULT_SOCKET`].
pub fn default_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
        _ => DEFAULT_SOCKET.to_string(),
    }
}

impl Docker {
    /// A client for the engine at `socket` (a path, or `unix://path`).
    ///
    /// This does not talk to the engine yet (call [`Engine::ping`]); it fails
    /// with [`EngineError::Unreachable`] when the socket does not exist.
    pub fn connect(socket: Option<&str>) -> Result<Docker> {
        let socket = match socket {
            Some(s) => s.trim_start_matches("unix://").to_string(),
            None => default_socket(),
        };
        let client = bollard::Docker::connect_with_unix(
            &socket,
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| EngineError::Unreachable {
            socket: socket.clone(),
            detail: match e {
                BollardError::SocketNotFoundError(_) => "no such socket".to_string(),
                e => error_chain(&e),
            },
        })?;
        Ok(Docker {
            client,
            socket,
            api: Arc::new(OnceCell::new()),
            registry_auth: Default::default(),
        })
    }

    /// Pulls from registry `host` send these credentials from now on (the
    /// engine then runs the registry's token flow with them).
    pub fn set_registry_auth(&self, host: &str, auth: RegistryAuth) {
        self.registry_auth
            .write()
            .expect("the credentials lock is never poisoned")
            .insert(host.to_string(), auth);
    }

    /// The credentials set for `reference`'s registry.
    pub(crate) fn auth_for(&self, reference: &str) -> Option<bollard::auth::DockerCredentials> {
        let host = registry_host(reference)?;
        let map = self
            .registry_auth
            .read()
            .expect("the credentials lock is never poisoned");
        map.get(host).map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(host.to_string()),
            ..Default::default()
        })
    }

    /// The underlying bollard client, for calls the trait does not cover.
    pub fn client(&self) -> &bollard::Docker {
        &self.client
    }

    /// The server's API version (`(1, 41)` for Docker 20.10), asked once.
    pub async fn api_version(&self) -> Result<(u64, u64)> {
        self.api
            .get_or_try_init(|| async {
                let v = self
                    .client
                    .version()
                    .await
                    .map_err(|e| self.err("engine version", e))?;
                let s = v.api_version.unwrap_or_default();
                parse_api_version(&s).ok_or_else(|| EngineError::Other {
                    what: "engine version".to_string(),
                    message: format!("unparsable API version {s:?}"),
                })
            })
            .await
            .copied()
    }

    /// Maps a bollard error about `what` to ours.
    fn err(&self, what: impl Into<String>, e: BollardError) -> EngineError {
        map_error(&self.socket, what.into(), e)
    }

    /// A client whose time to headers allows a stop of `timeout_secs`.
    fn client_for_stop(&self, timeout_secs: Option<i64>) -> bollard::Docker {
        let wait = match timeout_secs {
            Some(t) => t.max(0) as u64 + 60,
            // The container's own StopTimeout applies; allow a long one.
            None => 600,
        };
        self.client
            .clone()
            .with_timeout(Duration::from_secs(wait.max(REQUEST_TIMEOUT_SECS)))
    }
}

/// `"1.41"` -> `(1, 41)`.
fn parse_api_version(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('.')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Maps a bollard error about `what` to an [`EngineError`].
pub(crate) fn map_error(socket: &str, what: String, e: BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404, ..
        } => EngineError::NotFound { what },
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => EngineError::Conflict { what, message },
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => EngineError::Api {
            what,
            status: status_code,
            message,
        },
        BollardError::RequestTimeoutError => EngineError::Other {
            what,
            message: "timed out waiting for the docker engine to answer".to_string(),
        },
        e if is_connection_error(&e) => EngineError::Unreachable {
            socket: socket.to_string(),
            detail: error_chain(&e),
        },
        e => EngineError::Other {
            what,
            message: error_chain(&e),
        },
    }
}

/// `{"label": [..]}` (plus `extra`), as the engine's filters take them.
fn label_filters(labels: &[String], extra: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut f = HashMap::new();
    if !labels.is_empty() {
        f.insert("label".to_string(), labels.to_vec());
    }
    for (k, v) in extra {
        f.entry(k.to_string())
            .or_insert_with(Vec::new)
            .push(v.to_string());
    }
    f
}

/// Health from a list status text: `Up 3 seconds (healthy)`.
pub fn health_from_status(status: &str) -> Option<Health> {
    if status.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    }
}

fn health_from_enum(h: &bollard::models::HealthStatusEnum) -> Option<Health> {
    use bollard::models::HealthStatusEnum as H;
    match h {
        H::STARTING => Some(Health::Starting),
        H::HEALTHY => Some(Health::Healthy),
        H::UNHEALTHY => Some(Health::Unhealthy),
        H::NONE | H::EMPTY => None,
    }
}

/// The engine writes `0001-01-01T00:00:00Z` for "never".
fn engine_time(t: Option<String>) -> Option<String> {
    t.filter(|t| !t.is_empty() && !t.starts_with("0001-01-01"))
}

/// Splits an image reference into the `fromImage` and `tag` of a pull. The tag
/// defaults to `latest`: an empty tag would pull every tag of the repository.
pub fn split_reference(reference: &str) -> (String, String) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            reference[..last_slash + i].to_string(),
            reference[last_slash + i + 1..].to_string(),
        ),
        None => (reference.to_string(), "latest".to_string()),
    }
}

impl Engine for Docker {
    async fn ping(&self) -> Result<()> {
        self.client
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| self.err("engine ping", e))
    }

    async fn list_containers(&self, labels: &[String]) -> Result<Vec<ContainerSummary>> {
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&label_filters(labels, &[]))
            .build();
        let list = self
            .client
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.err("container list", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let status = c.status.unwrap_or_default();
                let health = health_from_status(&status).or_else(|| {
                    c.health
                        .as_ref()
                        .and_then(|h| h.status.as_ref())
                        .and_then(|s| match s.as_ref() {
                            "starting" => Some(Health::Starting),
                            "healthy" => Some(Health::Healthy),
                            "unhealthy" => Some(Health::Unhealthy),
                            _ => None,
                        })
                });
                ContainerSummary {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    labels: c.labels.unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    image_id: c.image_id.unwrap_or_default(),
                    state: c
                        .state
                        .map(|s| State::parse(s.as_ref()))
                        .unwrap_or(State::Exited),
                    health,
                }
            })
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails> {
        let c = self
            .client
            .inspect_container(id, None)
            .await
            .map_err(|e| self.err(format!("container {id}"), e))?;
        let state = c.state.unwrap_or_default();
        Ok(ContainerDetails {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            labels: c
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            state: state
                .status
                .map(|s| State::parse(s.as_ref()))
                .unwrap_or(State::Exited),
            health: state
                .health
                .as_ref()
                .and_then(|h| h.status.as_ref())
                .and_then(health_from_enum),
            exit_code: state.exit_code,
            started_at: engine_time(state.started_at),
            finished_at: engine_time(state.finished_at),
            restart_count: c.restart_count.unwrap_or(0),
            pid: state.pid.filter(|p| *p > 0),
            oom_killed: state.oom_killed.unwrap_or(false),
            healthcheck: c
                .config
                .as_ref()
                .and_then(|c| c.healthcheck.as_ref())
                .and_then(HealthTest::of),
            volumes: c
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m.typ.as_deref() == Some("volume"))
                .filter_map(|m| {
                    Some(VolumeMount {
                        name: m.name?,
                        destination: m.destination?,
                    })
                })
                .collect(),
            addresses: c
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default()
                .into_values()
                .flat_map(|e| [e.ip_address, e.global_ipv6_address])
                .flatten()
                .filter(|a| !a.is_empty())
                .collect(),
        })
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let what = format!("container {}", spec.name);
        let api = self.api_version().await?;
        let mut body = spec.body.clone();
        let mut extra = api_compat::adapt_create_body(&mut body, api).map_err(|e| e.at(&what))?;
        api_compat::check_endpoints(&spec.extra_networks, api).map_err(|e| e.at(&what))?;
        extra.extend(spec.extra_networks.iter().cloned());
        let image = body.image.clone().unwrap_or_default();
        let opts = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let created = self
            .client
            .create_container(Some(opts), body)
            .await
            .map_err(|e| match e {
                BollardError::DockerResponseServerError {
                    status_code: 404,
                    message,
                } if message.contains("No such image") => EngineError::NotFound {
                    what: format!("image {image} (for {what})"),
                },
                BollardError::DockerResponseServerError {
                    status_code: 404,
                    message,
                } => EngineError::Api {
                    what: what.clone(),
                    status: 404,
                    message,
                },
                e => self.err(what.clone(), e),
            })?;
        for (network, endpoint) in extra {
            let req = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint),
            };
            if let Err(e) = self.client.connect_network(&network, req).await {
                let err = self.err(format!("network {network} (connecting {what})"), e);
                // Leave no half-made container behind.
                let _ = self.remove_container(&created.id, true).await;
                return Err(err);
            }
        }
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        match self.client.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.err(format!("container {id}"), e)),
        }
    }

    async fn stop_container(&self, id: &str, timeout_secs: Option<i64>) -> Result<()> {
        let mut opts = StopContainerOptionsBuilder::new();
        if let Some(t) = timeout_secs {
            opts = opts.t(t.clamp(0, i32::MAX as i64) as i32);
        }
        match self
            .client_for_stop(timeout_secs)
            .stop_container(id, Some(opts.build()))
            .await
        {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.err(format!("container {id}"), e)),
        }
    }

    async fn restart_container(&self, id: &str, timeout_secs: Option<i64>) -> Result<()> {
        let mut opts = RestartContainerOptionsBuilder::new();
        if let Some(t) = timeout_secs {
            opts = opts.t(t.clamp(0, i32::MAX as i64) as i32);
        }
        self.client_for_stop(timeout_secs)
            .restart_container(id, Some(opts.build()))
            .await
            .map_err(|e| self.err(format!("container {id}"), e))
    }

    async fn update_cpus(&self, id: &str, nano_cpus: i64) -> Result<()> {
        let body = bollard::models::ContainerUpdateBody {
            nano_cpus: Some(nano_cpus),
            ..Default::default()
        };
        self.client
            .update_container(id, body)
            .await
            .map(|_| ())
            .map_err(|e| self.err(format!("container {id}"), e))
    }

    async fn pause_container(&self, id: &str) -> Result<()> {
        self.client
            .pause_container(id)
            .await
            .map_err(|e| self.err(format!("container {id}"), e))
    }

    async fn unpause_container(&self, id: &str) -> Result<()> {
        self.client
            .unpause_container(id)
            .await
            .map_err(|e| self.err(format!("container {id}"), e))
    }

    async fn kill_container(&self, id: &str, signal: &str) -> Result<()> {
        let opts = KillContainerOptionsBuilder::new().signal(signal).build();
        self.client
            .kill_container(id, Some(opts))
            .await
            .map_err(|e| self.err(format!("container {id}"), e))
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        let opts = RenameContainerOptionsBuilder::new().name(name).build();
        self.client
            .rename_container(id, opts)
            .await
            .map_err(|e| self.err(format!("rename of container {id} to {name}"), e))
    }

    async fn remove_container(&self, id: &str, volumes: bool) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(volumes)
            .build();
        match self.client.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.err(format!("container {id}"), e)),
        }
    }

    async fn upload_files(&self, id: &str, files: &[crate::FileUpload]) -> Result<()> {
        self.upload(id, files).await
    }

    async fn exec(&self, id: &str, spec: &crate::ExecSpec) -> Result<crate::ExecOutcome> {
        self.exec_in(id, spec).await
    }

    async fn list_networks(&self, labels: &[String]) -> Result<Vec<NetworkSummary>> {
        let opts = ListNetworksOptionsBuilder::new()
            .filters(&label_filters(labels, &[]))
            .build();
        let list = self
            .client
            .list_networks(Some(opts))
            .await
            .map_err(|e| self.err("network list", e))?;
        Ok(list
            .into_iter()
            .map(|n| NetworkSummary {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
            })
            .collect())
    }

    async fn find_network(&self, name: &str) -> Result<Option<NetworkSummary>> {
        match self.client.inspect_network(name, None).await {
            // Inspect also matches ID prefixes: insist on the exact name.
            Ok(n) if n.name.as_deref() == Some(name) => Ok(Some(NetworkSummary {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                labels: n.labels.unwrap_or_default(),
            })),
            Ok(_) => Ok(None),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.err(format!("network {name}"), e)),
        }
    }

    async fn create_network(&self, req: &NetworkCreateRequest) -> Result<()> {
        let what = format!("network {}", req.name);
        let api = self.api_version().await?;
        api_compat::check_network(req, api).map_err(|e| e.at(&what))?;
        if self.find_network(&req.name).await?.is_some() {
            return Err(EngineError::Conflict {
                what,
                message: "a network with this name already exists".to_string(),
            });
        }
        self.client
            .create_network(req.clone())
            .await
            .map(|_| ())
            .map_err(|e| self.err(what, e))
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        match self.client.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.err(format!("network {name}"), e)),
        }
    }

    async fn list_volumes(&self, labels: &[String]) -> Result<Vec<VolumeSummary>> {
        let opts = ListVolumesOptionsBuilder::new()
            .filters(&label_filters(labels, &[]))
            .build();
        let list = self
            .client
            .list_volumes(Some(opts))
            .await
            .map_err(|e| self.err("volume list", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| VolumeSummary {
                name: v.name,
                labels: v.labels,
            })
            .collect())
    }

    async fn find_volume(&self, name: &str) -> Result<Option<VolumeSummary>> {
        match self.client.inspect_volume(name).await {
            Ok(v) => Ok(Some(VolumeSummary {
                name: v.name,
                labels: v.labels,
            })),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.err(format!("volume {name}"), e)),
        }
    }

    async fn create_volume(&self, req: &VolumeCreateRequest) -> Result<()> {
        let what = format!("volume {}", req.name.as_deref().unwrap_or("(anonymous)"));
        self.client
            .create_volume(req.clone())
            .await
            .map(|_| ())
            .map_err(|e| self.err(what, e))
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        let opts = RemoveVolumeOptionsBuilder::new().build();
        match self.client.remove_volume(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(self.err(format!("volume {name}"), e)),
        }
    }

    async fn image_id(&self, reference: &str) -> Result<Option<String>> {
        match self.client.inspect_image(reference).await {
            Ok(i) => Ok(i.id),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.err(format!("image {reference}"), e)),
        }
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<crate::ImageInfo>> {
        self.image_info(reference).await
    }

    async fn list_images(&self) -> Result<Vec<crate::ImageInfo>> {
        self.images_inspected().await
    }

    async fn remove_image(&self, reference: &str) -> Result<()> {
        self.remove(reference).await
    }

    async fn data_root(&self) -> Result<std::path::PathBuf> {
        let info = self
            .client
            .info()
            .await
            .map_err(|e| self.err("engine info", e))?;
        info.docker_root_dir
            .map(std::path::PathBuf::from)
            .ok_or_else(|| EngineError::Other {
                what: "engine info".into(),
                message: "the engine did not say where its data is (DockerRootDir)".into(),
            })
    }

    async fn image_refreshed_at(&self, reference: &str) -> Result<Option<std::time::SystemTime>> {
        self.refreshed_at(reference).await
    }

    fn pull_image(&self, reference: &str) -> BoxStream<Result<Progress>> {
        self.pull(reference)
    }

    fn build_image(&self, spec: &BuildSpec) -> BoxStream<Result<Progress>> {
        self.build(spec)
    }

    async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        self.tag(source, target).await
    }

    async fn import_rootfs(
        &self,
        tarball: &Path,
        reference: &str,
        changes: &[String],
    ) -> Result<()> {
        self.import(tarball, reference, changes).await
    }

    async fn load_images(&self, archive: &Path) -> Result<()> {
        self.load(archive).await
    }

    async fn load_images_stream(&self, archive: BoxStream<std::io::Result<Vec<u8>>>) -> Result<()> {
        self.load_stream("load of a docker save stream".to_string(), archive)
            .await
    }

    fn save_images(&self, references: &[String]) -> BoxStream<Result<Vec<u8>>> {
        self.save(references)
    }

    fn events(&self, labels: &[String]) -> BoxStream<Result<EngineEvent>> {
        let opts = EventsOptionsBuilder::new()
            .filters(&label_filters(labels, &[("type", "container")]))
            .build();
        let socket = self.socket.clone();
        let stream = self.client.events(Some(opts)).map(move |item| match item {
            Ok(ev) => {
                let actor = ev.actor.unwrap_or_default();
                Ok(EngineEvent {
                    action: ev.action.unwrap_or_default(),
                    id: actor.id.unwrap_or_default(),
                    attributes: actor.attributes.unwrap_or_default(),
                    time_nano: ev
                        .time_nano
                        .or(ev.time.map(|t| t.saturating_mul(1_000_000_000)))
                        .unwrap_or(0),
                })
            }
            Err(e) => Err(map_error(&socket, "event stream".to_string(), e)),
        });
        Box::pin(stream)
    }

    fn logs(&self, id: &str, follow: bool, tail: Option<u64>) -> BoxStream<Result<LogChunk>> {
        let tail = tail.map(|t| t.to_string()).unwrap_or_else(|| "all".into());
        let opts = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let socket = self.socket.clone();
        let what = format!("container {id}");
        let stream = self.client.logs(id, Some(opts)).filter_map(move |item| {
            let out = match item {
                Ok(bollard::container::LogOutput::StdErr { message }) => Some(Ok(LogChunk {
                    stderr: true,
                    bytes: message.to_vec(),
                })),
                Ok(
                    bollard::container::LogOutput::StdOut { message }
                    | bollard::container::LogOutput::Console { message },
                ) => Some(Ok(LogChunk {
                    stderr: false,
                    bytes: message.to_vec(),
                })),
                Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(map_error(&socket, what.clone(), e))),
            };
            std::future::ready(out)
        });
        Box::pin(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn the_registry_of_a_reference() {
        assert_eq!(
            registry_host("registry.box.local:8443/prod/web@sha256:ab"),
            Some("registry.box.local:8443")
        );
        assert_eq!(registry_host("localhost/x:1"), Some("localhost"));
        assert_eq!(registry_host("host:5000/x"), Some("host:5000"));
        // Docker Hub's: no registry component.
        assert_eq!(registry_host("library/debian:12"), None);
        assert_eq!(registry_host("debian:12"), None);
        assert_eq!(registry_host("busybox"), None);
    }

    #[test]
    fn credentials_go_to_their_registry_only() {
        let d = Docker::connect(Some("/nonexistent/turtle-test.sock"));
        // connect fails without the socket; the map is tested on a client
        // made for a socket path that exists as a file.
        assert!(d.is_err());
        let dir = std::env::temp_dir().join(format!("turtle-auth-{}", std::process::id()));
        std::fs::write(&dir, b"").unwrap();
        let d = Docker::connect(Some(dir.to_str().unwrap())).unwrap();
        let _ = std::fs::remove_file(&dir);
        let copy = d.clone();
        d.set_registry_auth(
            "registry.box.local:8443",
            RegistryAuth {
                username: "uuid".into(),
                password: "key".into(),
            },
        );
        let c = copy
            .auth_for("registry.box.local:8443/prod/web@sha256:ab")
            .expect("a clone sees the credentials");
        assert_eq!(c.username.as_deref(), Some("uuid"));
        assert_eq!(c.password.as_deref(), Some("key"));
        assert_eq!(c.serveraddress.as_deref(), Some("registry.box.local:8443"));
        assert!(copy.auth_for("other.local/prod/web:1").is_none());
        assert!(copy.auth_for("busybox").is_none());
    }

    #[test]
    fn health_from_status_text() {
        assert_eq!(
            health_from_status("Up 3 seconds (healthy)"),
            Some(Health::Healthy)
        );
        assert_eq!(
            health_from_status("Up 3 seconds (unhealthy)"),
            Some(Health::Unhealthy)
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)"),
            Some(Health::Starting)
        );
        assert_eq!(health_from_status("Up 3 seconds"), None);
        assert_eq!(health_from_status("Exited (0) 3 seconds ago"), None);
    }

    #[test]
    fn references_split_with_latest_default() {
        assert_eq!(
            split_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_reference("busybox:1.36"),
            ("busybox".into(), "1.36".into())
        );
        assert_eq!(
            split_reference("localhost:5000/x/y"),
            ("localhost:5000/x/y".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/x/y:v2"),
            ("localhost:5000/x/y".into(), "v2".into())
        );
        assert_eq!(
            split_reference("x/y@sha256:abc"),
            ("x/y".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn api_versions_parse() {
        assert_eq!(parse_api_version("1.41"), Some((1, 41)));
        assert_eq!(parse_api_version("1.44"), Some((1, 44)));
        assert_eq!(parse_api_version("x"), None);
    }

    #[test]
    fn server_errors_map_by_status() {
        let server = |status_code: u16| BollardError::DockerResponseServerError {
            status_code,
            message: "boom".to_string(),
        };
        let e = map_error("/s", "container web-1".into(), server(404));
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "container web-1 not found");
        let e = map_error("/s", "container web-1".into(), server(409));
        assert!(matches!(e, EngineError::Conflict { .. }), "{e:?}");
        assert_eq!(e.to_string(), "container web-1: conflict: boom");
        let e = map_error("/s", "image x".into(), server(500));
        assert!(matches!(e, EngineError::Api { status: 500, .. }), "{e:?}");
        assert!(e.to_string().contains("image x"), "{e}");
        let refused = BollardError::IOError {
            err: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        let e = map_error("/run/docker.sock", "engine ping".into(), refused);
        assert!(matches!(e, EngineError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("/run/docker.sock"), "{e}");
        let e = map_error("/s", "x".into(), BollardError::RequestTimeoutError);
        assert!(matches!(e, EngineError::Other { .. }), "{e:?}");
    }

    #[test]
    fn missing_socket_is_unreachable() {
        let err = Docker::connect(Some("/nonexistent/turtle.sock")).unwrap_err();
        assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("is dockerd running"), "{err}");
    }
}
