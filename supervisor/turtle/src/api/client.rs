//! A client of the daemon's API over its unix socket (what the CLI uses).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("turtle daemon not reachable at {socket}: {source}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the turtle daemon: {0}")]
    Http(String),
    /// The daemon answered with an error; its message is shown as it is.
    #[error("{message}")]
    Api { status: StatusCode, message: String },
}

pub struct Client {
    socket: PathBuf,
    /// The daemon's build id, from the ping that found it (see [`crate::images`]).
    build_id: Option<String>,
}

impl Client {
    /// A client for the daemon at `socket`, if one answers there.
    pub async fn connect(socket: &Path) -> Option<Client> {
        let mut c = Client {
            socket: socket.to_path_buf(),
            build_id: None,
        };
        // A live daemon answers at once; a stale socket or a wedged process
        // must not hang the CLI.
        let ping = c.json::<serde_json::Value>(Method::GET, "/v1/ping", None::<&()>);
        match tokio::time::timeout(std::time::Duration::from_secs(5), ping).await {
            Ok(Ok(v)) => {
                c.build_id = v["build_id"].as_str().map(String::from);
                Some(c)
            }
            _ => None,
        }
    }

    /// The build id of the daemon's executable: the images it builds carry it.
    pub fn build_id(&self) -> Option<&str> {
        self.build_id.as_deref()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::body::Incoming, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "turtle")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp.into_body());
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(ClientError::Api { status, message })
    }

    /// Sends a request and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("request bodies always serialize"));
        let bytes = self
            .send(method, path, body)
            .await?
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Http(format!("unexpected answer: {e}")))
    }

    /// Sends a request and yields the answer line by line as it streams.
    pub async fn lines<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<impl Stream<Item = Result<String, ClientError>> + use<B>, ClientError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("request bodies always serialize"));
        let incoming = self.send(method, path, body).await?;
        let frames = incoming.into_data_stream();
        let mut pending = Vec::new();
        Ok(frames.flat_map(move |frame| {
            let out: Vec<Result<String, ClientError>> = match frame {
                Err(e) => vec![Err(ClientError::Http(e.to_string()))],
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
}
