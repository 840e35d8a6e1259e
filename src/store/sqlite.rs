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

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{
    ExecutionFilter, ExecutionSummary, Finish, NewExecution, PruneRule, Store, StoreError,
    StoredExecution,
};
use crate::engine::{DataOp, DataRequest, ExecutionStatus, StepRecord, StepStatus};
use crate::model::StepKind;

/// `PRAGMA application_id` of scenarist stores: "SCNR".
const APPLICATION_ID: i32 = 0x5343_4E52;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Jobs committed together at most.
const MAX_BATCH: usize = 512;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_init.sql")),
        M::up(include_str!("migrations/0002_daemon.sql")),
        M::up(include_str!("migrations/0003_review.sql")),
    ])
}

const KNOWN_SCHEMA: usize = 3;

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
    jobs: mpsc::Sender<Job>,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) and migrates the store file.
    pub fn open(path: &Path, sync: Durability) -> Result<SqliteStore, StoreError> {
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
        Self::prepare(conn, &shown, sync)
    }

    /// A store that lives as long as the process: for throwaway runs and tests.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()?;
        Self::prepare(conn, "memory", Durability::Normal)
    }

    fn prepare(
        mut conn: Connection,
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
        let schema: usize =
            conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if application_id != 0 && application_id != APPLICATION_ID {
            return Err(foreign(format!(
                "it is an SQLite database of another application (application_id {application_id:#x})"
            )));
        }
        if application_id == 0 && !tables.is_empty() {
            return Err(foreign(format!(
                "it is an SQLite database with other tables ({})",
                tables.join(", ")
            )));
        }
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
            // Several processes may open a new store at once: migrate under the write lock.
            conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")?;
            migrations()
                .to_latest(&mut conn)
                .map_err(|e| StoreError::Open {
                    path: shown.to_owned(),
                    message: format!("migration failed: {e}"),
                })?;
            conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("scenarist-store".to_owned())
            .spawn(move || writer(conn, queue))
            .map_err(|e| StoreError::Database(format!("cannot start the store thread: {e}")))?;
        Ok(SqliteStore { jobs })
    }

    /// Runs `f` on the writer thread inside the next group commit.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
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
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// The writer thread: group commits until every handle is dropped.
fn writer(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            let message = format!("cannot begin a transaction: {e}");
            tracing::error!(error = %message, "store");
            for job in batch {
                let (_, reply) = job(Err(message.clone()));
                reply(Ok(()));
            }
            continue;
        }
        let mut answers: Vec<Reply> = Vec::with_capacity(batch.len());
        let committed = if batch.len() == 1 {
            // Alone in its transaction: no savepoint needed, a failure rolls it all back.
            let job = batch.pop().expect("one job");
            let (ok, reply) = job(Ok(&conn));
            answers.push(reply);
            if ok {
                control(&conn, "COMMIT")
            } else {
                control(&conn, "ROLLBACK")
            }
        } else {
            for job in batch {
                let _ = control(&conn, "SAVEPOINT job");
                let (ok, reply) = job(Ok(&conn));
                if !ok {
                    let _ = control(&conn, "ROLLBACK TO job");
                }
                let _ = control(&conn, "RELEASE job");
                answers.push(reply);
            }
            control(&conn, "COMMIT")
        };
        let committed = committed.map_err(|e| format!("commit failed: {e}"));
        if committed.is_err() && !conn.is_autocommit() {
            let _ = control(&conn, "ROLLBACK");
        }
        for answer in answers {
            answer(committed.clone().map_err(StoreError::Database));
        }
    }
}

/// Transaction control statements, prepared once.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(super) fn from_micros(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(value).unwrap_or_default()
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn parse_json(text: &str, what: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn kind_name(text: &str) -> &'static str {
    StepKind::NAMES
        .iter()
        .find(|k| **k == text)
        .copied()
        .unwrap_or("unknown")
}

