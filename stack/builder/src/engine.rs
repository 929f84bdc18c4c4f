//! The Docker engine the builder drives, on its unix socket.
//!
//! bollard 0.21 sends requests without a `/vX.Y` prefix, so the daemon answers
//! in its own default API version (1.41 on Docker 20.10); the client's version
//! is still negotiated once, before the first build, so bollard never asks for
//! more than the server has. An engine that is down at start is not fatal: the
//! health route says so and builds fail with a message naming the socket,
//! until the engine answers.

use std::time::Duration;

use bollard::errors::Error as BollardError;
use tokio::sync::OnceCell;
use turtle_engine::errors::{error_chain, is_connection_error};

/// Time to response headers for ordinary calls (bollard's default).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Time to response headers of a build: it covers uploading the context, and
/// the classic builder answers only once it has unpacked it.
pub const BUILD_TIMEOUT_SECS: u64 = 3600;

/// Time the health route gives the engine to answer a ping.
const PING_TIMEOUT_SECS: u64 = 10;

/// A client of the engine at one socket.
#[derive(Debug, Clone)]
pub struct Engine {
    client: bollard::Docker,
    socket: String,
    negotiated: std::sync::Arc<OnceCell<()>>,
}

/// Why the engine's socket cannot be used at all.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot use the docker engine socket {socket}: {detail}: bind-mount the engine's socket \
     into the builder (see the trust boundary) or pass --docker-socket"
)]
pub struct ConnectError {
    socket: String,
    detail: String,
}

impl Engine {
    /// A client for the socket at `socket` (a path, or `unix://path`). Does
    /// not talk to the engine yet.
    pub fn connect(socket: &str) -> Result<Engine, ConnectError> {
        let socket = socket.trim_start_matches("unix://").to_string();
        let client = bollard::Docker::connect_with_unix(
            &socket,
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| ConnectError {
            socket: socket.clone(),
            detail: match e {
                BollardError::SocketNotFoundError(_) => "no such socket".to_string(),
                e => error_chain(&e),
            },
        })?;
        Ok(Engine {
            client,
            socket,
            negotiated: Default::default(),
        })
    }

    /// The bollard client; its API version is negotiated after [`Engine::ready`].
    pub fn client(&self) -> &bollard::Docker {
        &self.client
    }

    /// Negotiates the API version once; later calls return at once.
    pub async fn ready(&self) -> Result<(), String> {
        self.negotiated
            .get_or_try_init(|| async {
                // The client's version lives behind an Arc shared by clones.
                self.client
                    .clone()
                    .negotiate_version()
                    .await
                    .map(|_| ())
                    .map_err(|e| self.describe("engine version", &e))
            })
            .await
            .copied()
    }

    /// Whether the engine answers a ping (for the health route).
    pub async fn ping(&self) -> Result<(), String> {
        let client = self
            .client
            .clone()
            .with_timeout(Duration::from_secs(PING_TIMEOUT_SECS));
        client
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| self.describe("engine ping", &e))
    }

    /// A message for a failed call about `what`, naming the socket when the
    /// engine could not be reached.
    pub fn describe(&self, what: &str, e: &BollardError) -> String {
        match e {
            BollardError::DockerResponseServerError { message, .. } => message.clone(),
            BollardError::DockerStreamError { error } => error.clone(),
            BollardError::RequestTimeoutError => {
                format!(
                    "{what}: timed out waiting for the docker engine at {} to answer",
                    self.socket
                )
            }
            e if is_connection_error(e) => format!(
                "docker engine not reachable at {}: {}: is dockerd running, and is its socket \
                 bind-mounted into the builder?",
                self.socket,
                error_chain(e)
            ),
            e => format!("{what}: {}", error_chain(e)),
        }
    }
}
