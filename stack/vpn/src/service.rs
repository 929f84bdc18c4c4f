//! The service's loop: every sync interval, fetch the peer list from the
//! api (conditionally), diff it against what the device has, apply the
//! difference, and publish the status the health route reports.
//!
//! A failing api never stops the service: the device keeps the last good
//! list, and the failure is logged once per change of state (first failure,
//! a different failure, recovery), not at every interval. A failing device
//! does stop it (with an error, so the container restarts): without the
//! device there is nothing to serve.
//!
//! [`serve`] takes the device, the health listener and the shutdown signal
//! as arguments, so tests run it with a device in a network namespace, a
//! port-0 listener and a channel.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::time::MissedTickBehavior;

use crate::api::{ApiClient, Fetched};
use crate::device::{Device, DeviceError};
use crate::health::{self, Shared, Status};
use crate::peers::{self, Changes, PeerSet};
use crate::uapi::DeviceState;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("the health endpoint failed: {0}")]
    Health(std::io::Error),
}

/// Says when an error is news: the first failure, or a different one.
#[derive(Debug, Default)]
pub struct ErrorLatch {
    current: Option<String>,
}

impl ErrorLatch {
    /// Records a failure; true when it should be logged.
    pub fn failed(&mut self, message: &str) -> bool {
        if self.current.as_deref() == Some(message) {
            return false;
        }
        self.current = Some(message.to_string());
        true
    }

    /// Records a success; the failure it ends, if any (to log the recovery).
    pub fn succeeded(&mut self) -> Option<String> {
        self.current.take()
    }
}

/// Runs the service on `device` until `shutdown` resolves, then stops the
/// device (its interface is gone when this returns).
pub async fn serve(
    device: Device,
    api: ApiClient,
    interval: Duration,
    health_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let device = Arc::new(device);
    let status: Shared = Arc::new(Mutex::new(Status::new(
        device.interface(),
        device.public_key(),
        device.listen_port(),
        interval,
    )));
    let (stop_health, health_stopped) = tokio::sync::oneshot::channel::<()>();
    let health = tokio::spawn(
        axum::serve(health_listener, health::router(status.clone()))
            .with_graceful_shutdown(async {
                let _ = health_stopped.await;
            })
            .into_future(),
    );

    let mut sync = Sync {
        device: device.clone(),
        api,
        status,
        latch: ErrorLatch::default(),
        wanted: None,
        warnings: Vec::new(),
    };
    let result = sync.run(interval, shutdown).await;
    drop(sync);

    let _ = stop_health.send(());
    let health_result = match health.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServiceError::Health(e)),
        Err(e) => Err(ServiceError::Health(std::io::Error::other(e))),
    };
    // Every blocking device call has returned (each one was awaited), so
    // this is the last reference; stopping joins boringtun's threads.
    match Arc::try_unwrap(device) {
        Ok(device) => {
            let _ = tokio::task::spawn_blocking(move || device.shutdown()).await;
        }
        Err(still_shared) => drop(still_shared),
    }
    tracing::info!("vpn stopped");
    result.and(health_result)
}

/// The sync loop's state.
struct Sync {
    device: Arc<Device>,
    api: ApiClient,
    status: Shared,
    latch: ErrorLatch,
    /// The last good list from the api; None until the first one.
    wanted: Option<PeerSet>,
    /// The warnings of the last list (logged when they change).
    warnings: Vec<String>,
}

