//! The per-service config hash: what makes the supervisor recreate a
//! container when, and only when, the container itself would differ.

use sha2::{Digest, Sha256};

use crate::model::Service;

/// Hex SHA-256 of the canonical JSON of `service`, with the fields that do
/// not shape the container cleared: `depends_on`, `profiles`, `replicas` and
/// `build` (the image reference is what counts). Object keys are sorted, so
/// the hash does not depend on map order.
pub fn service_hash(service: &Service) -> String {
    let mut s = service.clone();
    s.depends_on.clear();
    s.profiles.clear();
    s.replicas = 0;
    s.build = None;
    let value = serde_json::to_value(&s).expect("a service always serializes to JSON");
    let canonical = canonical(value).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Sorts object keys recursively (whatever map type serde_json is built with).
fn canonical(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(canonical).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn web() -> Service {
        let mut s = Service {
            image: Some("nginx:1.27".into()),
            replicas: 1,
            ..Default::default()
        };
        s.environment.insert("A".into(), "1".into());
        s.environment.insert("B".into(), "2".into());
        s
    }

    #[test]
    fn stable_and_hex() {
        let h = service_hash(&web());
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(h, service_hash(&web()));
        // Pinned: a change here means every deployed container gets recreated.
        assert_eq!(
            h,
            "75a5c25abd30af80aba765ae42d0cfd7656d5889b5e69d299ee456fab8791b38"
        );
    }

    #[test]
    fn changes_with_the_container_only() {
        let base = service_hash(&web());
        let mut s = web();
        s.environment.insert("A".into(), "2".into());
        assert_ne!(service_hash(&s), base);

        let mut s = web();
        s.replicas = 5;
        s.profiles = vec!["x".into()];
        s.depends_on.insert(
            "db".into(),
            Dependency {
                condition: Condition::ServiceHealthy,
                restart: false,
                required: true,
            },
        );
        s.build = Some(Build::default());
        assert_eq!(service_hash(&s), base);

        // Map order does not matter.
        let mut s = web();
        s.environment.clear();
        s.environment.insert("B".into(), "2".into());
        s.environment.insert("A".into(), "1".into());
        assert_eq!(service_hash(&s), base);
    }
}
