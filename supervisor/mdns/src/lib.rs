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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, IfPredicate, ServiceDaemon, ServiceInfo};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The service type of the stack itself; its instance carries the TXT entries.
pub const SERVICE_TYPE: &str = "_turtle._tcp.local.";

/// The service type of one instance per published name (its host is the name).
pub const ALIAS_TYPE: &str = "_turtle-alias._tcp.local.";

/// Interface name prefixes of container and VM plumbing, never published on
/// by default: Docker (`docker0`, `docker_gwbridge`, `br-<id>`, `veth*`),
/// libvirt, LXC/LXD, CNI, flannel, Calico, VXLAN, Podman, Cilium, Weave,
/// kube-router.
const CONTAINER_PREFIXES: &[&str] = &[
    "docker", "br-", "veth", "virbr", "lxcbr", "lxdbr", "cni", "flannel", "cali", "vxlan",
    "podman", "cilium", "weave", "kube-",
];

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

/// Publishes names on the LAN until [`Publisher::shutdown`] (or drop).
pub struct Publisher {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    status: watch::Sender<MdnsStatus>,
    /// What the daemon's interface predicate reads: `Some(names)` = only these.
    filter: Arc<RwLock<Option<Vec<String>>>>,
}

#[derive(Default)]
struct State {
    plan: Plan,
    daemon: Option<ServiceDaemon>,
    monitor: Option<JoinHandle<()>>,
    /// What the daemon has, by lowercase full service name.
    registered: BTreeMap<String, Spec>,
    /// Services (lowercase full names, as registered) the daemon announced.
    announced: BTreeSet<String>,
    conflicts: Vec<Conflict>,
    errors: VecDeque<String>,
    stopped: bool,
}

