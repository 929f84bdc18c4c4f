//! Every name that becomes a path or a repository, parsed by its newtype:
//! compose's `ProjectName` (also as serde reads it from the daemon's API and
//! as `ProjectName::normalize` derives it from a directory or `name:`) and
//! `ServiceName`, the runtime's `SecretName`, the CA's `LeafId`, the fleet
//! api's `FleetName`.
//!
//! Beyond "no panic": whatever a parser takes is one plain path component
//! (not empty, `.` or `..`, no `/`, no NUL) of at most 255 bytes, reads back
//! as itself from JSON, and a normalized project name is a project name that
//! normalizes to itself.
//!
//! Input: the text (any bytes; UTF-8 only reaches the parsers).
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use turtle_certs::LeafId;
use turtle_compose::{ProjectName, ServiceName};
use turtle_fleet_api::FleetName;
use turtle_runtime::secrets::SecretName;

/// `name` is one plain path component (what `dir.join(name)` keeps inside `dir`).
fn one_component(kind: &str, name: &str) {
    let mut parts = Path::new(name).components();
    assert!(
        matches!(parts.next(), Some(Component::Normal(c)) if c == name) && parts.next().is_none(),
        "{kind} {name:?} is not one plain path component"
    );
    assert!(
        !name.contains(['/', '\0']) && name.len() <= 255,
        "{kind} {name:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = text.parse::<ProjectName>() {
        one_component("project name", n.as_str());
        let json = serde_json::to_string(&n).expect("a name serializes");
        let back: ProjectName = serde_json::from_str(&json).expect("a name reads back");
        assert_eq!(back, n);
    }
    // The daemon reads names from JSON: the same rule, whatever the escapes.
    let quoted = serde_json::to_string(text).expect("a string serializes");
    if let Ok(n) = serde_json::from_str::<ProjectName>(&quoted) {
        assert_eq!(n.as_str(), text);
        assert!(text.parse::<ProjectName>().is_ok());
    }
    if let Some(n) = ProjectName::normalize(text) {
        one_component("normalized project name", n.as_str());
        assert_eq!(
            ProjectName::normalize(n.as_str()).as_ref(),
            Some(&n),
            "normalizing {n:?} again changes it"
        );
    }
    if let Ok(n) = text.parse::<ServiceName>() {
        one_component("service name", n.as_str());
        let json = serde_json::to_string(&n).expect("a name serializes");
        let back: ServiceName = serde_json::from_str(&json).expect("a name reads back");
        assert_eq!(back, n);
    }
    if let Ok(n) = text.parse::<SecretName>() {
        one_component("secret name", n.as_str());
    }
    if let Ok(n) = text.parse::<LeafId>() {
        one_component("leaf id", n.as_str());
    }
    if let Ok(n) = FleetName::parse(text) {
        one_component("fleet name", n.as_str());
        assert!(!n.as_str().starts_with('-') && !n.as_str().ends_with('-'));
        let json = serde_json::to_string(&n).expect("a name serializes");
        let back: FleetName = serde_json::from_str(&json).expect("a name reads back");
        assert_eq!(back, n);
    }
});
