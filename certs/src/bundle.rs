//! The trust bundle every container gets: the system's CAs, then Turtle's root.

use std::path::Path;

use crate::inspect;

/// Where distributions keep their CA bundle: Debian and Ubuntu, Fedora and RHEL,
/// Alpine and the BSDs.
pub const SYSTEM_BUNDLE_CANDIDATES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The first of [`SYSTEM_BUNDLE_CANDIDATES`] that is a file on this machine.
pub fn find_system_bundle() -> Option<&'static Path> {
    SYSTEM_BUNDLE_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
}

/// The system's CA bundle (when given, and it exists and reads as text) followed by
/// `root_pem`, so a container that replaces its bundle with this one trusts public
/// sites and Turtle's services alike. A missing system bundle leaves the root alone.
pub fn trust_bundle(system_bundle: Option<&Path>, root_pem: &str) -> String {
    let system = system_bundle
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    if system.trim().is_empty() {
        return inspect::concat(&[root_pem]);
    }
    inspect::concat(&[&system, root_pem])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "-----BEGIN CERTIFICATE-----\nUk9PVA==\n-----END CERTIFICATE-----\n";

    #[test]
    fn system_bundle_comes_first_then_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("ca-certificates.crt");
        let public = "-----BEGIN CERTIFICATE-----\nUFVCTElD\n-----END CERTIFICATE-----";
        std::fs::write(&system, public).unwrap();
        let bundle = trust_bundle(Some(&system), ROOT);
        assert_eq!(bundle, format!("{public}\n{ROOT}"));
    }

    #[test]
    fn missing_system_bundle_gives_the_root_alone() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(trust_bundle(Some(&dir.path().join("nope")), ROOT), ROOT);
        assert_eq!(trust_bundle(None, ROOT), ROOT);
    }
}
