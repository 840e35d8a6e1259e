//! A write-ahead log with a ceiling.
//!
//! SQLite starts its log over only when a write begins and finds the whole
//! log copied into the database with no reader still inside it. Under
//! sustained load that moment never comes: the checkpoint thread's `PASSIVE`
//! checkpoints copy while commits keep appending, so the log grew for as long
//! as the load lasted (4 GB in minutes, measured), filling the disk and
//! making every read walk a larger log index.
//!
//! So the writer watches the log's size after each commit. Past half the
//! ceiling it stops appending for one moment and takes a `TRUNCATE`
//! checkpoint itself, between two group commits: the checkpoint thread has
//! already copied nearly all of the log, so what is left is the last few
//! commits' pages and one sync of the database; readers hold a snapshot for
//! one job only (`readers.rs`), so none stays inside the log for long. The
//! wait for readers is bounded (`READER_WAIT`); when one is still inside,
//! the writer goes on and tries again at most every `RETRY_PAUSE`. The log
//! file is then cut to zero, and `journal_size_limit` keeps it at most the
//! ceiling when SQLite restarts it by itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// The ceiling when the store URL sets none (`?max_log=64MB`).
pub const DEFAULT_MAX_LOG: u64 = 64 * 1024 * 1024;

/// The smallest ceiling accepted: a few group commits' pages.
pub const MIN_MAX_LOG: u64 = 256 * 1024;

/// The longest the writer waits for readers to leave the log.
const READER_WAIT: Duration = Duration::from_millis(50);

/// After a checkpoint that could not finish (a reader stayed in the log
/// longer than `READER_WAIT`, say a thread the OS set aside), the pause
/// before the next try; doubled after each failure in a row up to
/// `LONGEST_PAUSE`, so a reader that never lets go costs the writer at most
/// `READER_WAIT` a second.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// What `/metrics` and `/healthz` read: shared by the writer and the store handle.
#[derive(Debug)]
pub(super) struct LogGauge {
    wal: PathBuf,
    database: PathBuf,
    pub(super) ceiling: u64,
    truncations: AtomicU64,
    last_checkpoint_us: AtomicU64,
    longest_checkpoint_us: AtomicU64,
}

impl LogGauge {
    pub(super) fn new(database: &Path, ceiling: u64) -> Arc<LogGauge> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Arc::new(LogGauge {
            wal: PathBuf::from(wal),
            database: database.to_owned(),
            ceiling,
            truncations: AtomicU64::new(0),
            last_checkpoint_us: AtomicU64::new(0),
            longest_checkpoint_us: AtomicU64::new(0),
        })
    }

    /// The log file's size now (0 when there is none).
    pub(super) fn log_bytes(&self) -> u64 {
        std::fs::metadata(&self.wal).map(|m| m.len()).unwrap_or(0)
    }

    pub(super) fn stats(&self) -> crate::store::StorageStats {
        crate::store::StorageStats {
            log_bytes: self.log_bytes(),
            log_ceiling: self.ceiling,
            store_bytes: std::fs::metadata(&self.database)
                .map(|m| m.len())
                .unwrap_or(0),
            log_truncations: self.truncations.load(Ordering::Relaxed),
            last_checkpoint: Duration::from_micros(self.last_checkpoint_us.load(Ordering::Relaxed)),
            longest_checkpoint: Duration::from_micros(
                self.longest_checkpoint_us.load(Ordering::Relaxed),
            ),
        }
    }
}

/// The writer's side: decides when to cut the log, and does it.
pub(super) struct LogCeiling {
    gauge: Arc<LogGauge>,
    /// No try before this, after one that could not finish.
    not_before: Option<Instant>,
    /// The pause after the next failure.
    pause: Duration,
    /// Held by the checkpoint thread while it copies: the cut waits for
    /// that copy to end rather than for SQLite's checkpoint lock, which it
    /// would give up on after `READER_WAIT`.
    running: Arc<Mutex<()>>,
}

impl LogCeiling {
    pub(super) fn new(gauge: Arc<LogGauge>, running: Arc<Mutex<()>>) -> LogCeiling {
        LogCeiling {
            gauge,
            not_before: None,
            pause: RETRY_PAUSE,
            running,
        }
    }

    /// Called by the writer after each commit, outside any transaction.
    pub(super) fn committed(&mut self, conn: &Connection) {
        if self.gauge.log_bytes() <= self.gauge.ceiling / 2 {
            return;
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let started = Instant::now();
        let alone = self.running.lock();
        let done = truncate(conn);
        drop(alone);
        let took = started.elapsed().as_micros() as u64;
        self.gauge.last_checkpoint_us.store(took, Ordering::Relaxed);
        self.gauge
            .longest_checkpoint_us
            .fetch_max(took, Ordering::Relaxed);
        if done {
            self.gauge.truncations.fetch_add(1, Ordering::Relaxed);
            self.not_before = None;
            self.pause = RETRY_PAUSE;
        } else {
            self.not_before = Some(Instant::now() + self.pause);
            self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        }
    }
}

/// A `TRUNCATE` checkpoint waiting at most [`READER_WAIT`] for readers;
/// true when the log was copied whole and cut to zero.
fn truncate(conn: &Connection) -> bool {
    if conn.busy_timeout(READER_WAIT).is_err() {
        return false;
    }
    let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    let _ = conn.busy_timeout(super::BUSY_TIMEOUT);
    match result {
        Ok(0) => true,
        Ok(_) => {
            tracing::debug!("a reader was still in the store's log; the log is cut later");
            false
        }
        Err(e) => {
            tracing::debug!(error = %e, "the store's log could not be cut");
            false
        }
    }
}

/// `64MB`, `512KB`, `1GB` or a number of bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let upper = text.trim().to_ascii_uppercase();
    let (number, unit) = match upper.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => upper.split_at(at),
        None => (upper.as_str(), ""),
    };
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KB" | "K" | "KIB" => 1024,
        "MB" | "M" | "MIB" => 1024 * 1024,
        "GB" | "G" | "GIB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(parse_size("64MB"), Some(64 * 1024 * 1024));
        assert_eq!(parse_size("512kb"), Some(512 * 1024));
        assert_eq!(parse_size("1G"), Some(1024 * 1024 * 1024));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5TB"), None);
        assert_eq!(parse_size(""), None);
    }
}
