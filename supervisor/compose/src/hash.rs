//! The per-service config hash (placeholder until the loader lands).

use sha2::{Digest, Sha256};

use crate::model::Service;

/// SHA-256 (hex) of the canonical JSON of the fields that shape the container.
pub fn service_hash(service: &Service) -> String {
    let mut s = service.clone();
    s.depends_on.clear();
    s.profiles.clear();
    s.replicas = 1;
    s.build = None;
    let json = serde_json::to_vec(&s).expect("a service always serializes");
    hex::encode(Sha256::digest(json))
}
