//! The typed async client: one method per route of the api, the credentials the
//! api expects, ETags for what devices and the vpn poll, and errors that tell an
//! answer of the api from a failure to reach it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connect::{Connector, tls_config};
use crate::query::encode;
use crate::types::*;

/// Who the client calls as. Every route but the registry's token endpoint takes
/// `Authorization: Bearer <token or device key>`; the token endpoint takes HTTP
/// Basic (`admin:<admin-token>`, `builder:<builder-token>`, `<uuid>:<device
/// key>`). The api decides which credential each route accepts: a call with the
/// wrong one is [`Error::Status`] 401.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` (the public routes, registration).
    None,
    /// The admin token (`turtle secret admin-token` on the box).
    Admin(String),
    /// The builder's token.
    Builder(String),
    /// The vpn service's token (the peer list).
    Vpn(String),
    /// A registered device: its UUID and the key registration returned.
    Device { uuid: String, key: String },
}

impl Credentials {
    /// The credentials of a device as registration answered them.
    pub fn device(registered: &Registered) -> Credentials {
        Credentials::Device {
            uuid: registered.uuid.clone(),
            key: registered.device_key.clone(),
        }
    }

    /// The `Bearer` value, if any.
    fn bearer(&self) -> Option<&str> {
        match self {
            Credentials::None => None,
            Credentials::Admin(t) | Credentials::Builder(t) | Credentials::Vpn(t) => Some(t),
            Credentials::Device { key, .. } => Some(key),
        }
    }

    /// The HTTP Basic user and password of the registry's token endpoint, if the
    /// credential has one there (the vpn token has none).
    fn basic(&self) -> Option<(&str, &str)> {
        match self {
            Credentials::Admin(t) => Some(("admin", t)),
            Credentials::Builder(t) => Some(("builder", t)),
            Credentials::Device { uuid, key } => Some((uuid, key)),
            Credentials::None | Credentials::Vpn(_) => None,
        }
    }
}

/// Secrets stay out of logs.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Admin(_) => f.write_str("Admin(..)"),
            Credentials::Builder(_) => f.write_str("Builder(..)"),
            Credentials::Vpn(_) => f.write_str("Vpn(..)"),
            Credentials::Device { uuid, .. } => write!(f, "Device {{ uuid: {uuid:?}, .. }}"),
        }
    }
}

/// The answer of a conditional GET (`If-None-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conditional<T> {
    /// 200: the value, and its ETag to send next time.
    Modified { value: T, etag: Option<String> },
    /// 304: unchanged since the ETag sent (the api repeats it).
    NotModified { etag: Option<String> },
}

impl<T> Conditional<T> {
    /// The ETag of the answer.
    pub fn etag(&self) -> Option<&str> {
        match self {
            Conditional::Modified { etag, .. } | Conditional::NotModified { etag } => {
                etag.as_deref()
            }
        }
    }

    /// The value of a 200, `None` for a 304.
    pub fn modified(self) -> Option<T> {
        match self {
            Conditional::Modified { value, .. } => Some(value),
            Conditional::NotModified { .. } => None,
        }
    }
}

/// A page that is not JSON (the landing page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub content_type: Option<String>,
    pub text: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client cannot be built as asked (base URL, root CA).
    #[error("{0}")]
    Config(String),
    /// The api could not be reached, or the connection failed before its whole
    /// answer arrived (refused, reset, DNS, TLS: an untrusted certificate too).
    #[error("cannot reach the api at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// No whole answer within the client's timeout.
    #[error("the api at {url} did not answer within {} s", .timeout.as_secs_f32())]
    Timeout { url: String, timeout: Duration },
    /// The api answered with another status than the route's success: its
    /// `{"error"}` message (or the start of a body that is not one), the
    /// `WWW-Authenticate` challenge of a 401, and the `Retry-After` seconds of
    /// a 429 (a rate limit: send again after that long).
    #[error("{method} {url} answered {status}: {message}")]
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
        challenge: Option<String>,
        retry_after: Option<u64>,
    },
    /// A success whose body is not what the route answers (or too large).
    #[error("{method} {url} answered {status} with an unexpected body: {reason}")]
    Decode {
        method: String,
        url: String,
        status: u16,
        reason: String,
    },
}

