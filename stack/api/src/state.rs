//! What every handler shares: the pool, the configuration, the rate limiters.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use deadpool_postgres::Pool;

use crate::config::{Config, Limits};
use crate::rate::Limiter;

/// The handlers' state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    /// The OpenAPI document as served (with this stack's public URL).
    pub openapi: Arc<String>,
    /// Whether the last health check passed (failures are logged on change only).
    pub healthy: Arc<AtomicBool>,
    pub limiters: Arc<Limiters>,
    /// Wakes the devices waiting on a fleet's target (long-poll).
    pub targets: Arc<Targets>,
}

/// A generation per fleet, bumped when its target may have moved (a
/// release, a pin, the fleet's removal): what a long-poll of
/// `GET /v1/device/target?wait=` waits on. In this process only: with
/// several api replicas, a change made through another one is seen at the
/// device's next poll (the wait is at most the poll interval).
#[derive(Debug, Default)]
pub struct Targets {
    fleets: std::sync::Mutex<std::collections::HashMap<i64, tokio::sync::watch::Sender<u64>>>,
}

impl Targets {
    /// A receiver that changes at the fleet's next [`Targets::moved`].
    pub fn watch(&self, fleet: i64) -> tokio::sync::watch::Receiver<u64> {
        let mut map = self
            .fleets
            .lock()
            .expect("the targets lock is never poisoned");
        map.entry(fleet)
            .or_insert_with(|| tokio::sync::watch::channel(0).0)
            .subscribe()
    }

    /// The fleet's target may have moved: wakes its waiting devices.
    pub fn moved(&self, fleet: i64) {
        let mut map = self
            .fleets
            .lock()
            .expect("the targets lock is never poisoned");
        if let Some(tx) = map.get(&fleet) {
            tx.send_modify(|g| *g += 1);
            // Nobody waits: the entry goes, and comes back with the next
            // waiter.
            if tx.receiver_count() == 0 {
                map.remove(&fleet);
            }
        }
    }
}

/// The rate limiters, by what they count.
#[derive(Debug)]
pub struct Limiters {
    /// Log bytes, per device UUID.
    pub device_log: Limiter<String>,
    /// State reports, per device UUID.
    pub device_state: Limiter<String>,
    /// Registrations, in all.
    pub registration: Limiter<()>,
    /// Registrations, per provisioning key (its SHA-256, known key or not).
    pub registration_key: Limiter<[u8; 32]>,
}

impl Limiters {
    pub fn new(limits: &Limits) -> Limiters {
        Limiters {
            device_log: Limiter::new(limits.device_log),
            device_state: Limiter::new(limits.device_state),
            registration: Limiter::new(limits.registration),
            registration_key: Limiter::new(limits.registration_key),
        }
    }

    /// Forgets a deleted device.
    pub fn forget_device(&self, uuid: &str) {
        let uuid = uuid.to_string();
        self.device_log.forget(&uuid);
        self.device_state.forget(&uuid);
    }

    /// Drops every full bucket.
    pub fn prune(&self, now: Instant) {
        self.device_log.prune(now);
        self.device_state.prune(now);
        self.registration.prune(now);
        self.registration_key.prune(now);
    }
}