impl Publisher {
    /// Validates `cfg` and starts publishing (a domain outside `.local` starts
    /// nothing: see [`MdnsStatus::reason`]).
    pub fn start(cfg: MdnsConfig) -> Result<Self, MdnsError> {
        let plan = plan(&cfg)?;
        let (status, _) = watch::channel(MdnsStatus::default());
        let publisher = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                status,
                filter: Arc::default(),
            }),
        };
        publisher.apply(plan)?;
        Ok(publisher)
    }

    /// Replace the published set (names added/removed, TXT changed), unregistering what is gone.
    pub fn update(&self, cfg: MdnsConfig) -> Result<(), MdnsError> {
        let plan = plan(&cfg)?;
        self.apply(plan)
    }

    /// What is published: per requested name, the name actually held (differs after a conflict rename),
    /// a conflict flag + the time it was detected; the addresses being announced; the interfaces used.
    pub fn status(&self) -> MdnsStatus {
        self.shared.refresh();
        self.shared.status.borrow().clone()
    }

    /// The status, sent again whenever it changes (a conflict, an address, an
    /// announcement, an update).
    pub fn subscribe(&self) -> watch::Receiver<MdnsStatus> {
        self.shared.status.subscribe()
    }

    /// Sends goodbyes (unregister) and stops the daemon.
    pub fn shutdown(self) {
        self.stop();
    }

    fn apply(&self, plan: Plan) -> Result<(), MdnsError> {
        // Everything that can be refused is built before the daemon is touched.
        let wanted: BTreeMap<String, (Spec, ServiceInfo)> = plan
            .specs()
            .into_iter()
            .map(|spec| {
                let info = spec.info()?;
                Ok((info.get_fullname().to_lowercase(), (spec, info)))
            })
            .collect::<Result<_, MdnsError>>()?;

        let mut st = self.shared.lock();
        if let Plan::Publish(p) = &plan {
            let changed = {
                let mut filter = self
                    .shared
                    .filter
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                let changed = *filter != p.interfaces;
                *filter = p.interfaces.clone();
                changed
            };
            match &st.daemon {
                None => {
                    let (daemon, monitor) = start_daemon(&self.shared)?;
                    st.daemon = Some(daemon);
                    st.monitor = Some(monitor);
                    st.stopped = false;
                }
                // No selection added: the daemon applies its selections
                // again, so the predicate reads the new filter.
                Some(daemon) if changed => retry(|| daemon.disable_interface(Vec::<IfKind>::new()))
                    .map_err(|source| MdnsError::Daemon {
                        action: "select interfaces".into(),
                        source,
                    })?,
                Some(_) => {}
            }
        }

        let gone: Vec<String> = st
            .registered
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for fullname in gone {
            if let Some(daemon) = &st.daemon {
                // The receiver only reports NotFound/OK; the goodbye is sent either way.
                retry(|| daemon.unregister(&fullname)).map_err(|source| MdnsError::Daemon {
                    action: format!("unregister {fullname}"),
                    source,
                })?;
            }
            st.registered.remove(&fullname);
            st.announced.remove(&fullname);
        }
        for (fullname, (spec, info)) in wanted {
            if st.registered.get(&fullname) == Some(&spec) {
                continue;
            }
            let daemon = st
                .daemon
                .as_ref()
                .expect("a plan with services starts the daemon");
            retry(|| daemon.register(info.clone())).map_err(|source| MdnsError::Daemon {
                action: format!("register {fullname}"),
                source,
            })?;
            st.registered.insert(fullname, spec);
        }
        st.plan = plan;
        self.shared.publish(&st);
        Ok(())
    }

    /// Unregisters everything and stops the daemon; idempotent.
    fn stop(&self) {
        let (daemon, monitor) = {
            let mut st = self.shared.lock();
            if let Some(daemon) = &st.daemon {
                for fullname in st.registered.keys() {
                    if let Err(e) = daemon.unregister(fullname) {
                        tracing::warn!("mdns: cannot unregister {fullname}: {e}");
                    }
                }
            }
            st.registered.clear();
            st.announced.clear();
            st.stopped = true;
            self.shared.publish(&st);
            (st.daemon.take(), st.monitor.take())
        };
        let Some(daemon) = daemon else { return };
        // Commands run in order: the goodbyes go out before the daemon exits.
        let stopped = match daemon.shutdown() {
            Ok(done) => done.recv_timeout(SHUTDOWN_WAIT).is_ok(),
            Err(e) => {
                tracing::warn!("mdns: cannot stop the responder: {e}");
                false
            }
        };
        // The monitor thread ends when the daemon drops its event channel.
        if stopped && let Some(monitor) = monitor {
            let _ = monitor.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn refresh(&self) {
        let st = self.lock();
        self.publish(&st);
    }

    /// Recomputes the status (reading the interfaces now) and sends it to
    /// subscribers when it changed.
    fn publish(&self, st: &State) {
        let (interfaces, addresses) = match &st.plan {
            Plan::Publish(p) if !st.stopped => current_interfaces(p.interfaces.as_deref()),
            _ => (Vec::new(), Vec::new()),
        };
        let status = status_of(st, interfaces, addresses);
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            if changed {
                *current = status;
            }
            changed
        });
    }
}

/// Starts the daemon with our interface filter and a thread reading its events.
fn start_daemon(shared: &Arc<Shared>) -> Result<(ServiceDaemon, JoinHandle<()>), MdnsError> {
    let daemon = ServiceDaemon::new().map_err(MdnsError::Start)?;
    let refused = |action: &str| {
        let action = action.to_string();
        move |source| MdnsError::Daemon { action, source }
    };
    let setup = || {
        let filter = shared.filter.clone();
        let excluded = IfPredicate::new(move |intf| {
            let only = filter.read().unwrap_or_else(PoisonError::into_inner);
            !interface_allowed(only.as_deref(), &intf.name, intf.is_loopback())
        });
        retry(|| daemon.disable_interface(IfKind::Predicate(excluded.clone())))
            .map_err(refused("select interfaces"))?;
        let events = retry(|| daemon.monitor()).map_err(refused("report its events"))?;
        let weak = Arc::downgrade(shared);
        std::thread::Builder::new()
            .name("mdns-monitor".into())
            .spawn(move || follow(weak, events))
            .map_err(|e| MdnsError::Daemon {
                action: "start its monitor thread".into(),
                source: mdns_sd::Error::Msg(e.to_string()),
            })
    };
    match setup() {
        Ok(monitor) => Ok((daemon, monitor)),
        Err(e) => {
            let _ = daemon.shutdown();
            Err(e)
        }
    }
}