impl Error {
    /// The HTTP status of an answer the api gave.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Config(_) | Error::Connect { .. } | Error::Timeout { .. } => None,
        }
    }

    /// The api's error message, for [`Error::Status`].
    pub fn api_message(&self) -> Option<&str> {
        match self {
            Error::Status { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge of a 401.
    pub fn challenge(&self) -> Option<&str> {
        match self {
            Error::Status { challenge, .. } => challenge.as_deref(),
            _ => None,
        }
    }

    /// The `Retry-After` of a 429 or 503, in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `Result` of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a [`Client`] is set up.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    root_ca_pem: Option<Vec<u8>>,
    credentials: Credentials,
    timeout: Duration,
    connect_timeout: Duration,
    max_answer_bytes: usize,
}

impl ClientBuilder {
    /// Trusts this root (PEM) and nothing else for `https`; an `https` base URL
    /// needs it (the stack serves it at `/ca.pem`; `turtle ca export` on the box).
    pub fn root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_ca_pem = Some(pem.into());
        self
    }

    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// The longest a call may take, answer read whole (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest a connection may take to open (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest answer read (default 64 MiB); a larger one is
    /// [`Error::Decode`].
    pub fn max_answer_bytes(mut self, bytes: usize) -> Self {
        self.max_answer_bytes = bytes;
        self
    }

    pub fn build(self) -> Result<Client> {
        let base = self.base.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|e| Error::Config(format!("the api URL {base:?} does not parse: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(Error::Config(format!(
                    "the api URL {base:?} must start with https:// or http://"
                )));
            }
        };
        if uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
            return Err(Error::Config(format!(
                "the api URL {base:?} must be scheme://host[:port][/path], such as \
                 https://api.turtle.local"
            )));
        }
        let tls = match &self.root_ca_pem {
            Some(pem) => Some(tls_config(pem).map_err(Error::Config)?),
            None if https => {
                return Err(Error::Config(format!(
                    "the api URL {base:?} is https: give the stack's root CA to trust \
                     (GET /ca.pem, or `turtle ca export` on the box)"
                )));
            }
            None => None,
        };
        let connector = Connector::new(tls, self.connect_timeout);
        Ok(Client {
            pool: Pool::builder(TokioExecutor::new()).build(connector),
            base: Arc::from(base),
            credentials: self.credentials,
            timeout: self.timeout,
            max_answer_bytes: self.max_answer_bytes,
        })
    }
}

/// A client of the api. Cheap to clone; clones share their connections.
#[derive(Clone)]
pub struct Client {
    pool: Pool<Connector, Full<Bytes>>,
    base: Arc<str>,
    credentials: Credentials,
    timeout: Duration,
    max_answer_bytes: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// A request on its way.
struct Call<'a> {
    method: Method,
    path: String,
    /// The `Accept` value: JSON but for the pages that are not.
    accept: &'static str,
    body: Option<Vec<u8>>,
    /// The body's `Content-Type`.
    content_type: &'static str,
    basic: bool,
    if_none_match: Option<&'a str>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Call {
            method,
            path: path.into(),
            accept: "application/json",
            body: None,
            content_type: "application/json",
            basic: false,
            if_none_match: None,
        }
    }

    fn json(mut self, body: &(impl Serialize + ?Sized)) -> Self {
        self.body = Some(serde_json::to_vec(body).expect("the api's bodies serialize"));
        self
    }
}

/// An answer read whole.
struct Answer {
    method: Method,
    url: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: hyper::header::HeaderName) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// [`Error::Status`] unless the status is `expected`.
    fn expect(self, expected: StatusCode) -> Result<Answer> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(self.status_error())
        }
    }

    /// The answer as [`Error::Status`]: the api's message, or the start of a
    /// body that is not an error answer.
    fn status_error(self) -> Error {
        let message = match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(e) => e.error,
            Err(_) => {
                let text = String::from_utf8_lossy(&self.body);
                let text = text.trim();
                if text.is_empty() {
                    "(no body)".to_string()
                } else {
                    text.chars().take(200).collect()
                }
            }
        };
        Error::Status {
            method: self.method.to_string(),
            challenge: self.header(WWW_AUTHENTICATE),
            retry_after: self.header(RETRY_AFTER).and_then(|v| v.trim().parse().ok()),
            url: self.url,
            status: self.status.as_u16(),
            message,
        }
    }

    fn decode_error(&self, reason: impl fmt::Display) -> Error {
        Error::Decode {
            method: self.method.to_string(),
            url: self.url.clone(),
            status: self.status.as_u16(),
            reason: reason.to_string(),
        }
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(e))
    }

    fn text(&self) -> Result<String> {
        String::from_utf8(self.body.to_vec()).map_err(|e| self.decode_error(e))
    }
}

