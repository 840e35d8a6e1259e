//! The SQLite store: one file (or memory), WAL mode, one writer thread.
//!
//! Every call becomes a job for a dedicated thread that owns the connection.
//! The thread takes every job waiting in its queue, runs each in its own
//! savepoint inside one transaction, commits once, and only then answers each
//! caller: a group commit. One execution still waits for its step to be
//! committed before the next step starts; many executions at once share commits.
//!
//! Durability: `synchronous=NORMAL` by default. In WAL mode a commit is in the
//! log before the call returns, so a killed or crashed process loses nothing;
//! an OS crash or power cut may lose the last moment's commits (those steps run
//! again on resume, with the same `Idempotency-Key`). `?sync=full` makes every
//! commit wait for the disk, for machines where that risk is not acceptable.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};
use tokio::sync::oneshot;

use crate::store::StoreError;
pub use log::{parse_size, DEFAULT_MAX_LOG, MIN_MAX_LOG};

mod browse;
mod credentials;
mod data;
mod events;
mod lanes;
mod log;
mod queue;
mod readers;
mod rows;
mod store_impl;
mod waits;
mod watches;

/// `PRAGMA application_id` of scenarist stores: "SCNR".
const APPLICATION_ID: i32 = 0x5343_4E52;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Jobs committed together at most.
const MAX_BATCH: usize = 512;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_init.sql")),
        M::up(include_str!("../migrations/0002_daemon.sql")),
        M::up(include_str!("../migrations/0003_review.sql")),
        M::up(include_str!("../migrations/0004_events.sql")),
        M::up(include_str!("../migrations/0005_keys.sql")),
        M::up(include_str!("../migrations/0006_unfinished.sql")),
        M::up(include_str!("../migrations/0007_watches.sql")),
        M::up(include_str!("../migrations/0008_credentials.sql")),
    ])
}

const KNOWN_SCHEMA: usize = 8;

/// How hard each commit presses on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Normal,
    Full,
}

type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A job runs inside the batch's transaction, or is told why there is none.
type Job = Box<dyn FnOnce(Result<&Connection, String>) -> (bool, Reply) + Send>;

