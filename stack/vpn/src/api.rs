//! The client of the api's `GET /v1/vpn/peers`: plain HTTP on the stack's
//! private network (hyper-util), `Authorization: Bearer <vpn-token>`, and a
//! conditional GET: the ETag of the last list goes out as `If-None-Match`,
//! so an unchanged list costs a 304 and no parsing.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{AUTHORIZATION, ETAG, IF_NONE_MATCH};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The path of the peer list under the api's base URL.
pub const PEERS_PATH: &str = "/v1/vpn/peers";

/// The longest a peer list may be (bytes); a bigger answer is refused.
const MAX_BODY: usize = 16 << 20;

/// The ETag side of a conditional GET, without IO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditional {
    etag: Option<String>,
}

/// What an answer means for the peer list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 304: the list we have is current.
    Unchanged,
    /// 200: a new list (its body follows).
    New,
}

impl Conditional {
    /// The `If-None-Match` value to send, if any.
    pub fn if_none_match(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// Takes in an answer's status and ETag header. A 200 remembers its ETag
    /// (or forgets the old one if it has none); a 304 is only valid when we
    /// asked conditionally. Other statuses are errors and change nothing.
    pub fn answer(&mut self, status: StatusCode, etag: Option<&str>) -> Option<Outcome> {
        match status {
            StatusCode::OK => {
                self.etag = etag.map(str::to_string);
                Some(Outcome::New)
            }
            StatusCode::NOT_MODIFIED if self.etag.is_some() => Some(Outcome::Unchanged),
            _ => None,
        }
    }

    /// Forgets the ETag, so the next GET fetches the whole list (after a
    /// body that could not be used).
    pub fn forget(&mut self) {
        self.etag = None;
    }
}

/// Why the peer list could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the api URL {0:?} is not a plain http:// URL (e.g. http://api:8080)")]
    Url(String),
    #[error("the api at {url} is not reachable: {reason}: is the api service running?")]
    Unreachable { url: String, reason: String },
    #[error("the api at {url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error(
        "the api at {url} refused the vpn token ({status}): --token-file must hold the api's vpn-token"
    )]
    Unauthorized { url: String, status: StatusCode },
    #[error("the api at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: StatusCode,
        message: String,
    },
    #[error("the api at {url}: reading the answer failed: {reason}")]
    Body { url: String, reason: String },
}

/// The peer-list client.
pub struct ApiClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    url: Uri,
    token: String,
    timeout: Duration,
    conditional: Conditional,
}

/// A fetched list: unchanged, or the body of a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Unchanged,
    New(Bytes),
}

impl ApiClient {
    /// A client for `base` (e.g. `http://api:8080`) with the vpn token.
    pub fn new(base: &str, token: &str, timeout: Duration) -> Result<ApiClient, ApiError> {
        let url: Uri = format!("{}{PEERS_PATH}", base.trim_end_matches('/'))
            .parse()
            .map_err(|_| ApiError::Url(base.to_string()))?;
        if url.scheme_str() != Some("http") || url.host().is_none() {
            return Err(ApiError::Url(base.to_string()));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        Ok(ApiClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            url,
            token: token.trim().to_string(),
            timeout,
            conditional: Conditional::default(),
        })
    }

    /// The URL of the peer list.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// See [`Conditional::forget`].
    pub fn forget_etag(&mut self) {
        self.conditional.forget();
    }

    /// GETs the peer list (conditionally once we have an ETag).
    pub async fn fetch(&mut self) -> Result<Fetched, ApiError> {
        let url = self.url.to_string();
        match tokio::time::timeout(self.timeout, self.fetch_inner(&url)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Timeout {
                url,
                secs: self.timeout.as_secs(),
            }),
        }
    }

    async fn fetch_inner(&mut self, url: &str) -> Result<Fetched, ApiError> {
        let mut req =
            Request::get(self.url.clone()).header(AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(etag) = self.conditional.if_none_match() {
            req = req.header(IF_NONE_MATCH, etag);
        }
        let req = req.body(Empty::new()).expect("a GET with valid headers");
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| ApiError::Unreachable {
                url: url.to_string(),
                reason: error_chain(&e),
            })?;
        let status = resp.status();
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ApiError::Body {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .to_bytes();
        match self.conditional.answer(status, etag.as_deref()) {
            Some(Outcome::Unchanged) => Ok(Fetched::Unchanged),
            Some(Outcome::New) => Ok(Fetched::New(body)),
            None if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                Err(ApiError::Unauthorized {
                    url: url.to_string(),
                    status,
                })
            }
            None => Err(ApiError::Status {
                url: url.to_string(),
                status,
                message: error_message(&body),
            }),
        }
    }
}

/// An error and its sources, joined (hyper's own message is often just
/// "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The `error` of a JSON error body, or the start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(e) = v["error"].as_str()
    {
        return e.to_string();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no body)".to_string()
    } else {
        text.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_of_a_200_goes_out_next_and_a_304_means_unchanged() {
        let mut c = Conditional::default();
        assert_eq!(c.if_none_match(), None);
        assert_eq!(c.answer(StatusCode::OK, Some("\"v1\"")), Some(Outcome::New));
        assert_eq!(c.if_none_match(), Some("\"v1\""));
        assert_eq!(
            c.answer(StatusCode::NOT_MODIFIED, None),
            Some(Outcome::Unchanged)
        );
        assert_eq!(c.if_none_match(), Some("\"v1\""), "a 304 keeps the ETag");
        assert_eq!(c.answer(StatusCode::OK, Some("\"v2\"")), Some(Outcome::New));
        assert_eq!(c.if_none_match(), Some("\"v2\""));
    }

    #[test]
    fn a_200_without_etag_forgets_the_old_one() {
        let mut c = Conditional::default();
        c.answer(StatusCode::OK, Some("\"v1\""));
        assert_eq!(c.answer(StatusCode::OK, None), Some(Outcome::New));
        assert_eq!(c.if_none_match(), None);
    }

    #[test]
    fn errors_and_unasked_304s_change_nothing() {
        let mut c = Conditional::default();
        assert_eq!(c.answer(StatusCode::NOT_MODIFIED, None), None);
        c.answer(StatusCode::OK, Some("\"v1\""));
        assert_eq!(c.answer(StatusCode::INTERNAL_SERVER_ERROR, None), None);
        assert_eq!(c.answer(StatusCode::UNAUTHORIZED, None), None);
        assert_eq!(c.if_none_match(), Some("\"v1\""));
        c.forget();
        assert_eq!(c.if_none_match(), None);
    }

    #[test]
    fn only_plain_http_urls() {
        let t = Duration::from_secs(1);
        let c = ApiClient::new("http://api:8080/", "tok\n", t).unwrap();
        assert_eq!(c.url().to_string(), "http://api:8080/v1/vpn/peers");
        assert_eq!(c.token, "tok");
        for bad in ["https://api:8080", "api:8080", "", "http://"] {
            assert!(
                matches!(ApiClient::new(bad, "t", t), Err(ApiError::Url(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"error":"db down: wait"}"#),
            "db down: wait"
        );
        assert_eq!(error_message(b"  oops \n"), "oops");
        assert_eq!(error_message(b""), "(no body)");
    }
}
