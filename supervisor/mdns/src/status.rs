//! What the publisher reports: names, conflicts, errors.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What is published, as [`Publisher::status`] reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdnsStatus {
    /// Whether the names are being published.
    pub publishing: bool,
    /// Why not, when `publishing` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub domain: String,
    /// One per published name (the domain first).
    pub names: Vec<NameStatus>,
    /// The `_turtle._tcp` instance (its full name, e.g. `vm._turtle._tcp.local`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<NameStatus>,
    /// The addresses announced: those of the interfaces used, as the daemon
    /// sees them (IPv6 link-local ones included).
    pub addresses: Vec<IpAddr>,
    /// The interfaces used (up, not point-to-point, allowed by the filter).
    pub interfaces: Vec<String>,
    /// Every rename the daemon made, per original name and interface.
    pub conflicts: Vec<Conflict>,
    /// The daemon's latest errors, newest last.
    pub errors: Vec<String>,
}

/// One requested name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameStatus {
    /// The name asked for.
    pub name: String,
    /// The name actually held: `name`, or what the daemon renamed it to after
    /// a conflict.
    pub held: String,
    /// Whether probing finished and the daemon announced it on an interface.
    pub announced: bool,
    /// Another host held `name` when we probed for it.
    pub conflict: bool,
    /// When the conflict was detected (Unix milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict_at_ms: Option<i64>,
}

/// A rename after a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub original: String,
    pub renamed_to: String,
    /// The record types renamed (`A`, `AAAA`, `SRV`, `TXT`).
    pub records: Vec<String>,
    pub interface: String,
    pub detected_at_ms: i64,
}

/// Milliseconds since the Unix epoch (when a conflict was seen).
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