/// A handle to the store; cheap to clone, shared by every execution.
#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<(lanes::Lane, Job)>,
    /// Reader threads of a store file (none in memory: one connection).
    readers: Option<std::sync::Arc<readers::LazyReaders>>,
    /// The write-ahead log's size and checkpoints (none in memory).
    log: Option<std::sync::Arc<log::LogGauge>>,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) and migrates the store file.
    pub fn open(path: &Path, sync: Durability) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, sync, DEFAULT_MAX_LOG)
    }

    /// As [`SqliteStore::open`], keeping the write-ahead log under `max_log` bytes.
    pub fn open_with(
        path: &Path,
        sync: Durability,
        max_log: u64,
    ) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        let open_error = |message: String| StoreError::Open {
            path: shown.clone(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_error(format!("cannot create {}: {e}", dir.display())))?;
        }
        if path.is_dir() {
            return Err(open_error("it is a directory".to_owned()));
        }
        let conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        Self::prepare(conn, Some((path, max_log.max(MIN_MAX_LOG))), &shown, sync)
    }

    /// A store that lives as long as the process: for throwaway runs and tests.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()?;
        Self::prepare(conn, None, "memory", Durability::Normal)
    }

    fn prepare(
        mut conn: Connection,
        file: Option<(&Path, u64)>,
        shown: &str,
        sync: Durability,
    ) -> Result<SqliteStore, StoreError> {
        let foreign = |reason: String| StoreError::Foreign {
            path: shown.to_owned(),
            reason,
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // The first read tells a database from any other file.
        let application_id: i32 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => {
                    foreign("it is not an SQLite database".to_owned())
                }
                _ => StoreError::Open {
                    path: shown.to_owned(),
                    message: e.to_string(),
                },
            })?;
        let tables = |conn: &Connection| -> Result<Vec<String>, StoreError> {
            Ok(conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        };
        if application_id != 0 && application_id != APPLICATION_ID {
            return Err(foreign(format!(
                "it is an SQLite database of another application (application_id {application_id:#x})"
            )));
        }
        if application_id == 0 {
            // A new file, or one another process is making a store right now:
            // decide under the write lock. The id is written before any table,
            // so tables without it are someone else's.
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let marked: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            let found = tables(&conn)?;
            if marked == 0 && !found.is_empty() {
                conn.execute_batch("ROLLBACK")?;
                return Err(foreign(format!(
                    "it is an SQLite database with other tables ({})",
                    found.join(", ")
                )));
            }
            if marked == 0 {
                conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
            }
            conn.execute_batch("COMMIT")?;
        }
        let schema: usize =
            conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        if schema > KNOWN_SCHEMA {
            return Err(StoreError::TooNew {
                path: shown.to_owned(),
                found: schema,
                known: KNOWN_SCHEMA,
            });
        }
        if shown != "memory" {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Open {
                    path: shown.to_owned(),
                    message: format!("cannot switch to WAL mode (got {mode})"),
                });
            }
        }
        conn.execute_batch(match sync {
            Durability::Normal => "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            Durability::Full => "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        })?;
        if schema < KNOWN_SCHEMA {
            migrate(&mut conn, shown)?;
        }
        let running = std::sync::Arc::new(std::sync::Mutex::new(()));
        let (readers, checkpoints, log) = match file {
            Some((path, max_log)) => {
                conn.execute_batch(&format!("PRAGMA journal_size_limit = {max_log};"))?;
                let gauge = log::LogGauge::new(path, max_log);
                (
                    Some(std::sync::Arc::new(readers::LazyReaders::new(path))),
                    Some(readers::Checkpoints::new(
                        path,
                        running.clone(),
                        gauge.clone(),
                    )),
                    Some(gauge),
                )
            }
            None => (None, None, None),
        };
        let ceiling = log
            .clone()
            .map(|gauge| log::LogCeiling::new(gauge, running));
        let (jobs, queue) = mpsc::channel::<(lanes::Lane, Job)>();
        std::thread::Builder::new()
            .name("scenarist-store".to_owned())
            .spawn(move || writer(conn, queue, checkpoints, ceiling))
            .map_err(|e| StoreError::Database(format!("cannot start the store thread: {e}")))?;
        Ok(SqliteStore { jobs, readers, log })
    }

    /// Runs `f` where it reads the last committed state without waiting for
    /// the writer: a reader thread, or the writer thread of an in-memory store.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.readers {
            Some(readers) => readers.read(f).await,
            None => self.call(f).await,
        }
    }

    /// Runs `f` on the writer thread inside the next group commit.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_in(lanes::Lane::Steps, f).await
    }

    /// As [`SqliteStore::call`], for accepting an event: committed ahead of
    /// the steps waiting (`lanes.rs`), so a `202` never waits behind them.
    async fn accept<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.call_in(lanes::Lane::Acceptance, f).await
    }

    async fn call_in<T, F>(&self, lane: lanes::Lane, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => f(conn),
                Err(message) => Err(StoreError::Database(message)),
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = tx.send(committed.and(result));
            });
            (ok, reply)
        });
        self.jobs
            .send((lane, job))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// Brings the schema to [`KNOWN_SCHEMA`]. Several processes may open a new
/// store at once (eight `scenarist run` on one file): each migration is one
/// transaction, but the version is read before it, so two processes can both
/// start from the same version and the second meets the first's tables
/// ("table already exists"). Then the version is read again: another process
/// migrated, and the schema is whole, or it moved on and the rest is tried again.
fn migrate(conn: &mut Connection, shown: &str) -> Result<(), StoreError> {
    let version = |conn: &Connection| -> rusqlite::Result<usize> {
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| v as usize)
    };
    let mut seen = version(conn)?;
    loop {
        let failure = match migrations().to_latest(conn) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let now = version(conn)?;
        if now >= KNOWN_SCHEMA {
            return Ok(());
        }
        if now == seen {
            return Err(StoreError::Open {
                path: shown.to_owned(),
                message: format!("migration failed: {failure}"),
            });
        }
        seen = now;
    }
}

