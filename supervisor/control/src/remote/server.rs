//! The remote listener: TLS on TCP, the remote routes alone, the token
//! checked first, and the push route (receive, verify, load, push).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use turtle_bundle::{BundleError, Signer, Trust, VerifiedFile};
use turtle_engine::Engine;
use turtle_runtime::release::Origin;
use turtle_runtime::release::disk::{self, DiskError, Need, Reserve};
use turtle_runtime::supervisor::Supervisor;

use super::tls::LeafResolver;
use super::token::{TokenError, TokenFile};
use super::{CurrentRelease, ErrorBody, PushQuery, RemoteInfo, check_name};
use crate::wire::{Event, ProjectName, PushOptions};
use crate::{Control, ControlError};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's head may take to arrive.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the body may pause before the push is given up.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 32;
/// Where bundles are spooled, under the state directory.
pub const SPOOL_DIR: &str = "remote/incoming";

/// What the listener is configured with (turtle.yaml's `remote` and
/// `bundles` sections, read at the daemon's start).
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub token: TokenFile,
    pub trust: Trust,
    pub allow_untrusted: bool,
    pub max_bundle: u64,
    /// Space kept free on the spool's disk after the bundle is received
    /// (and loaded, when the engine keeps its images on the same disk): the
    /// update's reserve.
    pub reserve: Reserve,
    pub state_dir: PathBuf,
}

/// Why the listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "remote.listen {addr}: {source}: choose a free address and port, or remove remote.listen to turn remote push off"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("remote push needs the box's CA, which this supervisor has not opened")]
    NoCa,
    #[error("{0}")]
    Leaf(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the remote spool directory: {0}")]
    Spool(String),
}

/// A refusal of a remote request, each with its status.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "no valid token: send `Authorization: Bearer TOKEN` with the box's token (`turtle remote token` on the box prints it; `turtle push --token` or TURTLE_REMOTE_TOKEN sends it)"
    )]
    Unauthorized,
    #[error(
        "this box trusts no bundle key (bundles.trusted_keys is empty), so it refuses remote pushes: add the pushing side's public key (`turtle bundle keygen`) to bundles.trusted_keys in its turtle.yaml, or set remote.allow_untrusted"
    )]
    NoTrustedKeys,
    #[error("another remote push is being received or applied: try again when it is done")]
    Busy,
    #[error("the request has no Content-Length: a bundle is sent with its length")]
    LengthRequired,
    #[error(
        "the bundle is {size} bytes, and this box accepts at most {max} (remote.max_bundle in its turtle.yaml)"
    )]
    TooLarge { size: u64, max: u64 },
    #[error("no room for the bundle: {0}")]
    NoSpace(String),
    #[error("the bundle stream ended after {got} of {len} bytes: {reason}; nothing was loaded")]
    Cut { got: u64, len: u64, reason: String },
    #[error("the bundle was refused: {message}; nothing was loaded")]
    Refused {
        check: &'static str,
        message: String,
    },
    #[error(
        "the bundle's images are for {bundle}, and this box is {host}: make the bundle on (or for) a box of this kind; nothing was loaded"
    )]
    Architecture { bundle: String, host: String },
    #[error("{0}")]
    Control(#[from] ControlError),
    #[error("{0}")]
    Failed(String),
}

impl RemoteError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NoTrustedKeys => StatusCode::FORBIDDEN,
            Self::Busy => StatusCode::CONFLICT,
            Self::LengthRequired => StatusCode::LENGTH_REQUIRED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoSpace(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Cut { .. } => StatusCode::BAD_REQUEST,
            Self::Refused { .. } | Self::Architecture { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Control(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Self::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn check(&self) -> Option<String> {
        match self {
            Self::Refused { check, .. } => Some(check.to_string()),
            Self::Architecture { .. } => Some("architecture".into()),
            _ => None,
        }
    }
}

impl IntoResponse for RemoteError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
            check: self.check(),
        };
        let mut r = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unauthorized) {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"turtle\""),
            );
        }
        r
    }
}

/// The listener's state: the supervisor and the settings.
pub struct Remote<E: Engine> {
    sup: Arc<Supervisor<E>>,
    settings: Settings,
    /// Held from the first byte of a push's body to its end.
    busy: Arc<tokio::sync::Mutex<()>>,
    spool: PathBuf,
}

/// A bound listener, ready to [`Listening::run`].
pub struct Listening<E: Engine> {
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    remote: Arc<Remote<E>>,
    names: Vec<String>,
}