const SUMMARY_COLUMNS: &str = "id, scenario, version, status, attempt, started_at, finished_at, next_retry_at, error_step, error, owner, replay_of";

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ExecutionSummary, String>> {
    let id: String = row.get(0)?;
    let status: String = row.get(3)?;
    let replay_of: Option<String> = row.get(11)?;
    Ok((|| {
        Ok(ExecutionSummary {
            id: Uuid::parse_str(&id).map_err(|e| format!("execution id `{id}`: {e}"))?,
            scenario: row.get(1).map_err(|e| e.to_string())?,
            version: row.get(2).map_err(|e| e.to_string())?,
            status: status.parse()?,
            attempt: row.get::<_, i64>(4).map_err(|e| e.to_string())? as u32,
            started_at: from_micros(row.get(5).map_err(|e| e.to_string())?),
            finished_at: row
                .get::<_, Option<i64>>(6)
                .map_err(|e| e.to_string())?
                .map(from_micros),
            next_retry_at: row
                .get::<_, Option<i64>>(7)
                .map_err(|e| e.to_string())?
                .map(from_micros),
            error_step: row.get(8).map_err(|e| e.to_string())?,
            error: row.get(9).map_err(|e| e.to_string())?,
            owner: row.get(10).map_err(|e| e.to_string())?,
            replay_of: replay_of.and_then(|r| Uuid::parse_str(&r).ok()),
        })
    })())
}

fn summaries(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<ExecutionSummary>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, summary_from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.map_err(StoreError::Corrupt)?);
    }
    Ok(out)
}

pub(super) fn upsert_step(
    conn: &Connection,
    execution_id: &str,
    record: &StepRecord,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO steps (execution_id, path, step_key, kind, status, attempts, input, output, error, detail, started_at, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (execution_id, path) DO UPDATE SET
           step_key = excluded.step_key, kind = excluded.kind, status = excluded.status,
           attempts = excluded.attempts, input = excluded.input, output = excluded.output,
           error = excluded.error, detail = excluded.detail, started_at = excluded.started_at,
           duration_ms = excluded.duration_ms",
    )?
    .execute(params![
        execution_id,
        record.path,
        record.key(),
        record.kind,
        record.status.as_str(),
        record.attempts,
        record.input.as_ref().map(json_text),
        json_text(&record.output),
        record.error,
        record.detail,
        micros(record.started_at),
        record.duration_ms as i64,
    ])?;
    Ok(())
}

fn insert_execution(
    conn: &Connection,
    new: &NewExecution,
    status: ExecutionStatus,
    concurrency_key: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO executions (id, scenario, version, status, trigger_doc, vars, attempt, started_at, updated_at, owner, replay_of, concurrency_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        new.id.to_string(),
        new.scenario,
        new.version,
        status.as_str(),
        json_text(&new.trigger),
        json_text(&Value::Object(new.vars.clone())),
        micros(new.started_at),
        micros(Utc::now()),
        match status {
            ExecutionStatus::Queued => None,
            _ => Some(new.owner.as_str()),
        },
        new.replay_of.map(|r| r.to_string()),
        concurrency_key,
    ])?;
    Ok(())
}

