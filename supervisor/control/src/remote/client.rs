//! The pushing side: a client of another box's remote listener over TLS,
//! trusting that box's root alone, presenting its token.
//!
//! A bundle is sent as it is written ([`BundleBody`]): a blocking writer
//! feeds a bounded channel the request body reads, with the length given
//! up front, so the bundle is never written to a file on this side.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use super::{CurrentRelease, DEFAULT_PORT, ErrorBody, PushQuery, RemoteInfo};
use crate::wire::{Event, ProjectName, Release, ReleaseLine};
use crate::{ControlError, Progress};

/// How long connecting and the TLS handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The size of the chunks the bundle is sent in.
const CHUNK: usize = 256 << 10;

/// Why a remote call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL, the CA file or the token is not usable.
    #[error("{0}")]
    Config(String),
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error(
        "TLS with {url} failed: {reason}: is --ca the root of that box's CA (`turtle ca export` on it), and does the URL name the box by its domain or a LAN address?"
    )]
    Tls { url: String, reason: String },
    /// The box refused: its message, and the bundle check that failed.
    #[error("{url} refused ({status}): {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
        check: Option<String>,
    },
    /// The push was accepted and then failed on the box.
    #[error("{0}")]
    Failed(ControlError),
    #[error("writing the bundle: {0}")]
    Write(String),
    #[error("talking to {url}: {reason}")]
    Protocol { url: String, reason: String },
}

/// Writes a bundle (on a blocking thread); the error says why it could not.
pub type WriteBundle = Box<dyn FnOnce(&mut dyn Write) -> Result<(), String> + Send>;

/// A bundle to send: its exact length, and what writes it.
pub struct BundleBody {
    pub len: u64,
    pub write: WriteBundle,
}

/// Where `https://HOST[:PORT]` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A DNS name or an address (without brackets).
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `https://HOST[:PORT][/]`; the port defaults to [`DEFAULT_PORT`].
    pub fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::Config(format!(
                "{url:?} is not a box's address: {why} (expected https://BOX or https://BOX:PORT, e.g. https://vm.local:{DEFAULT_PORT})"
            ))
        };
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(bad("the scheme is not https"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("it has a path"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("it has a user part"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            host,
            port: authority.port_u16().unwrap_or(DEFAULT_PORT),
        })
    }
}

/// A client of one box's remote listener.
pub struct RemoteClient {
    url: String,
    target: Target,
    tls: Arc<rustls::ClientConfig>,
    token: String,
}

type Body = BoxBody<Bytes, std::io::Error>;

