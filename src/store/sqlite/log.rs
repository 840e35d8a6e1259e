//! A write-ahead log with a ceiling.
//!
//! SQLite starts its log over only when a write begins and finds the whole
//! log copied into the database with no reader still inside it. Under
//! sustained load that moment never comes: the checkpoint thread's `PASSIVE`
//! checkpoints copy while commits keep appending, so the log grew for as long
//! as the load lasted (4 GB in minutes, measured), filling the disk and
//! making every read walk a larger log index.
//!
//! So the log is started over by the writer itself, between two group
//! commits, with a `RESTART` checkpoint, at the moment it costs least: right after
//! the checkpoint thread finished copying, when the log is past half the
//! ceiling, the thread asks for a cut, and the writer takes it after its
//! next commit. What is left to copy then is the few commits since, and one
//! sync of the database. The writer never waits for the thread's copy (it
//! skips the cut while one runs) unless the log has passed the ceiling
//! itself, the hard bound (also the only trigger before the thread starts).
//! Readers hold a snapshot for one job only (`readers.rs`), so none stays in
//! the log for long; the wait for them is bounded (`READER_WAIT`), and when
//! one is still inside, the writer goes on and tries again after
//! `RETRY_PAUSE`. The next commit writes the log from its start again, and
//! `journal_size_limit` cuts the file back to the ceiling if it grew past it
//! (`TRUNCATE`, which gives the whole file back, cost tens of milliseconds
//! more per cut in the soak: the file system frees and allocates it again).

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
    /// Set by the checkpoint thread after a copy that left the log past
    /// half the ceiling: the writer cuts it after its next commit.
    cut_asked: std::sync::atomic::AtomicBool,
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
            cut_asked: Default::default(),
            last_checkpoint_us: AtomicU64::new(0),
            longest_checkpoint_us: AtomicU64::new(0),
        })
    }

    /// Called by the checkpoint thread after each copy, with how much the
    /// log holds (its file may be longer: it is written again from the start).
    pub(super) fn copied(&self, log_content: u64) {
        if log_content > self.ceiling / 2 {
            self.cut_asked.store(true, Ordering::Relaxed);
        }
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
        let asked = self.gauge.cut_asked.load(Ordering::Relaxed);
        // The file passes the ceiling only while the log holds more.
        let over = self.gauge.log_bytes() > self.gauge.ceiling;
        if !(asked || over) {
            return;
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let started = Instant::now();
        // While the thread copies, a cut would wait for its copy: skip it,
        // unless the ceiling itself is passed.
        let alone = match self.running.try_lock() {
            Ok(alone) => alone,
            Err(std::sync::TryLockError::WouldBlock) if !over => return,
            Err(_) => match self.running.lock() {
                Ok(alone) => alone,
                Err(poisoned) => poisoned.into_inner(),
            },
        };
        let done = restart(conn);
        drop(alone);
        self.gauge.cut_asked.store(false, Ordering::Relaxed);
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

/// A `RESTART` checkpoint waiting at most [`READER_WAIT`] for readers;
/// true when the log was copied whole and the next commit starts it over.
fn restart(conn: &Connection) -> bool {
    if conn.busy_timeout(READER_WAIT).is_err() {
        return false;
    }
    let result = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
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