/// Binds the listener, makes the token (when missing), the spool
/// directory (emptied of what a killed daemon left) and the leaf.
pub fn start<E: Engine + 'static>(
    sup: Arc<Supervisor<E>>,
    settings: Settings,
) -> Result<Listening<E>, StartError> {
    let trust = sup.trust().cloned().ok_or(StartError::NoCa)?;
    settings.token.ensure()?;
    let spool = settings.state_dir.join(SPOOL_DIR);
    turtle_certs::own_dir(&settings.state_dir, &spool, 0o700)
        .map_err(|e| StartError::Spool(e.to_string()))?;
    for entry in std::fs::read_dir(&spool)
        .map_err(|e| StartError::Spool(format!("{}: {e}", spool.display())))?
        .flatten()
    {
        let _ = std::fs::remove_file(entry.path());
    }
    let resolver =
        LeafResolver::new(trust, settings.listen, super::tls::LEAF_ID).map_err(StartError::Leaf)?;
    let names = resolver.names();
    let tls = super::tls::server_config(resolver);
    let bind = |addr: SocketAddr| -> std::io::Result<tokio::net::TcpListener> {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(l)
    };
    let listener = bind(settings.listen).map_err(|source| StartError::Bind {
        addr: settings.listen,
        source,
    })?;
    Ok(Listening {
        listener,
        tls,
        remote: Arc::new(Remote {
            sup,
            settings,
            busy: Arc::default(),
            spool,
        }),
        names,
    })
}

impl<E: Engine + 'static> Listening<E> {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What the leaf is for: the names a pushing side may use.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Serves until `shutdown` resolves; connections in flight are not
    /// waited for (an update already handed to the supervisor goes on).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        serve(self.listener, self.tls, self.remote, shutdown).await
    }
}

/// The peer of a connection, for the logs and the release's origin.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Accepts TLS connections on `listener` and serves the remote routes on
/// each, until `shutdown` resolves.
pub async fn serve<E: Engine + 'static>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    remote: Arc<Remote<E>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    serve_tls(listener, tls, router(remote), "remote listener", shutdown).await
}

/// Accepts TLS connections on `listener` and serves `app` on each (with
/// the peer's address as an extension), at most [`MAX_CONNECTIONS`] at
/// once, until `shutdown` resolves. `what` names the listener in logs.
pub(crate) async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    what: &'static str,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, say: let some close.
                    tracing::warn!("{what}: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{what}: {MAX_CONNECTIONS} connections open, closing a new one");
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, "{what}: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "{what}: TLS handshake timed out");
                    return;
                }
            };
            let service =
                hyper_util::service::TowerToHyperService::new(app.layer(Extension(Peer(peer))));
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, "{what}: connection ended: {e}");
            }
        });
    }
}

type App<E> = State<Arc<Remote<E>>>;

/// The remote routes, each behind the token; nothing of the local API.
pub fn router<E: Engine + 'static>(remote: Arc<Remote<E>>) -> Router {
    Router::new()
        .route("/v1/remote", get(info::<E>))
        .route("/v1/projects/{name}/release", get(current_release::<E>))
        .route("/v1/bundles", post(push_bundle::<E>))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(ErrorBody {
                    error: "no such route: this listener serves remote pushes only".into(),
                    check: None,
                }),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            remote.clone(),
            authorize::<E>,
        ))
        .with_state(remote)
}

/// The bearer token, before anything else (the fallback included).
async fn authorize<E: Engine>(
    State(r): App<E>,
    request: Request,
    next: Next,
) -> Result<Response, RemoteError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let peer = request.extensions().get::<Peer>().map(|p| p.0);
    let ok = match presented {
        None => false,
        Some(t) => r.settings.token.matches(t).map_err(|e| {
            // The cause stays in the box's log: the caller is not known yet.
            tracing::error!("remote request refused: {e}");
            RemoteError::Failed("the box cannot check tokens: its log says why".into())
        })?,
    };
    if !ok {
        tracing::warn!(
            peer = ?peer,
            path = %request.uri().path(),
            "remote request refused: no valid token"
        );
        return Err(RemoteError::Unauthorized);
    }
    Ok(next.run(request).await)
}

async fn info<E: Engine>(State(r): App<E>) -> Json<RemoteInfo> {
    Json(RemoteInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        domain: r
            .sup
            .trust()
            .map(|t| t.domain().to_string())
            .unwrap_or_default(),
        architecture: turtle_bundle::manifest::host_architecture().to_string(),
        trusted_keys: r.settings.trust.ids(),
        allow_untrusted: r.settings.allow_untrusted,
        max_bundle: r.settings.max_bundle,
    })
}