/// The execution's stored trigger, vars and steps, with its summary.
fn load_execution(conn: &Connection, id: Uuid) -> Result<Option<StoredExecution>, StoreError> {
    let id_text = id.to_string();
    let found = summaries(
        conn,
        &format!("SELECT {SUMMARY_COLUMNS} FROM executions WHERE id = ?1"),
        &[&id_text],
    )?;
    let Some(summary) = found.into_iter().next() else {
        return Ok(None);
    };
    let (trigger, vars): (String, String) = conn
        .prepare_cached("SELECT trigger_doc, vars FROM executions WHERE id = ?1")?
        .query_row([&id_text], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let trigger = parse_json(&trigger, "a trigger")?;
    let vars = match parse_json(&vars, "vars")? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut statement = conn.prepare_cached(
        "SELECT path, kind, status, attempts, input, output, error, detail, started_at, duration_ms
         FROM steps WHERE execution_id = ?1 ORDER BY started_at, seq",
    )?;
    let rows = statement.query_map([&id_text], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, i64>(8)?,
            r.get::<_, i64>(9)?,
        ))
    })?;
    let mut steps = Vec::new();
    for row in rows {
        let (path, kind, status, attempts, input, output, error, detail, started, duration) = row?;
        steps.push(StepRecord {
            path,
            kind: kind_name(&kind),
            status: status.parse().map_err(StoreError::Corrupt)?,
            input: input.map(|i| parse_json(&i, "a step input")).transpose()?,
            output: parse_json(&output, "a step output")?,
            error,
            attempts: attempts as u32,
            started_at: from_micros(started),
            duration_ms: duration as u64,
            detail,
        });
    }
    Ok(Some(StoredExecution {
        summary,
        trigger,
        vars,
        steps,
    }))
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_version(
        &self,
        scenario: &str,
        version: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let (scenario, version, source) =
            (scenario.to_owned(), version.to_owned(), source.to_owned());
        self.call(move |conn| {
            conn.prepare_cached(
                "INSERT INTO scenario_versions (scenario, version, source, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (scenario, version) DO NOTHING",
            )?
            .execute(params![scenario, version, source, micros(Utc::now())])?;
            Ok(())
        })
        .await
    }

    async fn version_source(
        &self,
        scenario: &str,
        version: &str,
    ) -> Result<Option<String>, StoreError> {
        let (scenario, version) = (scenario.to_owned(), version.to_owned());
        self.call(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT source FROM scenario_versions WHERE scenario = ?1 AND version = ?2",
                )?
                .query_row(params![scenario, version], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn start_execution(&self, new: NewExecution) -> Result<(), StoreError> {
        self.call(move |conn| insert_execution(conn, &new, ExecutionStatus::Running, None))
            .await
    }

    async fn record_step(&self, execution_id: Uuid, record: &StepRecord) -> Result<(), StoreError> {
        let record = record.clone();
        self.call(move |conn| upsert_step(conn, &execution_id.to_string(), &record))
            .await
    }

    async fn finish_execution(&self, execution_id: Uuid, finish: Finish) -> Result<(), StoreError> {
        self.call(move |conn| {
            let (error_step, error) = match finish.error {
                Some(e) => (Some(e.step), Some(e.message)),
                None => (None, None),
            };
            conn.prepare_cached(
                "UPDATE executions SET status = ?2, finished_at = ?3, updated_at = ?3, next_retry_at = ?4,
                   error_step = ?5, error = ?6, owner = NULL WHERE id = ?1",
            )?
            .execute(params![
                execution_id.to_string(),
                finish.status.as_str(),
                micros(finish.finished_at),
                finish.next_retry_at.map(micros),
                error_step,
                error,
            ])?;
            Ok(())
        })
        .await
    }

    async fn data(
        &self,
        execution_id: Uuid,
        step_path: &str,
        request: &DataRequest,
        now: DateTime<Utc>,
    ) -> Result<Value, StoreError> {
        let request = request.clone();
        let step_path = step_path.to_owned();
        self.call(move |conn| {
            let now_us = micros(now);
            let current: Option<Value> = conn
                .prepare_cached(
                    "SELECT value FROM data_entries WHERE store = ?1 AND key = ?2
                     AND (expires_at IS NULL OR expires_at > ?3)",
                )?
                .query_row(params![request.store, request.key, now_us], |r| r.get::<_, String>(0))
                .optional()?
                .map(|text| parse_json(&text, "a data store value"))
                .transpose()?;
            let write = |value: &Value, ttl: Option<Duration>| -> Result<(), StoreError> {
                let expires = ttl.map(|t| now_us + t.as_micros() as i64);
                conn.prepare_cached(
                    "INSERT INTO data_entries (store, key, value, updated_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (store, key) DO UPDATE SET value = excluded.value,
                       updated_at = excluded.updated_at, expires_at = excluded.expires_at",
                )?
                .execute(params![request.store, request.key, json_text(value), now_us, expires])?;
                Ok(())
            };
            let output = match &request.op {
                DataOp::Get => current.unwrap_or(Value::Null),
                DataOp::Put { value, ttl } => {
                    write(value, *ttl)?;
                    value.clone()
                }
                DataOp::Delete => {
                    conn.prepare_cached("DELETE FROM data_entries WHERE store = ?1 AND key = ?2")?
                        .execute(params![request.store, request.key])?;
                    current.unwrap_or(Value::Null)
                }
                DataOp::Increment { by, ttl } => {
                    let next = crate::engine::increment(current.as_ref(), *by, &request.key)
                        .map_err(|e| StoreError::Database(e.0))?;
                    write(&next, *ttl)?;
                    next
                }
                DataOp::Record { value, data } => super::events::record(
                    conn,
                    &execution_id.to_string(),
                    &request.store,
                    &request.key,
                    *value,
                    data,
                    now,
                )?,
            };
            // The step's result, in the same transaction as its effect.
            let record = StepRecord {
                path: step_path.clone(),
                kind: match request.op {
                    DataOp::Record { .. } => "record",
                    _ => "store",
                },
                status: StepStatus::Succeeded,
                input: None,
                output: output.clone(),
                error: None,
                attempts: 1,
                started_at: now,
                duration_ms: 0,
                detail: None,
            };
            upsert_step(conn, &execution_id.to_string(), &record)?;
            Ok(output)
        })
        .await
    }

    async fn decide(
        &self,
        id: Uuid,
        decision: &StepRecord,
        now: DateTime<Utc>,
    ) -> Result<super::Decided, StoreError> {
        let decision = decision.clone();
        self.call(move |conn| super::events::decide(conn, id, &decision, now))
            .await
    }

    async fn business_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<Vec<crate::report::BusinessEvent>, StoreError> {
        let scenario = scenario.map(str::to_owned);
        self.call(move |conn| super::events::events(conn, since, until, scenario.as_deref()))
            .await
    }

    async fn report_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        scenario: Option<&str>,
    ) -> Result<crate::report::ExecutionCounts, StoreError> {
        let scenario = scenario.map(str::to_owned);
        self.call(move |conn| super::events::counts(conn, since, until, scenario.as_deref()))
            .await
    }

    async fn execution(&self, id: Uuid) -> Result<Option<StoredExecution>, StoreError> {
        self.call(move |conn| load_execution(conn, id)).await
    }

    async fn find_ids(&self, prefix: &str) -> Result<Vec<Uuid>, StoreError> {
        let pattern = format!("{}%", prefix.to_ascii_lowercase().replace(['%', '_'], ""));
        self.call(move |conn| {
            let mut statement = conn
                .prepare_cached("SELECT id FROM executions WHERE id LIKE ?1 ORDER BY id LIMIT 5")?;
            let ids = statement
                .query_map([&pattern], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok())
                .filter_map(|id| Uuid::parse_str(&id).ok())
                .collect();
            Ok(ids)
        })
        .await
    }

    async fn list(&self, filter: &ExecutionFilter) -> Result<Vec<ExecutionSummary>, StoreError> {
        let filter = filter.clone();
        self.call(move |conn| {
            let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM executions WHERE 1 = 1");
            let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
            if let Some(scenario) = filter.scenario {
                values.push(Box::new(scenario));
                sql.push_str(&format!(" AND scenario = ?{}", values.len()));
            }
            if let Some(status) = filter.status {
                values.push(Box::new(status.as_str()));
                sql.push_str(&format!(" AND status = ?{}", values.len()));
            }
            if let Some(since) = filter.since {
                values.push(Box::new(micros(since)));
                sql.push_str(&format!(" AND started_at >= ?{}", values.len()));
            }
            values.push(Box::new(filter.limit.unwrap_or(50) as i64));
            sql.push_str(&format!(
                " ORDER BY started_at DESC, id DESC LIMIT ?{}",
                values.len()
            ));
            let refs: Vec<&dyn rusqlite::ToSql> = values.iter().map(|v| v.as_ref()).collect();
            summaries(conn, &sql, &refs)
        })
        .await
    }

    async fn claim(
        &self,
        id: Uuid,
        expected: ExecutionStatus,
        expected_owner: Option<&str>,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        let (expected_owner, owner) = (expected_owner.map(str::to_owned), owner.to_owned());
        self.call(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE executions SET status = 'running', owner = ?4, attempt = attempt + 1,
                       updated_at = ?5, finished_at = NULL, next_retry_at = NULL
                     WHERE id = ?1 AND status = ?2 AND owner IS ?3",
                )?
                .execute(params![
                    id.to_string(),
                    expected.as_str(),
                    expected_owner,
                    owner,
                    micros(now)
                ])?;
            if changed == 0 {
                return Ok(None);
            }
            let attempt: i64 = conn
                .prepare_cached("SELECT attempt FROM executions WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))?;
            Ok(Some(attempt as u32))
        })
        .await
    }

    async fn resumable(&self, now: DateTime<Utc>) -> Result<Vec<ExecutionSummary>, StoreError> {
        self.call(move |conn| {
            summaries(
                conn,
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM executions
                     WHERE status = 'running'
                        OR (status IN ('incomplete', 'waiting', 'queued') AND next_retry_at <= ?1)
                     ORDER BY started_at"
                ),
                &[&micros(now)],
            )
        })
        .await
    }

    async fn prune(&self, rule: &PruneRule) -> Result<u64, StoreError> {
        let rule = rule.clone();
        self.call(move |conn| {
            let finished = "status IN ('succeeded', 'failed', 'filtered', 'rejected')";
            let mut deleted = 0u64;
            let mut special = Vec::new();
            for (scenario, before) in &rule.per_scenario {
                special.push(scenario.clone());
                deleted += conn
                    .prepare_cached(&format!(
                        "DELETE FROM executions WHERE scenario = ?1 AND {finished} AND started_at < ?2"
                    ))?
                    .execute(params![scenario, micros(*before)])? as u64;
            }
            let mut sql = format!("DELETE FROM executions WHERE {finished} AND started_at < ?1");
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
            let before = micros(rule.before);
            values.push(&before);
            if !special.is_empty() {
                let marks: Vec<String> = (0..special.len()).map(|i| format!("?{}", i + 2)).collect();
                sql.push_str(&format!(" AND scenario NOT IN ({})", marks.join(", ")));
                values.extend(special.iter().map(|s| s as &dyn rusqlite::ToSql));
            }
            deleted += conn.prepare(&sql)?.execute(values.as_slice())? as u64;
            Ok(deleted)
        })
        .await
    }

    async fn enqueue(
        &self,
        new: NewExecution,
        admission: super::Admission,
        now: DateTime<Utc>,
    ) -> Result<super::Enqueued, StoreError> {
        self.call(move |conn| {
            if let Some(dedupe) = &admission.dedupe {
                if let Some(existing) = take_dedupe_key(conn, &new.scenario, dedupe, new.id, now)? {
                    return Ok(super::Enqueued::Duplicate(existing));
                }
            }
            if let Some(tick) = admission.tick {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO schedule_ticks (scenario, scheduled_at, execution_id) VALUES (?1, ?2, ?3)
                         ON CONFLICT (scenario, scheduled_at) DO NOTHING",
                    )?
                    .execute(params![new.scenario, micros(tick), new.id.to_string()])?;
                if inserted == 0 {
                    let holder: String = conn
                        .prepare_cached(
                            "SELECT execution_id FROM schedule_ticks WHERE scenario = ?1 AND scheduled_at = ?2",
                        )?
                        .query_row(params![new.scenario, micros(tick)], |r| r.get(0))?;
                    let holder =
                        Uuid::parse_str(&holder).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    return Ok(super::Enqueued::Duplicate(holder));
                }
            }
            insert_execution(
                conn,
                &new,
                ExecutionStatus::Queued,
                admission.concurrency_key.as_deref(),
            )?;
            Ok(super::Enqueued::Accepted(new.id))
        })
        .await
    }

    async fn claim_queued(
        &self,
        owner: &str,
        limits: &[(String, u32)],
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<StoredExecution>, StoreError> {
        let owner = owner.to_owned();
        let limits: std::collections::HashMap<String, u32> = limits.iter().cloned().collect();
        self.call(move |conn| {
            let mut running: std::collections::HashMap<(String, Option<String>), u32> =
                std::collections::HashMap::new();
            if !limits.is_empty() {
                let mut statement = conn.prepare_cached(
                    "SELECT scenario, concurrency_key, COUNT(*) FROM executions WHERE status = 'running' GROUP BY scenario, concurrency_key",
                )?;
                let rows = statement.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?))
                })?;
                for row in rows {
                    let (scenario, key, count) = row?;
                    running.insert((scenario, key), count as u32);
                }
            }
            let mut statement = conn.prepare_cached(
                "SELECT id, scenario, concurrency_key FROM executions WHERE status = 'queued' ORDER BY id LIMIT 256",
            )?;
            let candidates: Vec<(String, String, Option<String>)> = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut chosen = Vec::new();
            for (id, scenario, key) in candidates {
                if chosen.len() >= max {
                    break;
                }
                if let Some(limit) = limits.get(&scenario) {
                    // Taking one counts against the limit of the next candidates too,
                    // and an earlier one waiting keeps the later ones of its key waiting.
                    let slot = running.entry((scenario, key)).or_insert(0);
                    if *slot >= *limit {
                        continue;
                    }
                    *slot += 1;
                }
                chosen.push(id);
            }
            let mut claimed = Vec::with_capacity(chosen.len());
            for id in chosen {
                conn.prepare_cached(
                    "UPDATE executions SET status = 'running', owner = ?2, updated_at = ?3, started_at = ?3 WHERE id = ?1 AND status = 'queued'",
                )?
                .execute(params![id, owner, micros(now)])?;
                let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if let Some(stored) = load_execution(conn, id)? {
                    claimed.push(stored);
                }
            }
            Ok(claimed)
        })
        .await
    }

    async fn queue_depth(&self) -> Result<u64, StoreError> {
        self.call(|conn| {
            Ok(conn
                .prepare_cached("SELECT COUNT(*) FROM executions WHERE status = 'queued'")?
                .query_row([], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }

    async fn last_tick(&self, scenario: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let scenario = scenario.to_owned();
        self.call(move |conn| {
            let last: Option<i64> = conn
                .prepare_cached("SELECT MAX(scheduled_at) FROM schedule_ticks WHERE scenario = ?1")?
                .query_row([scenario], |r| r.get(0))?;
            Ok(last.map(from_micros))
        })
        .await
    }

    async fn dedupe(
        &self,
        scenario: &str,
        key: &str,
        execution_id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let scenario = scenario.to_owned();
        let dedupe = super::DedupeKey {
            key: key.to_owned(),
            expires_at,
        };
        self.call(move |conn| take_dedupe_key(conn, &scenario, &dedupe, execution_id, now))
            .await
    }
}

/// Takes a dedupe key for `execution_id`, or names the execution that holds it.
fn take_dedupe_key(
    conn: &Connection,
    scenario: &str,
    dedupe: &super::DedupeKey,
    execution_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    let existing: Option<String> = conn
        .prepare_cached(
            "SELECT execution_id FROM dedupe_keys WHERE scenario = ?1 AND key = ?2 AND expires_at > ?3",
        )?
        .query_row(params![scenario, dedupe.key, micros(now)], |r| r.get(0))
        .optional()?;
    if let Some(existing) = existing {
        return Ok(Uuid::parse_str(&existing).ok());
    }
    conn.prepare_cached(
        "INSERT INTO dedupe_keys (scenario, key, execution_id, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (scenario, key) DO UPDATE SET execution_id = excluded.execution_id, expires_at = excluded.expires_at",
    )?
    .execute(params![scenario, dedupe.key, execution_id.to_string(), micros(dedupe.expires_at)])?;
    Ok(None)
}
