//! Driving the Turtle supervisor: one trait, [`Control`], for every verb.
//!
//! The CLI talks to a [`Control`] and does not know which one: the daemon
//! through its unix socket ([`client::Client`]) or a supervisor in its own
//! process (`turtle_runtime::supervisor::Supervisor`, implemented in
//! [`local`]). So each verb is written once, its requests, answers and
//! errors are typed end to end ([`wire`], [`ControlError`]), and nothing
//! goes typed -> JSON value -> bytes -> JSON value -> typed.
//!
//! The daemon serves a [`Control`] on its socket ([`server`]): the same
//! in-process supervisor the CLI would otherwise use, so the socket is a
//! transport and adds no behaviour of its own.
//!
//! When the box's config asks for it, the daemon also serves remote pushes
//! on TCP ([`remote`]): TLS, a token, and a signed bundle that is verified,
//! loaded and handed to [`Control::push`]; nothing else of the API.
//!
//! # Design
//!
//! - Methods return boxed futures and streams, so `dyn Control` works: the
//!   CLI picks its target at run time, and a box per call costs nothing
//!   next to a Docker round trip.
//! - Errors keep their kind across the socket: the server turns a kind into
//!   an HTTP status, the client turns the status back into the kind
//!   ([`ControlError::status`], [`ControlError::from_status`]), and the
//!   message travels as `{"error": "..."}`.
//! - Names are typed ([`wire::ProjectName`], [`wire::ServiceName`]): the
//!   server parses the ones in a request's path and body before calling
//!   anything, and refuses the rest with 422 and the rule they break.
//! - Servers take their listener and shutdown signal as arguments
//!   ([`server::serve`]), so tests bind a temporary socket and stop cleanly.

pub mod client;
mod error;
pub mod local;
pub mod remote;
pub mod server;
pub mod wire;

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;

pub use error::ControlError;
use wire::{
    DeviceReport, DownReport, Event, EventRecord, EventsQuery, ExecRequest, ExecResult, LogsQuery,
    MdnsStatus, Ping, Plan, Project, ProjectName, ProjectStatus, PushOptions, Release, Report,
    ServiceAction, ServiceName, UpOptions,
};

pub type Result<T, E = ControlError> = std::result::Result<T, E>;
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;
/// Where `up` reports its progress as it goes.
pub type Progress<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// Every operation of the supervisor that a verb can ask for.
pub trait Control: Send + Sync {
    /// Who answers: version, build id, resyncs.
    fn ping(&self) -> BoxFuture<'_, Result<Ping>>;
    /// Every project Turtle manages on this engine.
    fn projects(&self) -> BoxFuture<'_, Result<Vec<ProjectStatus>>>;
    /// One project's containers.
    fn status<'a>(&'a self, project: &'a ProjectName) -> BoxFuture<'a, Result<ProjectStatus>>;
    /// What `up` would do, without doing it.
    fn plan<'a>(&'a self, project: &'a Project) -> BoxFuture<'a, Result<Plan>>;
    /// Applies `project` and keeps it alive from then on.
    fn up<'a>(
        &'a self,
        project: &'a Project,
        opts: &'a UpOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Report>>;
    /// Makes a release of `project` (its images built and pinned) and
    /// applies it through the health gate; a release that fails the gate is
    /// rolled back, and the answer's outcome says so.
    fn push<'a>(
        &'a self,
        project: &'a Project,
        opts: &'a PushOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Release>>;
    /// Returns to release `to` (an ID or unique prefix; default the one
    /// before the current) through the same path as a push.
    fn rollback<'a>(
        &'a self,
        project: &'a ProjectName,
        to: Option<&'a str>,
        opts: &'a PushOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Release>>;
    /// The project's releases, newest first, with their outcomes.
    fn releases<'a>(&'a self, project: &'a ProjectName) -> BoxFuture<'a, Result<Vec<Release>>>;
    /// Removes the project's containers and networks (and named volumes
    /// with `volumes`).
    fn down<'a>(
        &'a self,
        project: &'a ProjectName,
        volumes: bool,
    ) -> BoxFuture<'a, Result<DownReport>>;
    /// Starts, stops or restarts a service; answers the containers acted on.
    fn service_action<'a>(
        &'a self,
        project: &'a ProjectName,
        service: &'a ServiceName,
        action: ServiceAction,
    ) -> BoxFuture<'a, Result<Vec<String>>>;
    /// Runs a command in a running container of a service and answers its
    /// exit code and output (no terminal, no standard input).
    fn exec<'a>(
        &'a self,
        project: &'a ProjectName,
        service: &'a ServiceName,
        request: &'a ExecRequest,
    ) -> BoxFuture<'a, Result<ExecResult>>;
    /// The project's container output as `service-n | line` lines.
    fn logs<'a>(
        &'a self,
        project: &'a ProjectName,
        query: &'a LogsQuery,
    ) -> BoxFuture<'a, Result<BoxStream<Result<String>>>>;
    /// The event log, and with `follow` the events recorded from now on.
    fn events<'a>(
        &'a self,
        query: &'a EventsQuery,
    ) -> BoxFuture<'a, Result<BoxStream<Result<EventRecord>>>>;
    /// What is published over mDNS, or why nothing is.
    fn names(&self) -> BoxFuture<'_, Result<MdnsStatus>>;
    /// The box's profile, temperatures and what is shed.
    fn device(&self) -> BoxFuture<'_, Result<DeviceReport>>;
}
