//! What keeps reads and checkpoints off the writer thread of a store file.
//!
//! The writer thread is the store's one serial resource: every execution's
//! commits wait in its queue. Two things used to run there although they write
//! nothing an execution waits for:
//!
//! - **Reads** (the API, the CLI, the dashboard, the workers' maintenance
//!   queries): in WAL mode a reader sees the last committed state and never
//!   blocks the writer, so they run on a few reader threads of their own, each
//!   with its own connection, and a slow page no longer delays a commit.
//! - **Checkpoints**: SQLite copies the write-ahead log back into the database
//!   on the committing connection once the log passes 1,000 pages, and that
//!   copy (with its fsync) stalled one commit in every few hundred by about
//!   10 ms. The writer's automatic checkpoint is off; a checkpoint thread with
//!   its own connection runs a `PASSIVE` checkpoint (which never takes the
//!   write lock) at most every `CHECKPOINT_PAUSE` while commits come, and the
//!   writer only ever appends.
//!
//! Both start only when needed, so that a short command (`scenarist run`,
//! `executions list`) pays for neither: the readers at the first read, the
//! checkpoint thread after `HANDOVER_AFTER` commits (until then SQLite's own
//! automatic checkpoint stays on). An in-memory store has one connection and
//! no log: everything stays on the writer thread there.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

/// Reader threads (and connections) of a store file.
const READERS: usize = 3;

/// The shortest time between two checkpoints: under load each copies the
/// pages of that many milliseconds of commits (a hot index page once, not
/// once per commit), and the log stays a few megabytes long.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(200);

/// Commits after which the checkpoint thread takes over from SQLite's own
/// automatic checkpoint: a process that commits this often is a daemon.
const HANDOVER_AFTER: u64 = 64;

/// The reader threads of a store file, opened at the first read.
pub(super) struct LazyReaders {
    path: PathBuf,
    pool: OnceLock<Result<Readers, String>>,
}

impl LazyReaders {
    pub(super) fn new(path: &Path) -> LazyReaders {
        LazyReaders {
            path: path.to_owned(),
            pool: OnceLock::new(),
        }
    }

    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self
            .pool
            .get_or_init(|| Readers::open(&self.path).map_err(|e| e.to_string()));
        match pool {
            Ok(readers) => readers.read(f).await,
            Err(message) => Err(StoreError::Database(message.clone())),
        }
    }
}

/// The writer's side of checkpointing: counts commits, hands over to the
/// checkpoint thread once the store is busy, then rings it after each commit.
pub(super) struct Checkpoints {
    path: PathBuf,
    commits: u64,
    thread: Option<Checkpointer>,
    /// Held while a checkpoint runs, by the thread or by the writer cutting
    /// the log (`log.rs`): two checkpoints never wait on each other.
    running: Arc<Mutex<()>>,
    /// Told after each copy, so it can ask the writer for a cut.
    gauge: Arc<super::log::LogGauge>,
}

impl Checkpoints {
    pub(super) fn new(
        path: &Path,
        running: Arc<Mutex<()>>,
        gauge: Arc<super::log::LogGauge>,
    ) -> Checkpoints {
        Checkpoints {
            path: path.to_owned(),
            commits: 0,
            thread: None,
            running,
            gauge,
        }
    }

    /// Called by the writer after each successful commit, on its connection.
    pub(super) fn committed(&mut self, conn: &Connection) {
        if let Some(thread) = &self.thread {
            thread.ring();
            return;
        }
        self.commits += 1;
        if self.commits < HANDOVER_AFTER {
            return;
        }
        if conn.execute_batch("PRAGMA wal_autocheckpoint = 0").is_err() {
            return;
        }
        match Checkpointer::start(&self.path, self.running.clone(), self.gauge.clone()) {
            Ok(thread) => {
                thread.ring();
                self.thread = Some(thread);
            }
            Err(e) => {
                // SQLite's own checkpoint goes on, on the commit path.
                tracing::warn!(error = %e, "no checkpoint thread");
                let _ = conn.execute_batch("PRAGMA wal_autocheckpoint = 1000");
                self.commits = 0;
            }
        }
    }
}

type ReadJob = Box<dyn FnOnce(Result<&Connection, &StoreError>) + Send>;

/// A pool of reader threads over one store file.
pub(super) struct Readers {
    jobs: mpsc::Sender<ReadJob>,
}

impl Readers {
    /// Opens `READERS` connections to `path` (already migrated) and their threads.
    pub(super) fn open(path: &Path) -> Result<Readers, StoreError> {
        let (jobs, queue) = mpsc::channel::<ReadJob>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..READERS {
            let conn = reader_connection(path)?;
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("scenarist-read-{n}"))
                .spawn(move || read_loop(conn, &queue))
                .map_err(|e| StoreError::Database(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(Readers { jobs })
    }

    /// Runs `f` on a reader connection, outside any write transaction.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => f(conn),
                Err(e) => Err(StoreError::Database(e.to_string())),
            };
            let _ = tx.send(result);
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn reader_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    // A reader never writes, whatever a job tries.
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

fn read_loop(conn: Connection, queue: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // One snapshot for the whole job: an execution and its steps are read
        // as of the same commit.
        match super::control(&conn, "BEGIN") {
            Ok(()) => {
                job(Ok(&conn));
                let _ = super::control(&conn, "COMMIT");
            }
            Err(e) => job(Err(&StoreError::from(e))),
        }
    }
}

/// The checkpoint thread's handle: the writer rings it after each commit;
/// dropping it ends the thread (after a last checkpoint).
pub(super) struct Checkpointer {
    rings: mpsc::SyncSender<()>,
}

impl Checkpointer {
    pub(super) fn start(
        path: &Path,
        running: Arc<Mutex<()>>,
        gauge: Arc<super::log::LogGauge>,
    ) -> Result<Checkpointer, StoreError> {
        let (rings, rung) = mpsc::sync_channel::<()>(1);
        let conn = Connection::open(path)?;
        conn.busy_timeout(super::BUSY_TIMEOUT)?;
        std::thread::Builder::new()
            .name("scenarist-checkpoint".to_owned())
            .spawn(move || checkpoint_loop(conn, &rung, &running, &gauge))
            .map_err(|e| {
                StoreError::Database(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer { rings })
    }

    /// Called by the writer after a commit; never blocks (a ring already
    /// pending is enough).
    pub(super) fn ring(&self) {
        let _ = self.rings.try_send(());
    }
}

fn checkpoint_loop(
    conn: Connection,
    rung: &mpsc::Receiver<()>,
    running: &Mutex<()>,
    gauge: &super::log::LogGauge,
) {
    // A log frame is a page and its 24-byte header.
    let page_size = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .map_or(4096, |size| size.max(512) as u64 + 24);
    loop {
        let stop = rung.recv().is_err();
        // PASSIVE copies what no reader still needs and never waits for the
        // writer; the writer cuts the log once it passes half its ceiling.
        let alone = running.lock();
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) => {
                drop(alone);
                gauge.copied(frames.max(0) as u64 * page_size);
            }
            Err(e) => tracing::debug!(error = %e, "checkpoint of the store's log"),
        }
        if stop {
            return;
        }
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
}
