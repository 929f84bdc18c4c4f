//! The types that cross the daemon's socket, in one place: what each verb
//! sends and gets back. Most are the runtime's own types, serialized as
//! they are; the ones here exist only on the wire.

use serde::{Deserialize, Serialize};

pub use turtle_compose::{Project, ProjectName, ServiceName};
pub use turtle_mdns::MdnsStatus;
pub use turtle_reconcile::plan::Plan;
pub use turtle_runtime::apply::{Event, Report};
pub use turtle_runtime::release::{PushOptions, Release};
pub use turtle_runtime::shed::DeviceReport;
pub use turtle_runtime::store::EventRecord;
pub use turtle_runtime::supervisor::{
    ContainerStatus, DownReport, ExecRequest, ExecResult, ProjectStatus, ServiceAction, UpOptions,
};

use crate::ControlError;

/// `GET /v1/ping`: who answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub version: String,
    /// The build id of the supervisor's executable: the images it builds
    /// carry it (see `turtle_runtime::images`).
    pub build_id: String,
    /// Full resyncs the keep-alive loop has done since start.
    pub resyncs: u64,
}

/// One line of the `PUT /v1/projects/{name}` stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyLine {
    Event(Event),
    Done(Report),
    Error(ControlError),
}

/// One line of the push and rollback streams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseLine {
    Event(Event),
    Done(Box<Release>),
    Error(ControlError),
}

/// The body of `POST /v1/projects/{name}/releases`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushRequest {
    pub project: Project,
    #[serde(default)]
    pub options: PushOptions,
}

/// The body of `POST /v1/projects/{name}/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RollbackRequest {
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub options: PushOptions,
}

/// Which output `logs` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
    /// Keep following the output.
    #[serde(default)]
    pub follow: bool,
    /// Lines from the end of each container's output.
    pub tail: Option<u64>,
    /// Only these services (all when empty); comma-separated on the wire.
    #[serde(default, with = "comma_list")]
    pub services: Vec<String>,
}

/// Which events `events` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// After the past ones, keep sending new events as they are recorded.
    #[serde(default)]
    pub follow: bool,
    /// Only events with a greater id (else the most recent `limit`).
    pub after: Option<i64>,
    /// How many past events, at most (default 100).
    pub limit: Option<i64>,
}

/// `a,b` <-> `["a", "b"]` (a query string has no lists).
mod comma_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.join(","))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.split(',')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect())
    }
}
