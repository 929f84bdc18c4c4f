//! Keeps the mDNS publisher in step with the applied projects.
//!
//! The daemon publishes the domain itself (the box) and every public name of
//! every applied project (the `io.turtle.tls` names), plus one
//! `_turtle._tcp` instance whose TXT record tells child devices where the API
//! is and which CA to trust. The set is worked out again after every `up` and
//! `down` (the supervisor's `applied` and `removed` events) and every half
//! minute, and the publisher is updated only when it changed.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::engine::Engine;
use crate::mdns::{MdnsConfig, MdnsStatus, Publisher};
use crate::supervisor::Supervisor;
use crate::trust;

/// Port advertised for the `_turtle._tcp` service: the proxy's HTTPS port.
pub const HTTPS_PORT: u16 = 443;

/// The publisher the daemon runs, shared with the API (`GET /v1/names`).
pub struct Announcer {
    publisher: Mutex<Option<Publisher>>,
    off: Mutex<String>,
    domain: Mutex<String>,
}

impl Default for Announcer {
    fn default() -> Self {
        Self {
            publisher: Mutex::default(),
            off: Mutex::new("only the daemon publishes names (turtle daemon)".into()),
            domain: Mutex::default(),
        }
    }
}

impl Announcer {
    /// What is published, or why nothing is.
    pub fn status(&self) -> MdnsStatus {
        if let Some(p) = self.publisher.lock().unwrap().as_ref() {
            return p.status();
        }
        MdnsStatus {
            publishing: false,
            reason: Some(self.off.lock().unwrap().clone()),
            domain: self.domain.lock().unwrap().clone(),
            ..Default::default()
        }
    }

    fn set_off(&self, why: impl Into<String>) {
        let why = why.into();
        tracing::info!("not publishing names over mDNS: {why}");
        *self.off.lock().unwrap() = why;
    }

    /// Publishes until `shutdown` resolves, then says goodbye on the LAN.
    pub async fn run<E: Engine>(
        self: Arc<Self>,
        sup: Arc<Supervisor<E>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let config = sup.config().mdns.clone();
        let Some(trust) = sup.trust().cloned() else {
            return self.set_off("the supervisor has no CA");
        };
        *self.domain.lock().unwrap() = trust.domain().to_string();
        if !config.enabled {
            return self.set_off("mdns.enabled is false in the supervisor config");
        }
        if !trust.domain().ends_with(".local") {
            return self.set_off(format!(
                "the domain {} does not end in .local; publish its names in your DNS",
                trust.domain()
            ));
        }
        let mut events = sup.subscribe();
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tokio::pin!(shutdown);
        let mut published: Option<MdnsConfig> = None;
        loop {
            let wanted = desired(&sup, &trust, &config);
            if published.as_ref() != Some(&wanted) {
                let result = {
                    let mut slot = self.publisher.lock().unwrap();
                    match slot.as_ref() {
                        Some(p) => p.update(wanted.clone()),
                        None => Publisher::start(wanted.clone()).map(|p| {
                            *slot = Some(p);
                        }),
                    }
                };
                match result {
                    Ok(()) => {
                        tracing::info!(names = ?wanted.names, "publishing over mDNS");
                        published = Some(wanted);
                    }
                    Err(e) => self.set_off(format!("cannot publish: {e}")),
                }
            }
            // Wait for a reason to look again.
            let stop = loop {
                tokio::select! {
                    _ = &mut shutdown => break true,
                    _ = tick.tick() => break false,
                    ev = events.recv() => match ev {
                        Ok(ev) if ev.kind == "applied" || ev.kind == "removed" => break false,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => break false,
                        Err(RecvError::Closed) => break true,
                    },
                }
            };
            if stop {
                break;
            }
        }
        if let Some(p) = self.publisher.lock().unwrap().take() {
            p.shutdown();
        }
    }
}

/// The names and TXT record to publish now.
fn desired<E: Engine>(
    sup: &Supervisor<E>,
    trust: &trust::Trust,
    config: &crate::config::MdnsSection,
) -> MdnsConfig {
    let domain = trust.domain().to_string();
    let mut names = BTreeSet::from([domain.clone()]);
    match sup.store().projects() {
        Ok(projects) => {
            for p in &projects {
                match trust::public_names(p, &domain) {
                    Ok(n) => names.extend(n),
                    Err(e) => tracing::warn!(project = %p.name, "{e}"),
                }
            }
        }
        Err(e) => tracing::warn!("cannot read the applied projects: {e}"),
    }
    let api = format!("api.{domain}");
    let api_url = if names.contains(&api) {
        format!("https://{api}")
    } else {
        format!("https://{domain}")
    };
    MdnsConfig {
        domain: domain.clone(),
        names: names.into_iter().collect(),
        port: HTTPS_PORT,
        txt: vec![
            ("api".to_string(), api_url),
            ("ca".to_string(), trust.authority().fingerprint()),
            ("domain".to_string(), domain),
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ],
        interfaces: config.interfaces.clone(),
    }
}