async fn current_release<E: Engine>(
    State(r): App<E>,
    UrlPath(raw): UrlPath<String>,
) -> Result<Response, RemoteError> {
    let name: ProjectName = raw
        .parse()
        .map_err(|e: turtle_compose::NameError| ControlError::Invalid(e.to_string()))?;
    let releases = Control::releases(&*r.sup, &name).await?;
    let release = releases
        .into_iter()
        .find(|x| x.outcome == turtle_runtime::release::Outcome::Committed)
        .ok_or_else(|| {
            ControlError::NotFound(format!(
                "project {name} has no committed release on this box"
            ))
        })?;
    // An image the engine no longer has is left out: a delta then carries
    // its layers.
    let mut layers = std::collections::BTreeMap::new();
    for id in release.image_ids() {
        let info = r
            .sup
            .engine()
            .inspect_image(&id)
            .await
            .map_err(|e| ControlError::Engine(e.to_string()))?;
        if let Some(info) = info {
            layers.insert(id, info.layers);
        }
    }
    Ok(Json(CurrentRelease { release, layers }).into_response())
}

/// `POST /v1/bundles`: every refusal happens before the answer starts,
/// so it is a status (and a line in the box's log); from the 200 on, the
/// load and the push stream.
async fn push_bundle<E: Engine + 'static>(
    State(r): App<E>,
    Extension(Peer(peer)): Extension<Peer>,
    Query(q): Query<PushQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RemoteError> {
    let answer = receive_bundle(r, peer, q, headers, body).await;
    if let Err(e) = &answer {
        tracing::warn!(%peer, status = %e.status(), "remote push refused: {e}");
    }
    answer
}

async fn receive_bundle<E: Engine + 'static>(
    r: Arc<Remote<E>>,
    peer: SocketAddr,
    q: PushQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, RemoteError> {
    if r.settings.trust.is_empty() && !r.settings.allow_untrusted {
        return Err(RemoteError::NoTrustedKeys);
    }
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(RemoteError::LengthRequired)?;
    if len > r.settings.max_bundle {
        return Err(RemoteError::TooLarge {
            size: len,
            max: r.settings.max_bundle,
        });
    }
    let busy = r
        .busy
        .clone()
        .try_lock_owned()
        .map_err(|_| RemoteError::Busy)?;
    r.check_space(len).await?;
    tracing::info!(%peer, bytes = len, "remote push: receiving a bundle");
    let started = Instant::now();
    let (spool, sha256) = r.receive(body, len).await?;
    let received_ms = started.elapsed().as_millis();
    let verified = turtle_bundle::verify(spool.path(), &r.settings.trust)
        .await
        .map_err(|e| refused(&e))?;
    let host = turtle_bundle::manifest::host_architecture();
    if verified.manifest().architecture != host {
        return Err(RemoteError::Architecture {
            bundle: verified.manifest().architecture.clone(),
            host: host.to_string(),
        });
    }
    let verified_ms = started.elapsed().as_millis() - received_ms;
    let summary = summary(&verified, &r.settings.trust);
    tracing::info!(%peer, sha256 = %sha256, "remote push: bundle verified: {summary}");
    let opts = PushOptions {
        version: q.version,
        notes: q.notes,
        settle: q.settle_ms.map(Duration::from_millis),
        force: q.force,
        origin: Some(Origin::Bundle {
            file: format!(
                "remote push from {} (bundle sha256:{})",
                peer.ip(),
                &sha256[..16]
            ),
        }),
        ..Default::default()
    };
    let lines = [
        format!("bundle received: {len} bytes in {received_ms} ms, sha256 {sha256}"),
        format!("bundle verified in {verified_ms} ms: {summary}"),
    ];
    Ok(crate::server::release_response(move |progress| {
        Box::pin(async move {
            // Held until the push is decided; the spool until the load.
            let _busy = busy;
            for line in lines {
                progress(Event::Release { line });
            }
            let images = verified.manifest().images.len();
            progress(Event::Release {
                line: format!("loading {images} image(s) into the engine"),
            });
            let t = Instant::now();
            let applied = turtle_bundle::load(r.sup.engine(), verified)
                .await
                .map_err(load_error)?;
            drop(spool);
            progress(Event::Release {
                line: format!(
                    "{images} image(s) loaded in {} ms; pushing release of project {}",
                    t.elapsed().as_millis(),
                    applied.project.name
                ),
            });
            Control::push(&*r.sup, &applied.project, &opts, progress).await
        })
    }))
}

impl<E: Engine> Remote<E> {
    /// Room for the bundle and the reserve on the spool's disk; when the
    /// engine keeps its images on the same disk, room for its load too (it
    /// unpacks the whole archive before it registers a layer).
    async fn check_space(&self, len: u64) -> Result<(), RemoteError> {
        use std::os::unix::fs::MetadataExt;
        let mut need = Need::default();
        need.add("the bundle, received", len);
        let spool_dev = std::fs::metadata(&self.spool).map(|m| m.dev()).ok();
        if let Ok(root) = self.sup.engine().data_root().await
            && let Ok(m) = std::fs::metadata(&root)
            && Some(m.dev()) == spool_dev
        {
            need.add("the engine's load of it", len);
        }
        let (spool, reserve) = (self.spool.clone(), self.settings.reserve.clone());
        let checked =
            tokio::task::spawn_blocking(move || disk::check_path(&spool, &need, &reserve))
                .await
                .map_err(|e| RemoteError::Failed(format!("the space check failed: {e}")))?;
        match checked {
            Ok(_) => Ok(()),
            Err(e @ DiskError::NotEnough(_)) => Err(RemoteError::NoSpace(e.to_string())),
            Err(e) => Err(RemoteError::Failed(e.to_string())),
        }
    }