impl Client {
    /// A client of the api at `base` (`https://api.<domain>[:port]`, or
    /// `http://host:port` inside the stack), calling without credentials.
    pub fn builder(base: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            root_ca_pem: None,
            credentials: Credentials::None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_answer_bytes: 64 << 20,
        }
    }

    /// A plain-`http` client with these credentials (an `https` base needs
    /// [`ClientBuilder::root_ca_pem`]).
    pub fn new(base: impl Into<String>, credentials: Credentials) -> Result<Client> {
        Client::builder(base).credentials(credentials).build()
    }

    /// The same client (connections, trust) calling with other credentials.
    pub fn with_credentials(&self, credentials: Credentials) -> Client {
        Client {
            credentials,
            ..self.clone()
        }
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    async fn send(&self, call: Call<'_>) -> Result<Answer> {
        let url = format!("{}{}", self.base, call.path);
        match tokio::time::timeout(self.timeout, self.send_inner(call, &url)).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::Timeout {
                url,
                timeout: self.timeout,
            }),
        }
    }

    async fn send_inner(&self, call: Call<'_>, url: &str) -> Result<Answer> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::Config(format!("the URL {url:?} does not parse: {e}")))?;
        let mut request = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(ACCEPT, call.accept);
        let authorization = if call.basic {
            self.credentials
                .basic()
                .map(|(user, password)| format!("Basic {}", base64(&format!("{user}:{password}"))))
        } else {
            self.credentials.bearer().map(|t| format!("Bearer {t}"))
        };
        if let Some(value) = authorization {
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                Error::Config("the credentials hold a character a header cannot carry".into())
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        if let Some(etag) = call.if_none_match {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let body = match call.body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, call.content_type);
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|e| Error::Config(format!("the request to {url} is not valid: {e}")))?;
        let connect_error = |e: &dyn std::error::Error| Error::Connect {
            url: url.to_string(),
            reason: error_chain(e),
        };
        let response = self
            .pool
            .request(request)
            .await
            .map_err(|e| connect_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), self.max_answer_bytes)
            .collect()
            .await;
        let answer = |body| Answer {
            method: call.method.clone(),
            url: url.to_string(),
            status,
            headers: headers.clone(),
            body,
        };
        match body {
            Ok(collected) => Ok(answer(collected.to_bytes())),
            Err(e) if e.is::<LengthLimitError>() => Err(answer(Bytes::new())
                .decode_error(format!("larger than {} bytes", self.max_answer_bytes))),
            Err(e) => Err(connect_error(e.as_ref())),
        }
    }

    /// Sends `call`, wants `expected`, reads the JSON answer.
    async fn json<T: DeserializeOwned>(&self, call: Call<'_>, expected: StatusCode) -> Result<T> {
        self.send(call).await?.expect(expected)?.json()
    }

    /// A conditional GET: 200 with the value, or 304 when `if_none_match` (the
    /// ETag of the last answer) still holds.
    async fn conditional<T: DeserializeOwned>(
        &self,
        path: &str,
        if_none_match: Option<&str>,
    ) -> Result<Conditional<T>> {
        let mut call = Call::new(Method::GET, path);
        call.if_none_match = if_none_match;
        let answer = self.send(call).await?;
        let etag = answer.header(ETAG);
        if answer.status == StatusCode::NOT_MODIFIED && if_none_match.is_some() {
            return Ok(Conditional::NotModified { etag });
        }
        let value = answer.expect(StatusCode::OK)?.json()?;
        Ok(Conditional::Modified { value, etag })
    }

    // Public routes.

    /// `GET /v1/health`: the api answers 200 with `ok` and 503 with `unhealthy`
    /// (the database does not answer); both are `Ok` here, any other answer an
    /// error.
    pub async fn health(&self) -> Result<Health> {
        let answer = self.send(Call::new(Method::GET, "/v1/health")).await?;
        let want = match answer.status {
            StatusCode::OK => HealthStatus::Ok,
            StatusCode::SERVICE_UNAVAILABLE => HealthStatus::Unhealthy,
            _ => return Err(answer.status_error()),
        };
        match answer.json::<Health>() {
            Ok(health) if health.status == want => Ok(health),
            Ok(health) => Err(answer.decode_error(format!(
                "status {:?} does not go with HTTP {}",
                health.status, answer.status
            ))),
            // A 503 that is not a health answer (a proxy's) is an error answer.
            Err(_) if want == HealthStatus::Unhealthy => Err(answer.status_error()),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/openapi.json`: the contract, with this stack's URL as its server.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.json(Call::new(Method::GET, "/v1/openapi.json"), StatusCode::OK)
            .await
    }

    /// `GET /ca.pem`: Turtle's root certificate (PEM).
    pub async fn ca_pem(&self) -> Result<String> {
        let mut call = Call::new(Method::GET, "/ca.pem");
        call.accept = "application/x-pem-file";
        self.send(call).await?.expect(StatusCode::OK)?.text()
    }

    /// `GET /`: the landing page (HTML).
    pub async fn landing_page(&self) -> Result<Page> {
        let mut call = Call::new(Method::GET, "/");
        call.accept = "text/html";
        let answer = self.send(call).await?.expect(StatusCode::OK)?;
        Ok(Page {
            content_type: answer.header(CONTENT_TYPE),
            text: answer.text()?,
        })
    }

    // Fleets and releases (admin).

    /// `POST /v1/fleets`.
    pub async fn create_fleet(&self, fleet: &NewFleet) -> Result<Fleet> {
        let call = Call::new(Method::POST, "/v1/fleets").json(fleet);
        self.json(call, StatusCode::CREATED).await
    }

    /// `GET /v1/fleets`, oldest first.
    pub async fn fleets(&self) -> Result<Vec<Fleet>> {
        self.json(Call::new(Method::GET, "/v1/fleets"), StatusCode::OK)
            .await
    }

    /// `GET /v1/fleets/{id}`.
    pub async fn fleet(&self, id: i64) -> Result<Fleet> {
        let call = Call::new(Method::GET, format!("/v1/fleets/{id}"));
        self.json(call, StatusCode::OK).await
    }

    /// `DELETE /v1/fleets/{id}`: with its releases and provisioning keys. A fleet
    /// that still has devices is 409 naming them: delete them first.
    pub async fn delete_fleet(&self, id: i64) -> Result<()> {
        let call = Call::new(Method::DELETE, format!("/v1/fleets/{id}"));
        self.send(call).await?.expect(StatusCode::NO_CONTENT)?;
        Ok(())
    }

    /// `PUT /v1/fleets/{id}/target`: pins a release (or unpins); answers the fleet.
    pub async fn set_target(&self, fleet: i64, target: &SetTarget) -> Result<Fleet> {
        let call = Call::new(Method::PUT, format!("/v1/fleets/{fleet}/target")).json(target);
        self.json(call, StatusCode::OK).await
    }

    /// `POST /v1/fleets/{id}/releases`.
    pub async fn create_release(&self, fleet: i64, release: &NewRelease) -> Result<Release> {
        let call = Call::new(Method::POST, format!("/v1/fleets/{fleet}/releases")).json(release);
        self.json(call, StatusCode::CREATED).await
    }

    /// `GET /v1/fleets/{id}/releases`, oldest first.
    pub async fn releases(&self, fleet: i64) -> Result<Vec<Release>> {
        let call = Call::new(Method::GET, format!("/v1/fleets/{fleet}/releases"));
        self.json(call, StatusCode::OK).await
    }

    /// `POST /v1/fleets/{id}/provisioning-keys`; `None` sends no body (every
    /// field takes its default).
    pub async fn create_provisioning_key(
        &self,
        fleet: i64,
        key: Option<&NewProvisioningKey>,
    ) -> Result<ProvisioningKey> {
        let mut call = Call::new(
            Method::POST,
            format!("/v1/fleets/{fleet}/provisioning-keys"),
        );
        if let Some(key) = key {
            call = call.json(key);
        }
        self.json(call, StatusCode::CREATED).await
    }

    /// `POST /v1/fleets/{id}/provisioning-config`: a new provisioning key in
    /// the one file a device joins the fleet with.
    pub async fn provisioning_config(
        &self,
        fleet: i64,
        config: &NewProvisioningConfig,
    ) -> Result<ProvisioningConfig> {
        let call = Call::new(
            Method::POST,
            format!("/v1/fleets/{fleet}/provisioning-config"),
        )
        .json(config);
        self.json(call, StatusCode::CREATED).await
    }

    /// `GET /v1/fleets/{id}/provisioning-keys`, oldest first, without the keys.
    pub async fn provisioning_keys(&self, fleet: i64) -> Result<Vec<ProvisioningKeyInfo>> {
        let call = Call::new(Method::GET, format!("/v1/fleets/{fleet}/provisioning-keys"));
        self.json(call, StatusCode::OK).await
    }

    /// `DELETE /v1/fleets/{id}/provisioning-keys/{key}`: the key registers no
    /// more devices; the devices it registered stay.
    pub async fn delete_provisioning_key(&self, fleet: i64, key: i64) -> Result<()> {
        let call = Call::new(
            Method::DELETE,
            format!("/v1/fleets/{fleet}/provisioning-keys/{key}"),
        );
        self.send(call).await?.expect(StatusCode::NO_CONTENT)?;
        Ok(())
    }

    // The builder (a client whose base is the builder's URL,
    // `https://builder.<domain>[:port]`, with the builder or admin token).

    /// `POST /v1/builds?tag=..&dockerfile=..` with the build context (a
    /// tar): the builder builds it on the box's engine and pushes it to the
    /// stack's registry under each tag (`<fleet>/<name>[:tag]`); answers
    /// the pushed references by digest. The builder streams its log and
    /// ends with one result line; a failed build is [`Error::Status`] with
    /// the builder's message (status 200: the answer had begun).
    pub async fn build(
        &self,
        tags: &[String],
        dockerfile: &str,
        context: Vec<u8>,
    ) -> Result<Built> {
        let mut query: Vec<String> = tags.iter().map(|t| format!("tag={}", encode(t))).collect();
        query.push(format!("dockerfile={}", encode(dockerfile)));
        let mut call = Call::new(Method::POST, format!("/v1/builds?{}", query.join("&")));
        call.accept = "application/x-ndjson";
        call.body = Some(context);
        call.content_type = "application/x-tar";
        let answer = self.send(call).await?.expect(StatusCode::OK)?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let fail = |message: String| Error::Status {
            method: "POST".into(),
            url: format!("{}/v1/builds", self.base),
            status: 200,
            message,
            challenge: None,
            retry_after: None,
        };
        let v: serde_json::Value = serde_json::from_str(last)
            .map_err(|_| fail(format!("the build's answer ended without a result: {last}")))?;
        if let Some(e) = v["error"].as_str() {
            return Err(fail(e.to_string()));
        }
        serde_json::from_value(v).map_err(|e| fail(format!("the build's result: {e}")))
    }

    // Devices.

    /// `POST /v1/devices/register`: needs no credentials (the provisioning key is
    /// in the body). [`Credentials::device`] makes the answer a credential.
    /// A registration sent again with the identity of a registered device
    /// (`uuid` and `device_key`) answers that device (200, not 201).
    pub async fn register(&self, registration: &Registration) -> Result<Registered> {
        let call = Call::new(Method::POST, "/v1/devices/register").json(registration);
        let answer = self.send(call).await?;
        if answer.status == StatusCode::OK {
            answer.json()
        } else {
            answer.expect(StatusCode::CREATED)?.json()
        }
    }

    /// `GET /v1/devices`, in order of registration (admin).
    pub async fn devices(&self) -> Result<Vec<Device>> {
        self.json(Call::new(Method::GET, "/v1/devices"), StatusCode::OK)
            .await
    }

    /// `GET /v1/devices/{uuid}` (admin).
    pub async fn device(&self, uuid: &str) -> Result<Device> {
        let call = Call::new(Method::GET, format!("/v1/devices/{}", encode(uuid)));
        self.json(call, StatusCode::OK).await
    }

    /// `DELETE /v1/devices/{uuid}` (admin): revokes the device at once: its key
    /// stops working on every route, its VPN peer leaves the peer list, its
    /// logs go with it.
    pub async fn delete_device(&self, uuid: &str) -> Result<()> {
        let call = Call::new(Method::DELETE, format!("/v1/devices/{}", encode(uuid)));
        self.send(call).await?.expect(StatusCode::NO_CONTENT)?;
        Ok(())
    }

    /// `GET /v1/devices/{uuid}/logs` (admin): see [`LogQuery`].
    pub async fn device_logs(&self, uuid: &str, query: &LogQuery) -> Result<Vec<LogLine>> {
        let mut path = format!("/v1/devices/{}/logs", encode(uuid));
        let query = query.to_query();
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query);
        }
        self.json(Call::new(Method::GET, path), StatusCode::OK)
            .await
    }

    // A device's own calls (device credentials).

    /// `GET /v1/device/target`: the calling device's fleet and target release;
    /// with the ETag of the last answer, [`Conditional::NotModified`] while it
    /// holds.
    pub async fn target(&self, if_none_match: Option<&str>) -> Result<Conditional<Target>> {
        self.conditional("/v1/device/target", if_none_match).await
    }

    /// `GET /v1/device/target?wait=N`: a long-poll. With `if_none_match`
    /// naming the current target, the api answers as soon as the fleet's
    /// target moves, or 304 after `wait` (at most 60 s). The client's
    /// timeout must be longer than `wait`.
    pub async fn target_wait(
        &self,
        if_none_match: Option<&str>,
        wait: Duration,
    ) -> Result<Conditional<Target>> {
        let path = format!("/v1/device/target?wait={}", wait.as_secs());
        self.conditional(&path, if_none_match).await
    }

    /// `PUT /v1/device/state`: `report` must be a JSON object of at most 64 KiB
    /// (the api answers 400 or 413 otherwise); it is kept as the device's last
    /// report. Reports are rate-limited per device: 429 with
    /// [`Error::retry_after`].
    pub async fn report_state<T: Serialize + ?Sized>(&self, report: &T) -> Result<()> {
        let call = Call::new(Method::PUT, "/v1/device/state").json(report);
        self.send(call).await?.expect(StatusCode::NO_CONTENT)?;
        Ok(())
    }

    /// `POST /v1/device/logs`: at most 5,000 lines a call, within the device's
    /// log budget (429 with [`Error::retry_after`] past it).
    pub async fn post_logs(&self, lines: &[LogLineIn]) -> Result<()> {
        let call = Call::new(Method::POST, "/v1/device/logs").json(lines);
        self.send(call).await?.expect(StatusCode::NO_CONTENT)?;
        Ok(())
    }

    // The registry and the VPN.

    /// `GET /v1/registry/token`, with the credentials as HTTP Basic (see
    /// [`Credentials`]).
    pub async fn registry_token(&self, query: &RegistryTokenQuery) -> Result<RegistryToken> {
        let mut path = "/v1/registry/token".to_string();
        let query = query.to_query();
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query);
        }
        let mut call = Call::new(Method::GET, path);
        call.basic = true;
        self.json(call, StatusCode::OK).await
    }

    /// `GET /v1/vpn/peers` (vpn or admin token): every device with a tunnel; with
    /// the ETag of the last answer, [`Conditional::NotModified`] while it holds.
    pub async fn vpn_peers(&self, if_none_match: Option<&str>) -> Result<Conditional<Peers>> {
        self.conditional("/v1/vpn/peers", if_none_match).await
    }

    /// `GET /v1/vpn` (any credential): the VPN server's identity.
    pub async fn vpn_info(&self) -> Result<VpnInfo> {
        self.json(Call::new(Method::GET, "/v1/vpn"), StatusCode::OK)
            .await
    }
}

