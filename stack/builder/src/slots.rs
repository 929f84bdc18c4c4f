//! Build slots: at most `--max-builds` builds at once, at most `--max-queued`
//! requests waiting for one, for at most `--queue-timeout`.
//!
//! A request takes its slot **before** its context is read, and keeps it until
//! its build is done: so at most `--max-builds` contexts are on disk at once
//! (each at most `--max-context`), however many clients upload together. A
//! request that waits has not started its response (a refusal must still be a
//! real status: 413 for a context over the limit), so it cannot be told it is
//! queued; it gets its slot, or `503` with `Retry-After` once the queue is
//! full or its wait is over. Its upload is not read while it waits: the
//! client's bytes stay in the kernel's socket buffers (a client that sends
//! `Expect: 100-continue` and waits for it sends nothing yet).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The build slots and the queue in front of them.
#[derive(Debug, Clone)]
pub struct Slots {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    max_builds: usize,
    max_queued: usize,
    timeout: Duration,
}

/// A held build slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _running: OwnedSemaphorePermit,
    _admitted: OwnedSemaphorePermit,
}

/// Why a request gets no slot (503).
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error(
        "the builder is busy: {max_builds} build(s) running and {max_queued} waiting (its \
         --max-builds and --max-queued): try again in a minute"
    )]
    QueueFull {
        max_builds: usize,
        max_queued: usize,
    },
    #[error(
        "the builder is busy: no build slot came free within {waited:?} (its --queue-timeout; \
         {max_builds} build(s) at a time, its --max-builds): try again in a minute"
    )]
    Timeout { waited: Duration, max_builds: usize },
}

impl Slots {
    /// `max_builds` slots (at least one), `max_queued` requests waiting for
    /// one for at most `timeout` each.
    pub fn new(max_builds: usize, max_queued: usize, timeout: Duration) -> Slots {
        let max_builds = max_builds.max(1);
        Slots {
            running: Arc::new(Semaphore::new(max_builds)),
            admitted: Arc::new(Semaphore::new(max_builds + max_queued)),
            max_builds,
            max_queued,
            timeout,
        }
    }

    /// Builds that may run at once.
    pub fn max_builds(&self) -> usize {
        self.max_builds
    }

    /// Takes a slot: at once when one is free, else after waiting in the
    /// queue (refused when the queue is full or the wait is over).
    pub async fn acquire(&self) -> Result<Slot, SlotError> {
        let admitted =
            self.admitted
                .clone()
                .try_acquire_owned()
                .map_err(|_| SlotError::QueueFull {
                    max_builds: self.max_builds,
                    max_queued: self.max_queued,
                })?;
        let timeout = || SlotError::Timeout {
            waited: self.timeout,
            max_builds: self.max_builds,
        };
        let running = tokio::time::timeout(self.timeout, self.running.clone().acquire_owned())
            .await
            .map_err(|_| timeout())?
            // The semaphore is never closed.
            .map_err(|_| timeout())?;
        Ok(Slot {
            _running: running,
            _admitted: admitted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_a_slot_then_gets_it() {
        let slots = Slots::new(1, 1, Duration::from_secs(60));
        let held = slots.acquire().await.unwrap();
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!waiting.is_finished());
        drop(held);
        waiting.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_bounded_and_so_is_the_queue() {
        let slots = Slots::new(1, 1, Duration::from_secs(60));
        let _held = slots.acquire().await.unwrap();
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire().await.map(drop) }
        });
        while slots.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // One running, one waiting: a third is refused at once.
        let e = slots.acquire().await.unwrap_err();
        assert!(matches!(e, SlotError::QueueFull { .. }), "{e}");
        assert!(e.to_string().contains("--max-queued"), "{e}");
        // The waiting one gives up after the timeout.
        let e = waiting.await.unwrap().unwrap_err();
        assert!(matches!(e, SlotError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("--queue-timeout"), "{e}");
    }
}
