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
use turtle_compose::Project;

use crate::handle::Handle;
use crate::trust;
use turtle_engine::Engine;
use turtle_mdns::{MdnsConfig, MdnsStatus, Publisher};

/// The HTTPS port when the stack publishes none other: advertised for
/// `_turtle._tcp` and left out of the API's URL.
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
        handle: Handle<E>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let config = handle.mdns().clone();
        let Some(trust) = handle.trust().cloned() else {
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
        let mut events = handle.subscribe();
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        tokio::pin!(shutdown);
        let mut published: Option<MdnsConfig> = None;
        loop {
            let wanted = desired(&handle, &trust, &config);
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
    handle: &Handle<E>,
    trust: &trust::Trust,
    config: &crate::config::MdnsSection,
) -> MdnsConfig {
    let projects = handle.store().projects().unwrap_or_else(|e| {
        tracing::warn!("cannot read the applied projects: {e}");
        Vec::new()
    });
    announcement(
        &projects,
        trust.domain(),
        &trust.authority().fingerprint(),
        config,
    )
}

/// What to publish for these applied projects: the domain and every public
/// name, and `_turtle._tcp` on the HTTPS port of the API with TXT entries
/// saying where the API is (with its port when it is not 443) and which CA
/// to trust.
fn announcement(
    projects: &[Project],
    domain: &str,
    ca_fingerprint: &str,
    config: &crate::config::MdnsSection,
) -> MdnsConfig {
    let mut names = BTreeSet::from([domain.to_string()]);
    for p in projects {
        match trust::public_names(p, domain) {
            Ok(n) => names.extend(n),
            Err(e) => tracing::warn!(project = %p.name, "{e}"),
        }
    }
    let (api_url, port) = api(projects, domain, &names);
    MdnsConfig {
        domain: domain.to_string(),
        names: names.into_iter().collect(),
        port,
        txt: vec![
            ("api".to_string(), api_url),
            ("ca".to_string(), ca_fingerprint.to_string()),
            ("domain".to_string(), domain.to_string()),
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ],
        interfaces: config.interfaces.clone(),
    }
}

/// The URL of the API these projects serve (`https://api.<domain>[:port]`;
/// the domain itself when no project names `api`), as mDNS announces it.
pub fn api_url(projects: &[Project], domain: &str) -> String {
    let mut names = BTreeSet::new();
    for p in projects {
        if let Ok(n) = trust::public_names(p, domain) {
            names.extend(n);
        }
    }
    api(projects, domain, &names).0
}

/// The API's URL and HTTPS port among `names`.
fn api(projects: &[Project], domain: &str, names: &BTreeSet<String>) -> (String, u16) {
    let api = format!("api.{domain}");
    let host = if names.contains(&api) {
        api
    } else {
        domain.to_string()
    };
    let port = https_port(projects, domain, &host);
    let url = if port == HTTPS_PORT {
        format!("https://{host}")
    } else {
        format!("https://{host}:{port}")
    };
    (url, port)
}

/// The host port that serves `host` over HTTPS: the port published for
/// container port 443/tcp by the service whose certificate names `host`
/// (the proxy), else 443.
fn https_port(projects: &[Project], domain: &str, host: &str) -> u16 {
    projects
        .iter()
        .flat_map(|p| &p.services)
        .filter(|(name, service)| {
            trust::tls_names(name, service, domain).is_ok_and(|n| n.iter().any(|n| n == host))
        })
        .flat_map(|(_, service)| &service.ports)
        .filter(|p| p.target == 443 && p.protocol == "tcp")
        .find_map(|p| p.published.as_deref()?.parse().ok())
        .unwrap_or(HTTPS_PORT)
}

#[cfg(test)]
mod tests {
    use turtle_compose::{Port, Service};
    use turtle_reconcile::test_support::{project, service};

    use super::*;

    fn proxy(published: &str) -> Project {
        let mut proxy = service("proxy");
        proxy
            .labels
            .insert(trust::TLS_LABEL.into(), "@, api, registry".into());
        proxy.ports = vec![Port {
            target: 443,
            published: Some(published.into()),
            host_ip: None,
            protocol: "tcp".into(),
            ..Default::default()
        }];
        let other: Service = service("web");
        project("stack", vec![("proxy", proxy), ("web", other)])
    }

    #[test]
    fn the_api_url_carries_the_https_port_unless_it_is_443() {
        let config = crate::config::MdnsSection::default();
        let on_443 = announcement(&[proxy("443")], "vm.local", "sha256:x", &config);
        assert_eq!(on_443.port, 443);
        assert!(
            on_443
                .txt
                .contains(&("api".to_string(), "https://api.vm.local".to_string()))
        );
        let on_8443 = announcement(&[proxy("8443")], "vm.local", "sha256:x", &config);
        assert_eq!(on_8443.port, 8443);
        assert!(
            on_8443
                .txt
                .contains(&("api".to_string(), "https://api.vm.local:8443".to_string())),
            "{:?}",
            on_8443.txt
        );
        assert!(on_8443.names.contains(&"registry.vm.local".to_string()));
        // Nothing applied: the box itself, on 443.
        let bare = announcement(&[], "vm.local", "sha256:x", &config);
        assert_eq!(bare.port, 443);
        assert!(
            bare.txt
                .contains(&("api".to_string(), "https://vm.local".to_string()))
        );
    }
}
