//! [`Control`] through the daemon's unix socket: what the CLI uses when a
//! daemon answers.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{
    ApplyLine, DeviceReport, DownReport, EventRecord, EventsQuery, ExecRequest, ExecResult,
    LogsQuery, MdnsStatus, Ping, Plan, Project, ProjectName, ProjectStatus, PushOptions,
    PushRequest, Release, ReleaseLine, Report, RollbackRequest, ServiceAction, ServiceName,
    UpOptions,
};
use crate::{BoxFuture, BoxStream, Control, ControlError, Progress, Result};

/// A client of one daemon: at its unix socket, or over a connection a
/// [`Dialer`] opens (the parent reaching a device's daemon through the
/// VPN, TLS on top).
pub struct Client {
    transport: Transport,
    /// The daemon's build id, from the ping that found it.
    build_id: String,
}

/// A byte stream to a daemon.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Opens a new connection to a daemon, once per request.
pub type Dialer =
    std::sync::Arc<dyn Fn() -> BoxFuture<'static, std::io::Result<Box<dyn Io>>> + Send + Sync>;

enum Transport {
    Unix(PathBuf),
    Dial {
        /// The daemon as errors name it.
        what: String,
        dial: Dialer,
    },
}

impl Transport {
    fn name(&self) -> String {
        match self {
            Transport::Unix(p) => p.display().to_string(),
            Transport::Dial { what, .. } => what.clone(),
        }
    }

    async fn open(&self) -> std::io::Result<Box<dyn Io>> {
        match self {
            Transport::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await?)),
            Transport::Dial { dial, .. } => dial().await,
        }
    }
}

impl Client {
    /// A client of the daemon that `dial` reaches (`what` names it in
    /// errors), once it answered a ping.
    pub async fn dial(what: impl Into<String>, dial: Dialer) -> Result<Client> {
        let mut c = Client {
            transport: Transport::Dial {
                what: what.into(),
                dial,
            },
            build_id: String::new(),
        };
        c.build_id = c.ping().await?.build_id;
        Ok(c)
    }

    /// A client for the daemon at `socket`, if one answers there within 5 s.
    pub async fn connect(socket: &Path) -> Option<Client> {
        let mut c = Client {
            transport: Transport::Unix(socket.to_path_buf()),
            build_id: String::new(),
        };
        // A live daemon answers at once; a stale socket or a wedged process
        // must not hang the CLI.
        let ping = tokio::time::timeout(std::time::Duration::from_secs(5), c.ping());
        match ping.await {
            Ok(Ok(p)) => {
                c.build_id = p.build_id;
                Some(c)
            }
            _ => None,
        }
    }

    /// The build id of the daemon's executable: the images it builds carry it.
    pub fn build_id(&self) -> &str {
        &self.build_id
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::body::Incoming> {
        let unreachable = |detail: String| ControlError::DaemonUnreachable {
            socket: self.transport.name(),
            detail,
        };
        let stream = self
            .transport
            .open()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "turtle")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ControlError::Protocol(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ControlError::Protocol(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp.into_body());
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ControlError::Protocol(e.to_string()))?
            .to_bytes();
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        Err(ControlError::from_status(status.as_u16(), message))
    }

    /// Sends a request and decodes the JSON answer.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let body = body.map(|b| serde_json::to_vec(b).expect("request bodies always serialize"));
        let bytes = self
            .send(method, path, body)
            .await?
            .collect()
            .await
            .map_err(|e| ControlError::Protocol(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&bytes)
            .map_err(|e| ControlError::Protocol(format!("unexpected answer: {e}")))
    }

    /// Sends a request and yields the answer line by line as it streams.
    async fn lines(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<impl Stream<Item = Result<String>> + Send + use<>> {
        let incoming = self.send(method, path, body).await?;
        let mut pending = Vec::new();
        Ok(incoming.into_data_stream().flat_map(move |frame| {
            let out: Vec<Result<String>> = match frame {
                Err(e) => vec![Err(ControlError::Protocol(e.to_string()))],
                Ok(bytes) => {
                    pending.extend_from_slice(&bytes);
                    let mut lines = Vec::new();
                    while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        lines.push(Ok(
                            String::from_utf8_lossy(&line[..line.len() - 1]).into_owned()
                        ));
                    }
                    lines
                }
            };
            futures_util::stream::iter(out)
        }))
    }

