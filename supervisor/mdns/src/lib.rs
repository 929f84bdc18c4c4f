//! The stack's names on the LAN, over multicast DNS (RFC 6762) and DNS-SD
//! (RFC 6763), so `https://api.vm.local` works from any machine on the link
//! with no DNS server.
//!
//! # Design
//!
//! One [`mdns_sd::ServiceDaemon`] (a pure Rust responder on its own thread; no
//! avahi, no D-Bus). mdns-sd answers A/AAAA queries only for the host name of
//! a registered service, so every published name is the host of a service of
//! its own: an instance of `_turtle-alias._tcp.local.` (a private type, so the
//! aliases do not clutter `_https._tcp` listings) named after it. One more
//! instance, of `_turtle._tcp.local.`, has the domain as its host and carries
//! the TXT entries (`api=...`, `ca=...`) a client needs to find and trust the
//! stack. Every service has no fixed address and `enable_addr_auto`: the daemon
//! fills in the addresses of the interfaces it uses and follows their changes
//! (it looks every 5 s).
//!
//! Interfaces: by default every interface except loopback and container
//! plumbing (`docker*`, `br-*`, `veth*` and other bridges of container and VM
//! runtimes, see [`interface_allowed`]); or only the ones the config names. The
//! filter is one predicate given to the daemon once; [`Publisher::update`]
//! swaps what it reads and asks the daemon to apply its selections again, so
//! an interface is never published on while a new selection is pieced together.
//!
//! Names must be unique on the link. The daemon probes each name before it
//! answers for it (three queries 250 ms apart); when another host already holds
//! it, the daemon renames ours (`api.vm.local` becomes `api-2.vm.local`, a
//! service instance `vm` becomes `vm (2)`), probes the new name and tells its
//! monitors with a [`mdns_sd::DaemonEvent::NameChange`] per record. A thread
//! reads those events: the conflict is logged (`tracing::warn!`, naming both
//! names) and kept in [`MdnsStatus`] (the name held, the time, the interface),
//! so it is never silently lost. The same thread follows address changes and
//! the daemon's announcements, and every change is sent to
//! [`Publisher::subscribe`]rs.
//!
//! A domain that does not end in `.local` is not refused: publishing is off
//! and [`MdnsStatus::reason`] says why (mDNS resolvers only ask for `.local`
//! names). A malformed name or TXT entry is an error.
//!
//! # Layout
//!
//! - [`Publisher`] (`publisher.rs`): the daemon, its event thread, and the
//!   status it keeps;
//! - `plan.rs`: what a config publishes (one alias service per name, the
//!   stack's service with its TXT), names and TXT checked first;
//! - `interfaces.rs`: which interfaces are published on
//!   ([`interface_allowed`]);
//! - `status.rs`: [`MdnsStatus`] and what it holds.
//!
//! # Limitations
//!
//! - mdns-sd looks for conflicts only while it probes: two hosts that already
//!   announced the same name (two networks joined later) both keep answering
//!   for it, and nothing is reported. A rename lasts as long as the daemon:
//!   the original name is not claimed back when the other host leaves
//!   (restart the publisher for that).
//! - mdns-sd renames `name-N` to `name-(N+1)`, not `name-N-2`: a stack named
//!   `vm-1.local` in conflict becomes `vm-2.local` (probed again first, so it
//!   is renamed once more if that name is taken too).
//! - Renames are per interface; [`NameStatus::held`] is the newest rename on
//!   any of them, and [`MdnsStatus::conflicts`] lists each interface.
//! - The daemon picks up the interfaces at start, before our filter reaches
//!   it: it joins the multicast group on every interface for a moment, though
//!   nothing is registered until the filter is in place.
//! - A daemon that cannot open its sockets (UDP port 5353 unusable) says so
//!   only in its debug log and starts anyway: the status then shows
//!   `publishing` with no name ever `announced`.
//! - The daemon reports to monitors through a bounded channel (100 events) and
//!   drops events when it is full; the thread here only takes a lock for the
//!   rare ones, so it keeps up, but a flood of queries could still cost one.

mod interfaces;
mod plan;
mod publisher;
mod status;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use interfaces::interface_allowed;
pub use publisher::Publisher;
pub use status::{Conflict, MdnsStatus, NameStatus};
#[cfg(test)]
use {plan::*, publisher::*};

/// The service type of the stack itself; its instance carries the TXT entries.
pub const SERVICE_TYPE: &str = "_turtle._tcp.local.";

/// The service type of one instance per published name (its host is the name).
pub const ALIAS_TYPE: &str = "_turtle-alias._tcp.local.";

/// Daemon errors kept in the status, newest last.
const ERRORS_KEPT: usize = 10;

/// How long [`Publisher::shutdown`] waits for the daemon to say it stopped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// What to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MdnsConfig {
    /// The stack's domain, e.g. `vm.local`: the host of the `_turtle._tcp`
    /// instance, so it is always published. Must end in `.local` to publish.
    pub domain: String,
    /// Full names to publish as A/AAAA: the domain and names under it, e.g.
    /// `["vm.local", "api.vm.local", "registry.vm.local"]`.
    pub names: Vec<String>,
    /// The port advertised in the DNS-SD services (443).
    pub port: u16,
    /// The TXT entries of the `_turtle._tcp.local.` instance, e.g.
    /// `api=https://api.vm.local`, `ca=<sha256 fingerprint>`.
    pub txt: Vec<(String, String)>,
    /// Only these interfaces; `None`: every interface except loopback and
    /// container bridges (see [`interface_allowed`]).
    pub interfaces: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    #[error("mdns name {name:?} cannot be published: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("mdns TXT entry {key:?} cannot be published: {reason}")]
    InvalidTxt { key: String, reason: String },
    #[error(
        "cannot start the mdns responder: {0}; check the process's thread and file descriptor limits"
    )]
    Start(#[source] mdns_sd::Error),
    #[error("the mdns responder refused to {action}: {source}; restart the publisher")]
    Daemon {
        action: String,
        #[source]
        source: mdns_sd::Error,
    },
}