/// An error and its sources, joined (hyper's own message is often just "client
/// error (Connect)").
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

/// Standard base64 with padding (RFC 4648), for HTTP Basic.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain), encoded, "{plain:?}");
        }
    }

    #[test]
    fn credentials_as_bearer_and_basic() {
        let device = Credentials::Device {
            uuid: "u".into(),
            key: "k".into(),
        };
        assert_eq!(device.bearer(), Some("k"));
        assert_eq!(device.basic(), Some(("u", "k")));
        assert_eq!(Credentials::Admin("a".into()).basic(), Some(("admin", "a")));
        assert_eq!(
            Credentials::Builder("b".into()).basic(),
            Some(("builder", "b"))
        );
        assert_eq!(Credentials::Vpn("v".into()).bearer(), Some("v"));
        assert_eq!(Credentials::Vpn("v".into()).basic(), None);
        assert_eq!(Credentials::None.bearer(), None);
        assert_eq!(
            format!("{device:?} {:?}", Credentials::Admin("secret".into())),
            "Device { uuid: \"u\", .. } Admin(..)"
        );
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            Client::new("http://api:8080/", Credentials::None)
                .unwrap()
                .base(),
            "http://api:8080"
        );
        for bad in ["api:8080", "ftp://api", "http://", "http://api?x=1", ""] {
            assert!(
                matches!(Client::new(bad, Credentials::None), Err(Error::Config(_))),
                "{bad}"
            );
        }
        let e = Client::new("https://api.turtle.local", Credentials::None).unwrap_err();
        assert!(e.to_string().contains("root CA"), "{e}");
        let e = Client::builder("https://api.turtle.local")
            .root_ca_pem("not pem")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }
}
