//! DNS names and leaf ids: parsed once at the edge, then trusted.

use crate::Error;

/// The canonical form of a CA domain: lowercase, no trailing dot, no wildcard.
pub(crate) fn canonical_domain(domain: &str) -> Result<String, Error> {
    let canonical = lower_without_dot(domain);
    check_host_name(&canonical).map_err(|reason| Error::InvalidDomain {
        domain: domain.to_string(),
        reason,
    })?;
    Ok(canonical)
}

/// The canonical form of a name for a certificate: a host name, or a wildcard
/// (`*.` followed by a host name) that stands for one label.
pub(crate) fn canonical_name(name: &str) -> Result<String, Error> {
    let canonical = lower_without_dot(name);
    let host = canonical.strip_prefix("*.").unwrap_or(&canonical);
    check_host_name(host).map_err(|reason| Error::InvalidName {
        name: name.to_string(),
        reason,
    })?;
    Ok(canonical)
}

/// Whether `name` (canonical) is `domain` or a name under it: what a DNS name
/// constraint of `domain` permits.
pub(crate) fn in_domain(name: &str, domain: &str) -> bool {
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
}

/// A leaf's id: `[a-z0-9][a-z0-9_.-]*`, at most 64 characters, so it is a safe
/// directory name (never `.`, `..`, nor holding `/`). Parsed once
/// ([`str::parse`]); every function that makes a leaf's path takes one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeafId(String);

impl LeafId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for LeafId {
    type Err = Error;
    fn from_str(id: &str) -> Result<Self, Error> {
        let mut chars = id.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
        if first_ok && rest_ok && id.len() <= 64 {
            Ok(Self(id.to_string()))
        } else {
            Err(Error::InvalidLeafId { id: id.to_string() })
        }
    }
}

impl std::fmt::Display for LeafId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<std::path::Path> for LeafId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

fn lower_without_dot(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("it has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "the label {label:?} holds characters other than letters, digits and '-'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("its last label is a number (an ip address is not a DNS name)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(canonical_domain("Corp.Internal.").unwrap(), "corp.internal");
        assert!(canonical_domain("").is_err());
        assert!(canonical_domain("10.0.0.1").is_err());
        assert!(canonical_domain("*.vm.local").is_err());
        assert!(canonical_domain("a..b").is_err());
        assert!(canonical_domain("-a.local").is_err());
        assert!(canonical_domain("a_b.local").is_err());
    }

    #[test]
    fn names_and_membership() {
        assert_eq!(canonical_name("*.API.vm.local").unwrap(), "*.api.vm.local");
        assert!(canonical_name("a.*.vm.local").is_err());
        assert!(in_domain("vm.local", "vm.local"));
        assert!(in_domain("api.vm.local", "vm.local"));
        assert!(in_domain("*.vm.local", "vm.local"));
        assert!(!in_domain("evilvm.local", "vm.local"));
        assert!(!in_domain("local", "vm.local"));
    }

    #[test]
    fn leaf_ids() {
        for ok in ["api", "proxy-1", "a.b_c", "0", "p...x", &"x".repeat(64)] {
            assert_eq!(ok.parse::<LeafId>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "Api",
            ".",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "../etc",
            "a\0",
            "a b",
            &"x".repeat(65),
        ] {
            let e = bad.parse::<LeafId>().unwrap_err();
            assert!(matches!(e, Error::InvalidLeafId { .. }), "{bad:?}");
        }
    }
}