/// The writer thread: group commits until every handle is dropped.
fn writer(
    conn: Connection,
    queue: mpsc::Receiver<(lanes::Lane, Job)>,
    mut checkpoints: Option<readers::Checkpoints>,
    mut ceiling: Option<log::LogCeiling>,
) {
    // A write failed for want of room, and the write-ahead log has not been
    // truncated since.
    let mut short_of_room = false;
    let mut lanes = lanes::Lanes::new(queue, MAX_BATCH);
    while let Some(mut batch) = lanes.next_batch() {
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            let message = format!("cannot begin a transaction: {e}");
            tracing::error!(error = %message, "store");
            for job in batch {
                let (_, reply) = job(Err(message.clone()));
                reply(Ok(()));
            }
            if is_full(&e) {
                short_of_room = !make_room(&conn);
            }
            continue;
        }
        let mut answers: Vec<Reply> = Vec::with_capacity(batch.len());
        // Set when SQLite rolled the whole transaction back on its own (a
        // full disk, an I/O error): the jobs after it must not run outside
        // any transaction, each committing alone, while all are told they failed.
        let mut lost: Option<String> = None;
        let committed = if batch.len() == 1 {
            // Alone in its transaction: no savepoint needed, a failure rolls it all back.
            let job = batch.pop().expect("one job");
            let (ok, reply) = job(Ok(&conn));
            answers.push(reply);
            if ok {
                control(&conn, "COMMIT")
            } else if conn.is_autocommit() {
                lost =
                    Some("SQLite gave the transaction up (a full disk or an I/O error)".to_owned());
                Ok(())
            } else {
                control(&conn, "ROLLBACK")
            }
        } else {
            for job in batch {
                if let Some(why) = &lost {
                    let (_, reply) = job(Err(why.clone()));
                    answers.push(reply);
                    continue;
                }
                let _ = control(&conn, "SAVEPOINT job");
                let (ok, reply) = job(Ok(&conn));
                answers.push(reply);
                if conn.is_autocommit() {
                    lost = Some(
                        "SQLite gave the transaction up (a full disk or an I/O error)".to_owned(),
                    );
                    continue;
                }
                if !ok {
                    let _ = control(&conn, "ROLLBACK TO job");
                }
                let _ = control(&conn, "RELEASE job");
            }
            match &lost {
                None => control(&conn, "COMMIT"),
                Some(_) => Ok(()),
            }
        };
        // Tried at each failure, and at the first commit after one: the
        // room the disk got back is not left to a log that only grows.
        if lost.is_some() || committed.as_ref().is_err_and(is_full) || short_of_room {
            short_of_room = !make_room(&conn);
        }
        let committed = match lost {
            Some(why) => Err(why),
            None => committed.map_err(|e| format!("commit failed: {e}")),
        };
        if committed.is_err() && !conn.is_autocommit() {
            let _ = control(&conn, "ROLLBACK");
        }
        if committed.is_ok() {
            if let Some(checkpoints) = &mut checkpoints {
                checkpoints.committed(&conn);
            }
        }
        for answer in answers {
            answer(committed.clone().map_err(StoreError::Database));
        }
        // After the answers: a checkpoint that cuts the log holds the next
        // commit, never one whose callers are waiting for it.
        if let (Ok(()), Some(ceiling)) = (&committed, &mut ceiling) {
            ceiling.committed(&conn);
        }
    }
}

fn is_full(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// After a write failed on a full disk (or SQLite gave its transaction up):
/// the write-ahead log may be what fills the disk (it is copied into the
/// database only every 1000 pages, and its file never shrinks by itself),
/// so copy it back and truncate it. That works once the database file has
/// room for its new pages; until then it is tried again. True when done.
fn make_room(conn: &Connection) -> bool {
    if !conn.is_autocommit() {
        let _ = control(conn, "ROLLBACK");
    }
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(0) => {
            tracing::info!(
                "the store's write-ahead log was checkpointed and truncated to make room"
            );
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::debug!(error = %e, "the write-ahead log could not be checkpointed");
            false
        }
    }
}

/// Transaction control statements, prepared once.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