impl RemoteClient {
    /// A client for `url` trusting `root_pem` (the box's root) alone.
    pub fn new(url: &str, root_pem: &str, token: &str) -> Result<Self, Error> {
        let target = Target::parse(url)?;
        let tls = super::tls::client_config(root_pem)
            .map_err(|e| Error::Config(format!("the box's CA (--ca): {e}")))?;
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::Config(
                "the token is empty: `turtle remote token` on the box prints it".into(),
            ));
        }
        Ok(Self {
            url: format!("https://{}:{}", url_host(&target.host), target.port),
            target,
            tls,
            token: token.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the box accepts: its keys, architecture and limits.
    pub async fn info(&self) -> Result<RemoteInfo, Error> {
        let (status, body) = self.get("/v1/remote").await?;
        self.refused(status, &body)?;
        self.decode(&body)
    }

    /// The box's current release of `project` and its images' layers,
    /// `None` when it has none.
    pub async fn current_release(
        &self,
        project: &ProjectName,
    ) -> Result<Option<CurrentRelease>, Error> {
        let path = format!("/v1/projects/{}/release", crate::client::segment(project));
        let (status, body) = self.get(&path).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.refused(status, &body)?;
        self.decode(&body).map(Some)
    }

    /// Sends a bundle and follows the box's progress to the release.
    pub async fn push(
        &self,
        bundle: BundleBody,
        query: &PushQuery,
        progress: Progress<'_>,
    ) -> Result<Release, Error> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(8);
        let len = bundle.len;
        let started = Instant::now();
        let writer = tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
                sent: 0,
                closed: false,
            };
            let written = (bundle.write)(&mut w).and_then(|()| w.send().map_err(|e| e.to_string()));
            match written {
                Ok(()) => Ok(w.sent),
                // The connection went first: its error is the cause.
                Err(_) if w.closed => Err(None),
                Err(e) => {
                    // Ends the body with an error: the box sees a cut
                    // stream and loads nothing.
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.clone())));
                    Err(Some(e))
                }
            }
        });
        // `Expect: 100-continue`: the body starts once the box said it
        // wants it. A box that refuses (token, keys, size, room) answers
        // before reading anything, and that answer then reaches this side
        // whole, instead of a write failing on a connection the box closed.
        let go = Arc::new(tokio::sync::Notify::new());
        let waiting = {
            let go = go.clone();
            async move {
                go.notified().await;
                tokio_stream::wrappers::ReceiverStream::new(rx)
            }
        };
        let stream = futures_util::stream::once(waiting).flatten();
        let body: Body = BodyExt::boxed(StreamBody::new(stream));
        let path = format!("/v1/bundles?{}", crate::client::query(query));
        progress(Event::Release {
            line: format!("sending the bundle ({len} bytes) to {}", self.url),
        });
        let mut request = self
            .request(Method::POST, &path)
            .header(hyper::header::CONTENT_LENGTH, len)
            .header(hyper::header::CONTENT_TYPE, "application/vnd.turtle.bundle")
            .header(hyper::header::EXPECT, "100-continue")
            .body(body)
            .expect("a valid request");
        hyper::ext::on_informational(&mut request, move |r| {
            if r.status() == StatusCode::CONTINUE {
                go.notify_one();
            }
        });
        let sent = match self.connect().await {
            Ok((mut sender, conn)) => {
                let sent = sender
                    .send_request(request)
                    .await
                    .map_err(|e| self.protocol(e));
                if !sent.as_ref().is_ok_and(|r| r.status().is_success()) {
                    // The body will not be read: let go of it, and of the
                    // writer feeding it.
                    conn.abort();
                }
                sent
            }
            Err(e) => Err(e),
        };
        let written = writer.await.map_err(|e| Error::Write(e.to_string()))?;
        let response = match (sent, written) {
            // A bundle that could not be written is the cause, whatever
            // the connection did.
            (_, Err(Some(e))) => return Err(Error::Write(e)),
            (Err(e), _) => return Err(e),
            // The box answered before it had the whole body: a refusal.
            (Ok(r), Err(None)) if !r.status().is_success() => r,
            (Ok(_), Err(None)) => {
                return Err(self.protocol("the box accepted a bundle it did not read whole"));
            }
            (Ok(r), Ok(n)) => {
                if r.status().is_success() {
                    progress(Event::Release {
                        line: format!(
                            "sent {n} bytes in {} ms; the box verified the bundle",
                            started.elapsed().as_millis()
                        ),
                    });
                }
                r
            }
        };
        let status = response.status();
        if !status.is_success() {
            let body = self.collect(response.into_body()).await?;
            self.refused(status, &body)?;
            return Err(self.protocol(format!("unexpected status {status}")));
        }
        let mut pending = Vec::new();
        let mut frames = response.into_body().into_data_stream();
        while let Some(frame) = frames.next().await {
            let bytes = frame.map_err(|e| self.protocol(e))?;
            pending.extend_from_slice(&bytes);
            while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                match serde_json::from_slice::<ReleaseLine>(&line).map_err(|e| self.protocol(e))? {
                    ReleaseLine::Event(e) => progress(e),
                    ReleaseLine::Done(r) => return Ok(*r),
                    ReleaseLine::Error(e) => return Err(Error::Failed(e)),
                }
            }
        }
        Err(self.protocol(
            "the box closed the connection before the release was decided: `turtle releases` on the box says how it ended",
        ))
    }

    fn request(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(
                hyper::header::HOST,
                format!("{}:{}", url_host(&self.target.host), self.target.port),
            )
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Bytes), Error> {
        let body: Body = BodyExt::boxed(Empty::new().map_err(|never| match never {}));
        let request = self
            .request(Method::GET, path)
            .body(body)
            .expect("a valid request");
        let response = self.send(request).await?;
        let status = response.status();
        Ok((status, self.collect(response.into_body()).await?))
    }

    /// One request on a new connection.
    async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
        let (mut sender, _conn) = self.connect().await?;
        sender
            .send_request(request)
            .await
            .map_err(|e| self.protocol(e))
    }

    /// A new connection, and the task that drives it.
    async fn connect(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http1::SendRequest<Body>,
            tokio::task::JoinHandle<()>,
        ),
        Error,
    > {
        let connect = |reason: String| Error::Connect {
            url: self.url.clone(),
            reason,
        };
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((self.target.host.as_str(), self.target.port)),
        )
        .await
        .map_err(|_| connect(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())))?
        .map_err(|e| connect(e.to_string()))?;
        let name = ServerName::try_from(self.target.host.clone())
            .map_err(|e| Error::Config(format!("{}: {e}", self.target.host)))?;
        let tls = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_rustls::TlsConnector::from(self.tls.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| Error::Tls {
            url: self.url.clone(),
            reason: format!("no handshake within {} s", CONNECT_TIMEOUT.as_secs()),
        })?
        .map_err(|e| Error::Tls {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| self.protocol(e))?;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((sender, conn))
    }

    async fn collect(&self, body: hyper::body::Incoming) -> Result<Bytes, Error> {
        Ok(body
            .collect()
            .await
            .map_err(|e| self.protocol(e))?
            .to_bytes())
    }

    /// A refusal's message and check, for any status but success.
    fn refused(&self, status: StatusCode, body: &[u8]) -> Result<(), Error> {
        if status.is_success() {
            return Ok(());
        }
        let (message, check) = match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => (b.error, b.check),
            Err(_) => (String::from_utf8_lossy(body).into_owned(), None),
        };
        Err(Error::Refused {
            url: self.url.clone(),
            status: status.as_u16(),
            message,
            check,
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|e| self.protocol(format!("unexpected answer: {e}")))
    }

    fn protocol(&self, reason: impl std::fmt::Display) -> Error {
        Error::Protocol {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }
}

/// A host as it goes into a URL: an IPv6 address in brackets.
fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Sends what is written as body frames over a bounded channel.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
    buf: Vec<u8>,
    sent: u64,
    /// The request went away (the connection failed or the box answered).
    closed: bool,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.sent += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(Frame::data(Bytes::from(chunk))))
            .map_err(|_| {
                self.closed = true;
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the connection to the box closed while the bundle was sent",
                )
            })
    }
}

impl Write for ChannelWriter {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_box_and_a_port() {
        let t = Target::parse("https://vm.local").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("vm.local", DEFAULT_PORT));
        let t = Target::parse("https://10.0.0.5:9000/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("10.0.0.5", 9000));
        let t = Target::parse("https://[::1]:9000").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        for bad in [
            "http://vm.local",
            "vm.local",
            "https://vm.local/v1",
            "https://u@vm.local",
            "https://",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert!(e.to_string().contains("https://BOX"), "{bad}: {e}");
        }
    }
}