/// Retries a daemon command while its queue is full (`Error::Again`).
fn retry<T>(mut f: impl FnMut() -> mdns_sd::Result<T>) -> mdns_sd::Result<T> {
    for _ in 0..50 {
        match f() {
            Err(mdns_sd::Error::Again) => std::thread::sleep(Duration::from_millis(10)),
            other => return other,
        }
    }
    f()
}

/// The monitor thread: records conflicts, announcements, address changes
/// and errors until the daemon stops (or the publisher is gone).
fn follow(shared: Weak<Shared>, events: mdns_sd::Receiver<DaemonEvent>) {
    while let Ok(event) = events.recv() {
        // `Respond` comes with every answer sent: skip it without locking.
        if !matches!(
            event,
            DaemonEvent::NameChange(_)
                | DaemonEvent::Announce(..)
                | DaemonEvent::IpAdd(_)
                | DaemonEvent::IpDel(_)
                | DaemonEvent::Error(_)
        ) {
            continue;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut st = shared.lock();
        match event {
            DaemonEvent::NameChange(change) => {
                let record = change.rr_type.to_string();
                let record = record.trim_start_matches("TYPE_");
                if record_conflict(
                    &mut st.conflicts,
                    &change.original,
                    &change.new_name,
                    record,
                    &change.intf_name,
                    now_millis(),
                ) {
                    tracing::warn!(
                        original = %trim_dot(&change.original),
                        renamed_to = %trim_dot(&change.new_name),
                        interface = %change.intf_name,
                        "mdns name conflict: another host on the LAN already holds {}; publishing {} instead",
                        trim_dot(&change.original),
                        trim_dot(&change.new_name),
                    );
                }
            }
            DaemonEvent::Announce(fullname, _) => {
                if let Some(key) = registered_key(&st, &fullname) {
                    st.announced.insert(key);
                }
            }
            DaemonEvent::Error(e) => {
                tracing::warn!("mdns responder: {e}");
                st.errors.push_back(e.to_string());
                while st.errors.len() > ERRORS_KEPT {
                    st.errors.pop_front();
                }
            }
            _ => {}
        }
        shared.publish(&st);
    }
}

/// The registered service a daemon full name is (as registered or renamed).
fn registered_key(st: &State, fullname: &str) -> Option<String> {
    let name = fullname.to_lowercase();
    if st.registered.contains_key(&name) {
        return Some(name);
    }
    st.conflicts
        .iter()
        .find(|c| format!("{}.", c.renamed_to).eq_ignore_ascii_case(&name))
        .map(|c| format!("{}.", c.original).to_lowercase())
        .filter(|k| st.registered.contains_key(k))
}

/// Records one `NameChange`; true when it is news (not one more record type
/// of a rename already known), i.e. worth a warning.
fn record_conflict(
    conflicts: &mut Vec<Conflict>,
    original: &str,
    new_name: &str,
    record: &str,
    interface: &str,
    now_ms: i64,
) -> bool {
    let original = trim_dot(original).to_lowercase();
    let new_name = trim_dot(new_name).to_string();
    let existing = conflicts
        .iter_mut()
        .find(|c| c.original == original && c.interface == interface);
    match existing {
        Some(c) if c.renamed_to == new_name => {
            if !c.records.iter().any(|r| r == record) {
                c.records.push(record.to_string());
            }
            false
        }
        Some(c) => {
            // Renamed again (the first new name was taken too).
            c.renamed_to = new_name;
            c.records = vec![record.to_string()];
            c.detected_at_ms = now_ms;
            true
        }
        None => {
            conflicts.push(Conflict {
                original,
                renamed_to: new_name,
                records: vec![record.to_string()],
                interface: interface.to_string(),
                detected_at_ms: now_ms,
            });
            true
        }
    }
}

fn trim_dot(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

fn status_of(st: &State, interfaces: Vec<String>, addresses: Vec<IpAddr>) -> MdnsStatus {
    let conflicts = st.conflicts.clone();
    let errors = st.errors.iter().cloned().collect();
    let p = match &st.plan {
        Plan::Off { domain, reason } => {
            return MdnsStatus {
                publishing: false,
                reason: Some(reason.clone()),
                domain: domain.clone(),
                conflicts,
                errors,
                ..MdnsStatus::default()
            };
        }
        Plan::Publish(p) => p,
    };
    // A name is held as the newest rename of it on any interface.
    let name_status = |name: &str, announced: bool| {
        let last = conflicts
            .iter()
            .filter(|c| c.original.eq_ignore_ascii_case(name))
            .max_by_key(|c| c.detected_at_ms);
        NameStatus {
            name: name.to_string(),
            held: last.map_or_else(|| name.to_string(), |c| c.renamed_to.clone()),
            announced,
            conflict: last.is_some(),
            conflict_at_ms: last.map(|c| c.detected_at_ms),
        }
    };
    let announced = |spec: &Spec| st.announced.contains(&spec.key());
    let service_announced = announced(&p.service);
    let names = p
        .names
        .iter()
        .map(|n| {
            let alias = p.aliases.iter().find(|a| a.host == *n);
            let up = alias.is_some_and(announced) || (*n == p.domain && service_announced);
            name_status(n, up)
        })
        .collect();
    let service = name_status(trim_dot(&p.service.key()), service_announced);
    MdnsStatus {
        publishing: !st.stopped,
        reason: st
            .stopped
            .then(|| "the publisher was shut down".to_string()),
        domain: p.domain.clone(),
        names,
        service: Some(service),
        addresses,
        interfaces,
        conflicts,
        errors,
    }
}

/// The interfaces (and their addresses) the daemon uses: up, not
/// point-to-point (its own rules), and allowed by our filter.
fn current_interfaces(only: Option<&[String]>) -> (Vec<String>, Vec<IpAddr>) {
    let all = if_addrs::get_if_addrs().unwrap_or_default();
    let used: Vec<_> = all
        .iter()
        .filter(|i| {
            i.is_oper_up() && !i.is_p2p() && interface_allowed(only, &i.name, i.is_loopback())
        })
        .collect();
    let names: BTreeSet<String> = used.iter().map(|i| i.name.clone()).collect();
    let addrs: BTreeSet<IpAddr> = used.iter().map(|i| i.ip()).collect();
    (names.into_iter().collect(), addrs.into_iter().collect())
}

/// Whether names are published on interface `name`: with a list, only the
/// interfaces it names; without, every interface but loopback and container
/// or VM plumbing ([`CONTAINER_PREFIXES`]).
pub fn interface_allowed(only: Option<&[String]>, name: &str, is_loopback: bool) -> bool {
    match only {
        Some(list) => list.iter().any(|n| n == name),
        None => {
            !is_loopback && name != "lo" && !CONTAINER_PREFIXES.iter().any(|p| name.starts_with(p))
        }
    }
}

/// What a config asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    /// Nothing to publish, and why.
    Off {
        domain: String,
        reason: String,
    },
    Publish(Published),
}

impl Default for Plan {
    fn default() -> Self {
        Self::Off {
            domain: String::new(),
            reason: "not started".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Published {
    /// Normalized (lowercase, no trailing dot).
    domain: String,
    /// Normalized, deduplicated, the domain first.
    names: Vec<String>,
    service: Spec,
    aliases: Vec<Spec>,
    interfaces: Option<Vec<String>>,
}

impl Plan {
    fn specs(&self) -> Vec<Spec> {
        match self {
            Self::Off { .. } => Vec::new(),
            Self::Publish(p) => std::iter::once(p.service.clone())
                .chain(p.aliases.iter().cloned())
                .collect(),
        }
    }
}

/// One service to register.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    ty: &'static str,
    instance: String,
    /// The host name (no trailing dot): the daemon answers A/AAAA for it.
    host: String,
    port: u16,
    txt: Vec<(String, String)>,
}

impl Spec {
    /// The lowercase full service name with its trailing dot, as the daemon
    /// keys it (instances here have no dots to escape).
    fn key(&self) -> String {
        format!("{}.{}", self.instance, self.ty).to_lowercase()
    }

    fn info(&self) -> Result<ServiceInfo, MdnsError> {
        let info = ServiceInfo::new(
            self.ty,
            &self.instance,
            &format!("{}.", self.host),
            (),
            self.port,
            &self.txt[..],
        )
        .map_err(|e| MdnsError::InvalidName {
            name: self.host.clone(),
            reason: e.to_string(),
        })?;
        Ok(info.enable_addr_auto())
    }
}

/// Validates a config into what to register.
fn plan(cfg: &MdnsConfig) -> Result<Plan, MdnsError> {
    let raw = cfg.domain.trim();
    let domain = trim_dot(raw).to_lowercase();
    if domain.is_empty() {
        return Ok(Plan::Off {
            domain,
            reason: "no domain is set; set one ending in .local (e.g. vm.local) to publish".into(),
        });
    }
    if !domain.ends_with(".local") {
        return Ok(Plan::Off {
            reason: format!(
                "{domain} does not end in .local, and mDNS resolvers only ask for .local names; \
                 use a .local domain (e.g. vm.local) to publish"
            ),
            domain,
        });
    }
    check_name(&domain).map_err(|reason| MdnsError::InvalidName {
        name: raw.to_string(),
        reason,
    })?;

    let mut names = vec![domain.clone()];
    for raw in &cfg.names {
        let name = trim_dot(raw.trim()).to_lowercase();
        check_name(&name).map_err(|reason| MdnsError::InvalidName {
            name: raw.clone(),
            reason,
        })?;
        if name != domain && !name.ends_with(&format!(".{domain}")) {
            return Err(MdnsError::InvalidName {
                name: raw.clone(),
                reason: format!(
                    "it is not {domain} or a name under it; publish only the stack's own names"
                ),
            });
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }

    let mut keys = BTreeSet::new();
    for (key, value) in &cfg.txt {
        let bad = |reason: &str| MdnsError::InvalidTxt {
            key: key.clone(),
            reason: reason.to_string(),
        };
        if key.is_empty() {
            return Err(bad("the key is empty; give every entry a key"));
        }
        if !key.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'=') {
            return Err(bad("a key is printable ASCII without '='; rename the key"));
        }
        if key.len() + 1 + value.len() > 255 {
            return Err(bad("key=value is over 255 bytes; shorten the value"));
        }
        if !keys.insert(key.to_ascii_lowercase()) {
            return Err(bad(
                "the key appears twice (keys are case-insensitive); keep one",
            ));
        }
    }

    let spec = |ty, host: &str, txt| Spec {
        ty,
        instance: instance_name(host),
        host: host.to_string(),
        port: cfg.port,
        txt,
    };
    Ok(Plan::Publish(Published {
        service: spec(SERVICE_TYPE, &domain, cfg.txt.clone()),
        aliases: names
            .iter()
            .map(|n| spec(ALIAS_TYPE, n, Vec::new()))
            .collect(),
        names,
        domain,
        interfaces: cfg.interfaces.clone(),
    }))
}

/// The instance name of a host name: `api.vm.local` -> `api vm`. Host names
/// have no spaces, so this is one-to-one, and it has no dot for mdns-sd to
/// escape (its conflict renaming splits names at dots).
fn instance_name(host: &str) -> String {
    host.strip_suffix(".local")
        .unwrap_or(host)
        .replace('.', " ")
}

/// A normalized host name we can publish: under `.local`, labels of letters,
/// digits and hyphens.
fn check_name(name: &str) -> Result<(), String> {
    if !name.ends_with(".local") || name == ".local" {
        return Err("mDNS names end in .local with a label before it (e.g. api.vm.local)".into());
    }
    if name.len() > 253 {
        return Err("it is longer than 253 bytes; use a shorter name".into());
    }
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "label {label:?} is not 1 to 63 letters, digits or hyphens (not starting or ending \
                 with a hyphen); rename it"
            ));
        }
    }
    Ok(())
}

