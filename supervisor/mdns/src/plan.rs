//! What to publish for a config: one alias service per name, and the
//! stack's own service with its TXT; names and TXT checked first.

use std::collections::BTreeSet;

use mdns_sd::ServiceInfo;

use crate::{ALIAS_TYPE, MdnsConfig, MdnsError, SERVICE_TYPE};

/// What a config asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
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
pub(crate) struct Published {
    /// Normalized (lowercase, no trailing dot).
    pub(crate) domain: String,
    /// Normalized, deduplicated, the domain first.
    pub(crate) names: Vec<String>,
    pub(crate) service: Spec,
    pub(crate) aliases: Vec<Spec>,
    pub(crate) interfaces: Option<Vec<String>>,
}

impl Plan {
    pub(crate) fn specs(&self) -> Vec<Spec> {
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
pub(crate) struct Spec {
    pub(crate) ty: &'static str,
    pub(crate) instance: String,
    /// The host name (no trailing dot): the daemon answers A/AAAA for it.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) txt: Vec<(String, String)>,
}

impl Spec {
    /// The lowercase full service name with its trailing dot, as the daemon
    /// keys it (instances here have no dots to escape).
    pub(crate) fn key(&self) -> String {
        format!("{}.{}", self.instance, self.ty).to_lowercase()
    }

    pub(crate) fn info(&self) -> Result<ServiceInfo, MdnsError> {
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
pub(crate) fn plan(cfg: &MdnsConfig) -> Result<Plan, MdnsError> {
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
pub(crate) fn instance_name(host: &str) -> String {
    host.strip_suffix(".local")
        .unwrap_or(host)
        .replace('.', " ")
}

/// A normalized host name we can publish: under `.local`, labels of letters,
/// digits and hyphens.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
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

/// A name without its trailing dot.
pub(crate) fn trim_dot(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}
