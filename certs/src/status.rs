//! What the CA holds, for `turtle certs status` and the API.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::authority::Authority;
use crate::config::IpNet;
use crate::inspect::CertFacts;
use crate::issue::LeafInfo;
use crate::timefmt;

/// The CA and every stored leaf at one moment. In JSON, times are RFC 3339 strings
/// in UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub domain: String,
    pub permitted_ips: Vec<IpNet>,
    /// The root is the operator's ([`Authority::import`]).
    pub imported: bool,
    #[serde(with = "timefmt::rfc3339")]
    pub created: SystemTime,
    pub root: CaCertInfo,
    pub intermediate: CaCertInfo,
    /// Stored leaves, by id.
    pub leaves: Vec<LeafStatus>,
    /// Leaf directories whose files cannot be read, by id.
    pub unreadable: Vec<UnreadableLeaf>,
}

/// The root or the intermediate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaCertInfo {
    pub subject: String,
    /// SHA-256 of the DER, uppercase hex pairs joined by ':'.
    pub fingerprint: String,
    pub serial: String,
    #[serde(with = "timefmt::rfc3339")]
    pub not_before: SystemTime,
    #[serde(with = "timefmt::rfc3339")]
    pub not_after: SystemTime,
    /// `valid`, `expired` or `not_yet_valid` (never `renewal_due`: CA certificates
    /// are not renewed).
    pub state: CertState,
}

/// A stored leaf and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeafStatus {
    #[serde(flatten)]
    pub info: LeafInfo,
    pub state: CertState,
}

/// A leaf directory that cannot be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnreadableLeaf {
    pub id: String,
    pub error: String,
}

/// Where a certificate stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertState {
    Valid,
    /// Past its renewal point: the next `ensure_leaf` replaces it.
    RenewalDue,
    Expired,
    NotYetValid,
}

impl CertState {
    fn at(
        now: SystemTime,
        not_before: SystemTime,
        not_after: SystemTime,
        renew_at: SystemTime,
    ) -> Self {
        if now < not_before {
            CertState::NotYetValid
        } else if now >= not_after {
            CertState::Expired
        } else if now >= renew_at {
            CertState::RenewalDue
        } else {
            CertState::Valid
        }
    }
}

impl CaCertInfo {
    fn new(cert: &CertFacts, now: SystemTime) -> Self {
        CaCertInfo {
            subject: cert.subject.clone(),
            fingerprint: cert.fingerprint.clone(),
            serial: cert.serial.clone(),
            not_before: cert.not_before,
            not_after: cert.not_after,
            state: CertState::at(now, cert.not_before, cert.not_after, cert.not_after),
        }
    }
}

impl Authority {
    /// The root, the intermediate and every stored leaf, with their state at `now`.
    pub fn status(&self, now: SystemTime) -> Status {
        let mut leaves = Vec::new();
        let mut unreadable = Vec::new();
        for (id, record) in self.stored_leaves() {
            match record {
                Ok(record) => {
                    let info = record.info;
                    let state = CertState::at(now, info.not_before, info.not_after, info.renew_at);
                    leaves.push(LeafStatus { info, state });
                }
                Err(e) => unreadable.push(UnreadableLeaf {
                    id,
                    error: e.to_string(),
                }),
            }
        }
        Status {
            domain: self.meta.domain.clone(),
            permitted_ips: self.meta.permitted_ips.clone(),
            imported: self.meta.imported,
            created: self.meta.created,
            root: CaCertInfo::new(&self.root, now),
            intermediate: CaCertInfo::new(&self.intermediate, now),
            leaves,
            unreadable,
        }
    }
}