    /// Sends a request whose answer is a stream of JSON lines.
    async fn json_lines<T: DeserializeOwned + Send + 'static>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<BoxStream<Result<T>>> {
        let lines = self.lines(method, path, body).await?;
        Ok(Box::pin(lines.map(|l| {
            serde_json::from_str(&l?)
                .map_err(|e| ControlError::Protocol(format!("unexpected answer: {e}")))
        })))
    }
}

impl Client {
    /// Sends a push or rollback and follows its stream to the release.
    async fn release_stream(
        &self,
        path: &str,
        body: Vec<u8>,
        progress: Progress<'_>,
    ) -> Result<Release> {
        let mut lines = self
            .json_lines::<ReleaseLine>(Method::POST, path, Some(body))
            .await?;
        while let Some(line) = lines.next().await {
            match line? {
                ReleaseLine::Event(e) => progress(e),
                ReleaseLine::Done(r) => return Ok(*r),
                ReleaseLine::Error(e) => return Err(e),
            }
        }
        Err(ControlError::Protocol(
            "the daemon closed the connection before the release was decided: see `turtle releases`".into(),
        ))
    }
}

/// An error answer: `{"error": "..."}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
}

/// A query string of a serializable struct (`a=1&b=x`).
pub(crate) fn query(q: &impl Serialize) -> String {
    let v = serde_json::to_value(q).expect("queries always serialize");
    let mut out = Vec::new();
    for (k, v) in v.as_object().into_iter().flatten() {
        let v = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(format!("{k}={}", percent_encode(&v)));
    }
    out.join("&")
}

/// Percent-encodes what is not unreserved in a query value (RFC 3986).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a path segment (a project or service name).
pub(crate) fn segment(s: &str) -> String {
    percent_encode(s)
}

