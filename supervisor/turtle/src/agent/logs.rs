//! The fleet's service logs, shipped to the parent: every container of the
//! fleet's project is followed from its first line (once per container, so
//! a release's new containers lose nothing, the start-up lines a health
//! gate fails on included), each line stamped with the time it was read
//! and kept in a bounded buffer; the agent ships the buffer in batches
//! whenever the parent answers. With the parent away, the oldest lines go
//! first once the buffer is full, and the loss is itself a line (service
//! `turtle`) in the next batch.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use turtle_engine::Engine;
use turtle_engine::docker::Docker;
use turtle_fleet_api::LogLineIn;
use turtle_reconcile::names;

/// Lines kept while the parent is away, unless the config says otherwise.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// The most lines sent at once (the api takes 5000).
pub const BATCH: usize = 5_000;
/// The longest line kept (the api cuts at 4 KiB too).
const LINE_MAX: usize = 4096;

/// The lines read and not yet shipped.
#[derive(Debug)]
pub struct Buffer {
    lines: VecDeque<LogLineIn>,
    capacity: usize,
    /// Lines dropped since the last shipped batch said so.
    dropped: u64,
}

impl Buffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    pub fn push(&mut self, line: LogLineIn) {
        if self.lines.len() >= self.capacity {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back(line);
    }

    /// The next batch: at most `max` lines, oldest first, led by a line
    /// saying how many were dropped, if any were.
    pub fn take(&mut self, max: usize, now: &str) -> Batch {
        let mut lines = Vec::new();
        let dropped = self.dropped;
        if dropped > 0 {
            lines.push(LogLineIn {
                message: format!(
                    "turtle: {dropped} log line(s) dropped while the parent could not be reached (the buffer keeps {})",
                    self.capacity
                ),
                service: Some("turtle".into()),
                timestamp: Some(now.to_string()),
            });
        }
        let n = self.lines.len().min(max.saturating_sub(lines.len()));
        let taken: Vec<LogLineIn> = self.lines.drain(..n).collect();
        lines.extend(taken.iter().cloned());
        self.dropped = 0;
        Batch {
            lines,
            taken,
            dropped,
        }
    }

    /// Puts back a batch that was not delivered, in front, as far as the
    /// capacity allows (what does not fit counts as dropped).
    pub fn put_back(&mut self, batch: Batch) {
        self.dropped += batch.dropped;
        for line in batch.taken.into_iter().rev() {
            if self.lines.len() >= self.capacity {
                self.dropped += 1;
            } else {
                self.lines.push_front(line);
            }
        }
    }
}

/// Lines on their way to the parent.
pub struct Batch {
    pub lines: Vec<LogLineIn>,
    taken: Vec<LogLineIn>,
    dropped: u64,
}

/// Follows every container of `project` (each once, from its first line)
/// into `buffer`, looking for new containers every second, until dropped.
pub async fn collect(engine: Docker, project: String, buffer: Arc<Mutex<Buffer>>) {
    let mut followed: HashSet<String> = HashSet::new();
    // Dropped with this task: the followers end with it.
    let mut followers = tokio::task::JoinSet::new();
    loop {
        while followers.try_join_next().is_some() {}
        if let Ok(containers) = engine
            .list_containers(&names::project_filter(&project))
            .await
        {
            for c in containers {
                if !followed.insert(c.id.clone()) {
                    continue;
                }
                let service = c
                    .labels
                    .get(names::SERVICE)
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                followers.spawn(follow(
                    engine.clone(),
                    c.id.clone(),
                    service,
                    Arc::clone(&buffer),
                ));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow(engine: Docker, id: String, service: String, buffer: Arc<Mutex<Buffer>>) {
    let mut pending = String::new();
    let mut stream = engine.logs(&id, true, None);
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            break;
        };
        pending.push_str(&String::from_utf8_lossy(&chunk.bytes));
        let now = crate::cli::events::rfc3339(turtle_runtime::store::now_millis());
        let mut b = buffer
            .lock()
            .expect("the log buffer lock is never poisoned");
        while let Some(i) = pending.find('\n') {
            let mut line: String = pending.drain(..=i).collect();
            line.truncate(line.trim_end_matches(['\n', '\r']).len());
            if line.len() > LINE_MAX {
                let mut cut = LINE_MAX;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
            }
            b.push(LogLineIn {
                message: line,
                service: Some(service.clone()),
                timestamp: Some(now.clone()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> LogLineIn {
        LogLineIn {
            message: format!("line {n}"),
            service: Some("web".into()),
            timestamp: None,
        }
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_says_so_once() {
        let mut b = Buffer::new(3);
        for n in 0..5 {
            b.push(line(n));
        }
        assert_eq!(b.lines.len(), 3);
        let batch = b.take(10, "t");
        let messages: Vec<&str> = batch.lines.iter().map(|l| l.message.as_str()).collect();
        assert!(
            messages[0].contains("2 log line(s) dropped"),
            "{messages:?}"
        );
        assert_eq!(&messages[1..], ["line 2", "line 3", "line 4"]);
        // Said once.
        b.push(line(5));
        let again = b.take(10, "t");
        assert_eq!(again.lines.len(), 1);
        assert_eq!(again.lines[0].message, "line 5");
    }

    #[test]
    fn an_undelivered_batch_goes_back_in_front_and_batches_are_bounded() {
        let mut b = Buffer::new(10);
        for n in 0..6 {
            b.push(line(n));
        }
        let batch = b.take(4, "t");
        assert_eq!(batch.lines.len(), 4);
        b.push(line(6));
        b.put_back(batch);
        let all = b.take(100, "t");
        let messages: Vec<&str> = all.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "line 0", "line 1", "line 2", "line 3", "line 4", "line 5", "line 6"
            ]
        );
        // Put back into a buffer that filled meanwhile: the overflow counts
        // as dropped.
        let mut b = Buffer::new(2);
        b.push(line(0));
        b.push(line(1));
        let batch = b.take(2, "t");
        b.push(line(2));
        b.push(line(3));
        b.put_back(batch);
        let next = b.take(10, "t");
        assert!(next.lines[0].message.contains("2 log line(s) dropped"));
        assert_eq!(next.lines.len(), 3);
    }
}
