//! The publisher: one mdns-sd daemon, kept in step with the config, and
//! a thread that follows its events.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, IfPredicate, ServiceDaemon, ServiceInfo};
use tokio::sync::watch;

use crate::interfaces::{current_interfaces, interface_allowed};
use crate::plan::trim_dot;
use crate::plan::{Plan, Spec, plan};
use crate::status::{Conflict, MdnsStatus, NameStatus, now_millis};
use crate::{ERRORS_KEPT, MdnsConfig, MdnsError, SHUTDOWN_WAIT};

/// Publishes names on the LAN until [`Publisher::shutdown`] (or drop).
pub struct Publisher {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) status: watch::Sender<MdnsStatus>,
    /// What the daemon's interface predicate reads: `Some(names)` = only these.
    pub(crate) filter: Arc<RwLock<Option<Vec<String>>>>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) plan: Plan,
    pub(crate) daemon: Option<ServiceDaemon>,
    pub(crate) monitor: Option<JoinHandle<()>>,
    /// What the daemon has, by lowercase full service name.
    pub(crate) registered: BTreeMap<String, Spec>,
    /// Services (lowercase full names, as registered) the daemon announced.
    pub(crate) announced: BTreeSet<String>,
    pub(crate) conflicts: Vec<Conflict>,
    pub(crate) errors: VecDeque<String>,
    pub(crate) stopped: bool,
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

    pub(crate) fn apply(&self, plan: Plan) -> Result<(), MdnsError> {
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
    pub(crate) fn stop(&self) {
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
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn refresh(&self) {
        let st = self.lock();
        self.publish(&st);
    }

    /// Recomputes the status (reading the interfaces now) and sends it to
    /// subscribers when it changed.
    pub(crate) fn publish(&self, st: &State) {
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
pub(crate) fn start_daemon(
    shared: &Arc<Shared>,
) -> Result<(ServiceDaemon, JoinHandle<()>), MdnsError> {
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
pub(crate) fn retry<T>(mut f: impl FnMut() -> mdns_sd::Result<T>) -> mdns_sd::Result<T> {
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
pub(crate) fn follow(shared: Weak<Shared>, events: mdns_sd::Receiver<DaemonEvent>) {
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
pub(crate) fn registered_key(st: &State, fullname: &str) -> Option<String> {
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
pub(crate) fn record_conflict(
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

pub(crate) fn status_of(st: &State, interfaces: Vec<String>, addresses: Vec<IpAddr>) -> MdnsStatus {
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