impl Control for Client {
    fn ping(&self) -> BoxFuture<'_, Result<Ping>> {
        Box::pin(self.json(Method::GET, "/v1/ping", None::<&()>))
    }

    fn projects(&self) -> BoxFuture<'_, Result<Vec<ProjectStatus>>> {
        Box::pin(self.json(Method::GET, "/v1/projects", None::<&()>))
    }

    fn status<'a>(&'a self, project: &'a ProjectName) -> BoxFuture<'a, Result<ProjectStatus>> {
        Box::pin(async move {
            let path = format!("/v1/projects/{}", segment(project));
            self.json(Method::GET, &path, None::<&()>).await
        })
    }

    fn plan<'a>(&'a self, project: &'a Project) -> BoxFuture<'a, Result<Plan>> {
        Box::pin(async move {
            let path = format!("/v1/projects/{}/plan", segment(&project.name));
            self.json(Method::POST, &path, Some(project)).await
        })
    }

    fn up<'a>(
        &'a self,
        project: &'a Project,
        opts: &'a UpOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Report>> {
        Box::pin(async move {
            let mut path = format!(
                "/v1/projects/{}?build={}",
                segment(&project.name),
                opts.build
            );
            if let Some(w) = opts.wait {
                path.push_str(&format!("&wait={}", w.as_secs()));
            }
            let body = serde_json::to_vec(project).expect("projects always serialize");
            let mut lines = self
                .json_lines::<ApplyLine>(Method::PUT, &path, Some(body))
                .await?;
            while let Some(line) = lines.next().await {
                match line? {
                    ApplyLine::Event(e) => progress(e),
                    ApplyLine::Done(r) => return Ok(r),
                    ApplyLine::Error(e) => return Err(e),
                }
            }
            Err(ControlError::Protocol(
                "the daemon closed the connection before the project was applied".into(),
            ))
        })
    }

    fn push<'a>(
        &'a self,
        project: &'a Project,
        opts: &'a PushOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Release>> {
        Box::pin(async move {
            let path = format!("/v1/projects/{}/releases", segment(&project.name));
            let body = serde_json::to_vec(&PushRequest {
                project: project.clone(),
                options: opts.clone(),
            })
            .expect("requests always serialize");
            self.release_stream(&path, body, progress).await
        })
    }

    fn rollback<'a>(
        &'a self,
        project: &'a ProjectName,
        to: Option<&'a str>,
        opts: &'a PushOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Release>> {
        Box::pin(async move {
            let path = format!("/v1/projects/{}/rollback", segment(project));
            let body = serde_json::to_vec(&RollbackRequest {
                to: to.map(str::to_string),
                options: opts.clone(),
            })
            .expect("requests always serialize");
            self.release_stream(&path, body, progress).await
        })
    }

    fn releases<'a>(&'a self, project: &'a ProjectName) -> BoxFuture<'a, Result<Vec<Release>>> {
        Box::pin(async move {
            let path = format!("/v1/projects/{}/releases", segment(project));
            self.json(Method::GET, &path, None::<&()>).await
        })
    }

    fn down<'a>(
        &'a self,
        project: &'a ProjectName,
        volumes: bool,
    ) -> BoxFuture<'a, Result<DownReport>> {
        Box::pin(async move {
            let path = format!("/v1/projects/{}?volumes={volumes}", segment(project));
            self.json(Method::DELETE, &path, None::<&()>).await
        })
    }

    fn service_action<'a>(
        &'a self,
        project: &'a ProjectName,
        service: &'a ServiceName,
        action: ServiceAction,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let verb = match action {
                ServiceAction::Start => "start",
                ServiceAction::Stop => "stop",
                ServiceAction::Restart => "restart",
            };
            let path = format!(
                "/v1/projects/{}/services/{}/{verb}",
                segment(project),
                segment(service)
            );
            self.json(Method::POST, &path, None::<&()>).await
        })
    }

    fn exec<'a>(
        &'a self,
        project: &'a ProjectName,
        service: &'a ServiceName,
        request: &'a ExecRequest,
    ) -> BoxFuture<'a, Result<ExecResult>> {
        Box::pin(async move {
            let path = format!(
                "/v1/projects/{}/services/{}/exec",
                segment(project),
                segment(service)
            );
            self.json(Method::POST, &path, Some(request)).await
        })
    }

    fn logs<'a>(
        &'a self,
        project: &'a ProjectName,
        q: &'a LogsQuery,
    ) -> BoxFuture<'a, Result<BoxStream<Result<String>>>> {
        Box::pin(async move {
            let path = format!("/v1/projects/{}/logs?{}", segment(project), query(q));
            let lines = self.lines(Method::GET, &path, None).await?;
            let lines: BoxStream<Result<String>> = Box::pin(lines);
            Ok(lines)
        })
    }

    fn events<'a>(
        &'a self,
        q: &'a EventsQuery,
    ) -> BoxFuture<'a, Result<BoxStream<Result<EventRecord>>>> {
        Box::pin(async move {
            let path = format!("/v1/events?{}", query(q));
            self.json_lines(Method::GET, &path, None).await
        })
    }

    fn names(&self) -> BoxFuture<'_, Result<MdnsStatus>> {
        Box::pin(self.json(Method::GET, "/v1/names", None::<&()>))
    }

    fn device(&self) -> BoxFuture<'_, Result<DeviceReport>> {
        Box::pin(self.json(Method::GET, "/v1/device", None::<&()>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_carry_lists_and_escape_what_they_must() {
        let q = LogsQuery {
            follow: true,
            tail: None,
            services: vec!["web".into(), "db".into()],
        };
        assert_eq!(query(&q), "follow=true&services=web,db");
        let q = EventsQuery {
            follow: false,
            after: Some(7),
            limit: None,
        };
        assert_eq!(query(&q), "after=7&follow=false");
        assert_eq!(segment("../x y"), "..%2Fx%20y");
    }
}