impl Sync {
    async fn run(
        &mut self,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = ticker.tick() => {}
            }
            // Shutdown may cut the api call short, not a device call.
            let fetched = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                f = self.api.fetch() => f,
            };
            self.take_in(fetched);
            if let Err(e) = self.reconcile().await {
                self.status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .device_up = false;
                tracing::error!("{e}");
                return Err(e.into());
            }
        }
    }

    /// Takes in the api's answer: a new list, the same list, or a failure.
    fn take_in(&mut self, fetched: Result<Fetched, crate::api::ApiError>) {
        let outcome = match fetched {
            Ok(Fetched::Unchanged) => Ok(()),
            Ok(Fetched::New(body)) => {
                match peers::parse_api_peers(&body, &self.device.public_key()) {
                    Ok(parsed) => {
                        if parsed.warnings != self.warnings {
                            for w in &parsed.warnings {
                                tracing::warn!("{w}");
                            }
                            self.warnings = parsed.warnings;
                        }
                        self.wanted = Some(parsed.peers);
                        Ok(())
                    }
                    Err(e) => {
                        // Ask for the whole list again next time, not a 304.
                        self.api.forget_etag();
                        Err(format!(
                            "the api's peer list at {} is not the expected JSON ({{\"peers\":[...]}}): {e}",
                            self.api.url()
                        ))
                    }
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) => {
                if let Some(was) = self.latch.succeeded() {
                    tracing::info!("the peer list syncs again (it failed with: {was})");
                }
                status.last_success = Some(Instant::now());
                status.last_error = None;
                status.wanted = self.wanted.clone();
            }
            Err(message) => {
                if self.latch.failed(&message) {
                    let kept = match &self.wanted {
                        Some(w) => format!("keeping the last good list ({} peers)", w.len()),
                        None => "no peer list yet".to_string(),
                    };
                    tracing::warn!("{message}; {kept}; retrying every sync interval");
                }
                status.last_error = Some(message);
            }
        }
    }

    /// Brings the device to the wanted list and records its state.
    async fn reconcile(&self) -> Result<(), DeviceError> {
        let mut state = self.blocking(|d| d.get()).await?;
        if let Some(wanted) = &self.wanted {
            let changes = peers::diff(wanted, &state.device_peers());
            if !changes.is_empty() {
                log_changes(&changes, wanted, &state);
                self.blocking(move |d| d.apply(&changes)).await?;
                state = self.blocking(|d| d.get()).await?;
            }
        }
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.device_up = true;
        status.device = state;
        Ok(())
    }

    /// Runs a blocking device call off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Device) -> Result<T, DeviceError> + Send + 'static,
    ) -> Result<T, DeviceError> {
        let device = self.device.clone();
        tokio::task::spawn_blocking(move || f(&device))
            .await
            .unwrap_or_else(|e| {
                Err(DeviceError::Io(std::io::Error::other(format!(
                    "a UAPI call panicked: {e}"
                ))))
            })
    }
}

fn log_changes(changes: &Changes, wanted: &PeerSet, state: &DeviceState) {
    for key in &changes.remove {
        if !changes.add.iter().any(|(k, _)| k == key) {
            let ips = state.peers.get(key).map(|p| join(&p.allowed_ips));
            tracing::info!(public_key = %key, allowed_ips = ips.unwrap_or_default(), "peer removed");
        }
    }
    for (key, ips) in &changes.add {
        let device = wanted
            .get(key)
            .and_then(|s| s.device.as_deref())
            .unwrap_or("");
        let what = if changes.remove.contains(key) {
            "peer's allowed IPs changed (removed and added again)"
        } else {
            "peer added"
        };
        tracing::info!(public_key = %key, device, allowed_ips = join(ips), "{what}");
    }
}

fn join(ips: &std::collections::BTreeSet<crate::cidr::Cidr>) -> String {
    ips.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_news_once_until_it_changes_or_recovers() {
        let mut l = ErrorLatch::default();
        assert!(l.failed("refused"));
        assert!(!l.failed("refused"));
        assert!(!l.failed("refused"));
        assert!(l.failed("timeout"), "a different failure is news");
        assert_eq!(l.succeeded().as_deref(), Some("timeout"));
        assert_eq!(l.succeeded(), None, "success after success is not news");
        assert!(
            l.failed("refused"),
            "failing again after a recovery is news"
        );
    }
}