    /// Writes the body to a spool file of exactly `len` bytes; the file goes
    /// away when the returned handle is dropped.
    async fn receive(
        &self,
        body: Body,
        len: u64,
    ) -> Result<(tempfile::NamedTempFile, String), RemoteError> {
        let failed = |e: std::io::Error| {
            RemoteError::Failed(format!(
                "spooling the bundle in {}: {e}",
                self.spool.display()
            ))
        };
        let spool = tempfile::Builder::new()
            .prefix("bundle-")
            .tempfile_in(&self.spool)
            .map_err(failed)?;
        let mut file = tokio::fs::File::from_std(spool.reopen().map_err(failed)?);
        let mut stream = body.into_data_stream();
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        let cut = |got: u64, reason: String| RemoteError::Cut { got, len, reason };
        loop {
            let chunk = match tokio::time::timeout(BODY_IDLE_TIMEOUT, stream.next()).await {
                Err(_) => {
                    return Err(cut(
                        got,
                        format!("nothing arrived for {} s", BODY_IDLE_TIMEOUT.as_secs()),
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(cut(got, e.to_string())),
                Ok(Some(Ok(c))) => c,
            };
            got += chunk.len() as u64;
            if got > len {
                return Err(cut(got, "more bytes than announced".into()));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(failed)?;
        }
        if got != len {
            return Err(cut(got, "the connection closed".into()));
        }
        file.flush().await.map_err(failed)?;
        Ok((spool, hex::encode(hasher.finalize())))
    }
}

/// Who signed it and what it holds, for the progress lines and the log.
fn summary(v: &VerifiedFile, trust: &Trust) -> String {
    let m = v.manifest();
    let who = match v.signer() {
        Signer::Unsigned => "unsigned".to_string(),
        Signer::Key(k) if trust.is_empty() => format!(
            "signed by key {} (not checked: this box trusts no key, remote.allow_untrusted)",
            k.id()
        ),
        Signer::Key(k) => format!("signed by trusted key {}", k.id()),
    };
    format!(
        "{who}; project {}, {} image(s) for {}, {} part(s)",
        m.project.name,
        m.images.len(),
        m.architecture,
        m.parts.len()
    )
}

/// A failed verification: the check and its message, without the spool's
/// path (meaningless to the pushing side).
fn refused(e: &BundleError) -> RemoteError {
    match e {
        BundleError::Verify { source, .. } => RemoteError::Refused {
            check: check_name(source.check()),
            message: source.to_string(),
        },
        other => RemoteError::Failed(other.to_string()),
    }
}

/// A failed load, as the stream's error line.
fn load_error(e: BundleError) -> ControlError {
    let message = e.to_string();
    match e {
        BundleError::Verify { .. }
        | BundleError::Architecture { .. }
        | BundleError::Key(_)
        | BundleError::MissingLayers { .. } => ControlError::Invalid(message),
        BundleError::Engine(_) | BundleError::NotLoaded { .. } => ControlError::Engine(message),
        BundleError::Create { .. } | BundleError::Io { .. } => ControlError::Failed(message),
    }
}

/// The listener's settings from the config file, or `None` when
/// `remote.listen` is unset (remote push off).
pub fn settings(
    config: &turtle_runtime::config::Config,
    state_dir: &Path,
    device: Option<&turtle_runtime::device::Device>,
) -> Result<Option<Settings>, String> {
    let Some(listen) = config.remote.listen else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    for (i, text) in config.bundles.trusted_keys.iter().enumerate() {
        keys.push(
            text.parse::<turtle_bundle::PublicKey>()
                .map_err(|e| format!("bundles.trusted_keys[{i}]: {e}"))?,
        );
    }
    Ok(Some(Settings {
        listen,
        token: TokenFile::new(state_dir, config.remote.token_file.as_deref()),
        trust: Trust::new(keys),
        allow_untrusted: config.remote.allow_untrusted,
        max_bundle: config
            .remote
            .max_bundle
            .map_or(super::DEFAULT_MAX_BUNDLE, |b| b.bytes()),
        reserve: disk::reserve(&config.releases, device),
        state_dir: state_dir.to_path_buf(),
    }))
}
