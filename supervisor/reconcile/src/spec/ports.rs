//! Ports: what a container exposes and what it publishes on the host.

use std::collections::HashMap;

use bollard_stubs::models::PortBinding;
use turtle_compose::Service;

use super::SpecError;

/// Exposed port keys (`80/tcp`) and host bindings per key.
pub(super) type Ports = (Vec<String>, HashMap<String, Option<Vec<PortBinding>>>);

/// The service's published ports and `expose:` entries.
pub(super) fn ports(service_name: &str, service: &Service) -> Result<Ports, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &service.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        let entry = bindings.entry(key).or_insert_with(|| Some(Vec::new()));
        entry.get_or_insert_with(Vec::new).push(PortBinding {
            host_ip: p.host_ip.clone().filter(|h| !h.is_empty()),
            // A range ("8000-8010") lets the engine pick a free host port in it.
            host_port: Some(p.published.clone().unwrap_or_default()),
        });
    }
    for e in &service.expose {
        for key in expose_keys(e).map_err(invalid)? {
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
    }

    Ok((exposed, bindings))
}

/// `"80"`, `"80/udp"`, `"8000-8002/tcp"` -> `["80/tcp"]`, ... (ranges expanded).
pub(super) fn expose_keys(e: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = e.split_once('/').unwrap_or((e, "tcp"));
    let bad = || format!("invalid expose {e:?}: expected PORT[-PORT][/PROTOCOL]");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.trim().parse::<u16>().map_err(|_| bad())?,
            b.trim().parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.trim().parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}