/// Milliseconds since the Unix epoch (when a conflict was seen).
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(domain: &str, names: &[&str]) -> MdnsConfig {
        MdnsConfig {
            domain: domain.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            port: 443,
            txt: vec![("api".into(), format!("https://api.{domain}"))],
            interfaces: None,
        }
    }

    fn published(cfg: &MdnsConfig) -> Published {
        match plan(cfg).expect("valid config") {
            Plan::Publish(p) => p,
            off => panic!("expected publishing, got {off:?}"),
        }
    }

    #[test]
    fn default_filter_skips_loopback_and_container_bridges() {
        for name in [
            "lo",
            "docker0",
            "docker_gwbridge",
            "br-1a2b3c4d5e6f",
            "veth12ab34c",
            "virbr0",
            "cni0",
            "flannel.1",
            "cali0123",
            "vxlan.calico",
            "podman0",
            "cilium_host",
            "kube-bridge",
        ] {
            assert!(!interface_allowed(None, name, false), "{name} is allowed");
        }
        // Loopback by flag, whatever its name.
        assert!(!interface_allowed(None, "lo0", true));
        for name in ["eth0", "enp3s0", "wlan0", "wlp2s0", "bond0", "tm1234a"] {
            assert!(interface_allowed(None, name, false), "{name} is refused");
        }
    }

    #[test]
    fn an_interface_list_allows_exactly_those() {
        let only = vec!["eth1".to_string(), "lo".to_string()];
        assert!(interface_allowed(Some(&only), "eth1", false));
        // Named explicitly: loopback and bridges too.
        assert!(interface_allowed(Some(&only), "lo", true));
        assert!(!interface_allowed(Some(&only), "eth0", false));
        assert!(!interface_allowed(Some(&[]), "eth0", false));
    }

    #[test]
    fn a_domain_outside_local_turns_publishing_off_with_the_reason() {
        let Plan::Off { domain, reason } =
            plan(&cfg("vm.example.com", &["api.vm.example.com"])).expect("not an error")
        else {
            panic!("publishing a non-.local domain");
        };
        assert_eq!(domain, "vm.example.com");
        assert!(reason.contains(".local"), "{reason}");

        let Plan::Off { reason, .. } = plan(&cfg("", &[])).unwrap() else {
            panic!("publishing with no domain");
        };
        assert!(reason.contains("no domain"), "{reason}");
    }

    #[test]
    fn publisher_with_a_non_local_domain_reports_why_and_starts_nothing() {
        let p = Publisher::start(cfg("vm.lan", &["api.vm.lan"])).expect("not an error");
        let s = p.status();
        assert!(!s.publishing);
        assert!(
            s.reason
                .as_deref()
                .unwrap()
                .contains("does not end in .local")
        );
        assert!(s.names.is_empty() && s.interfaces.is_empty() && s.addresses.is_empty());
        assert!(p.shared.lock().daemon.is_none());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["publishing"], false);
        assert!(json["reason"].as_str().unwrap().contains(".local"));
        p.shutdown();
    }

    #[test]
    fn names_are_normalized_deduplicated_and_the_domain_comes_first() {
        let p = published(&cfg(
            "VM.local.",
            &["api.vm.local", "API.vm.local.", "vm.local"],
        ));
        assert_eq!(p.domain, "vm.local");
        assert_eq!(p.names, ["vm.local", "api.vm.local"]);
        assert_eq!(p.aliases.len(), 2);
        assert_eq!(p.aliases[1].host, "api.vm.local");
        assert_eq!(p.aliases[1].instance, "api vm");
        assert_eq!(p.aliases[1].key(), "api vm._turtle-alias._tcp.local.");
        assert_eq!(p.service.host, "vm.local");
        assert_eq!(p.service.key(), "vm._turtle._tcp.local.");
        // TXT values are published as given.
        assert_eq!(
            p.service.txt,
            [("api".to_string(), "https://api.VM.local.".to_string())]
        );
        // The keys match what mdns-sd builds.
        for spec in std::iter::once(&p.service).chain(&p.aliases) {
            let info = spec.info().unwrap();
            assert_eq!(info.get_fullname().to_lowercase(), spec.key());
            assert_eq!(info.get_hostname(), format!("{}.", spec.host));
            assert!(info.is_addr_auto());
        }
    }

    #[test]
    fn malformed_names_are_refused_with_the_fix() {
        for bad in [
            "api.vm.com",
            "api..vm.local",
            "-api.vm.local",
            "api_x.vm.local",
            "other.local",
        ] {
            let err = plan(&cfg("vm.local", &[bad])).unwrap_err();
            assert!(
                matches!(&err, MdnsError::InvalidName { name, .. } if name == bad),
                "{bad}: {err}"
            );
        }
        let err = plan(&cfg("vm.local", &["other.local"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not vm.local or a name under it"), "{err}");
        let long = format!("{}.vm.local", "a".repeat(64));
        assert!(plan(&cfg("vm.local", &[&long])).is_err());
        assert!(matches!(
            plan(&cfg("bad_domain.local", &[])),
            Err(MdnsError::InvalidName { .. })
        ));
    }

    #[test]
    fn malformed_txt_is_refused() {
        for (key, value) in [
            ("", "x"),
            ("a=b", "x"),
            ("ké", "x"),
            ("k", &"v".repeat(254)),
        ] {
            let mut c = cfg("vm.local", &[]);
            c.txt = vec![(key.to_string(), value.to_string())];
            assert!(
                matches!(plan(&c), Err(MdnsError::InvalidTxt { .. })),
                "{key:?} accepted"
            );
        }
        let mut c = cfg("vm.local", &[]);
        c.txt = vec![("ca".into(), "1".into()), ("CA".into(), "2".into())];
        assert!(plan(&c).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn conflicts_merge_record_types_and_follow_renames() {
        let mut conflicts = Vec::new();
        assert!(record_conflict(
            &mut conflicts,
            "api.vm.local.",
            "api-2.vm.local.",
            "A",
            "eth0",
            10
        ));
        // The AAAA record of the same rename: no new warning.
        assert!(!record_conflict(
            &mut conflicts,
            "api.vm.local.",
            "api-2.vm.local.",
            "AAAA",
            "eth0",
            11
        ));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].records, ["A", "AAAA"]);
        assert_eq!(conflicts[0].renamed_to, "api-2.vm.local");
        // api-2 was taken too.
        assert!(record_conflict(
            &mut conflicts,
            "api.vm.local.",
            "api-3.vm.local.",
            "A",
            "eth0",
            20
        ));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].detected_at_ms, 20);
        // The same name on another interface is its own rename.
        assert!(record_conflict(
            &mut conflicts,
            "api.vm.local.",
            "api-2.vm.local.",
            "A",
            "eth1",
            30
        ));
        assert_eq!(conflicts.len(), 2);
    }

    #[test]
    fn status_shows_the_held_name_and_when_the_conflict_was_seen() {
        let p = published(&cfg("vm.local", &["api.vm.local"]));
        let mut st = State {
            registered: p.aliases.iter().map(|s| (s.key(), s.clone())).collect(),
            plan: Plan::Publish(p.clone()),
            ..State::default()
        };
        st.registered.insert(p.service.key(), p.service.clone());
        record_conflict(
            &mut st.conflicts,
            "api.vm.local.",
            "api-2.vm.local.",
            "A",
            "eth0",
            42,
        );
        record_conflict(
            &mut st.conflicts,
            "vm._turtle._tcp.local.",
            "vm (2)._turtle._tcp.local.",
            "SRV",
            "eth0",
            43,
        );
        // The daemon announces under the new name.
        let key = registered_key(&st, "vm (2)._turtle._tcp.local.").expect("renamed service");
        st.announced.insert(key);
        let key = registered_key(&st, "api vm._turtle-alias._tcp.local.").unwrap();
        st.announced.insert(key);

        let s = status_of(&st, vec!["eth0".into()], vec!["10.0.0.2".parse().unwrap()]);
        assert!(s.publishing);
        let vm = &s.names[0];
        assert_eq!(
            (vm.name.as_str(), vm.held.as_str(), vm.conflict),
            ("vm.local", "vm.local", false)
        );
        // The domain is the service's host: announced with it.
        assert!(vm.announced);
        let api = &s.names[1];
        assert_eq!(api.held, "api-2.vm.local");
        assert!(api.conflict && api.announced);
        assert_eq!(api.conflict_at_ms, Some(42));
        let service = s.service.as_ref().unwrap();
        assert_eq!(service.name, "vm._turtle._tcp.local");
        assert_eq!(service.held, "vm (2)._turtle._tcp.local");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["names"][1]["held"], "api-2.vm.local");
        assert_eq!(json["addresses"][0], "10.0.0.2");
        assert_eq!(json["conflicts"][0]["records"][0], "A");
    }
}
