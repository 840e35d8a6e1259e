//! The PostgreSQL store: one database (and schema) shared by every daemon
//! and command of a team, on one machine or several.
//!
//! `tokio-postgres` with a bounded `deadpool` pool: statements are prepared
//! once per connection and cached, queries are plain strings checked by the
//! tests, so nothing needs a database at build time. The schema is created
//! and migrated on first use, under an advisory lock so that daemons starting
//! together migrate once; a schema written by a newer scenarist is refused.
//!
//! Concurrency is what this backend adds over SQLite's single writer: every
//! method is one transaction at READ COMMITTED, and where two writers could
//! each miss the other's change (a dedupe key, a concurrency slot, an event
//! and a wait, a counter) the statement is atomic (`ON CONFLICT`, a
//! conditional `UPDATE ... RETURNING`) or the transaction takes a lock first.

mod browse;
mod credentials;
mod data;
mod events;
mod journal;
mod pace;
mod queue;
mod rows;
mod store_impl;
mod watches;
mod writer;
mod writes;

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::OnceCell;

use super::{without_password, StoreError};

/// Migrations, in order; the position is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_keys.sql"),
    include_str!("0003_rate_limits.sql"),
    include_str!("0004_watches.sql"),
    include_str!("0005_credentials.sql"),
];

/// Connections per process: enough for a daemon's workers, small enough that
/// several daemons stay well under PostgreSQL's default of 100.
const POOL_SIZE: usize = 16;

/// The advisory lock that serialises migrations across processes.
const MIGRATION_LOCK: i64 = 0x5343_4E52_0001;

/// A handle to the store; cheap to clone, shared by every execution.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    schema: String,
    /// The URL with its password masked, for messages.
    shown: String,
    ready: std::sync::Arc<OnceCell<()>>,
    /// For the LISTEN connection, which lives outside the pool.
    config: tokio_postgres::Config,
    /// The shared-commit writers, started on first use (on the runtime of
    /// the first caller).
    writer: std::sync::Arc<OnceCell<writer::Writer>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.shown)
    }
}

fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl PgStore {
    /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME]`; the
    /// first connection (and the migration) happens on first use.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let shown = without_password(url);
        let refuse = |message: String| StoreError::Url {
            url: shown.clone(),
            message,
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut schema = "scenarist".to_owned();
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", name)) => {
                    if !valid_schema(name) {
                        return Err(refuse(format!(
                            "`{name}` is not a schema name scenarist uses: lowercase letters, digits and `_`, at most 63"
                        )));
                    }
                    name.clone_into(&mut schema);
                }
                _ => passed.push(pair),
            }
        }
        let rest = if passed.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed.join("&"))
        };
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| {
            refuse(format!(
                "{e}; the form is postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME]"
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(refuse("the URL names no host".to_owned()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("scenarist");
        }
        config.options(format!("-c search_path={schema}"));
        let manager = Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| refuse(e.to_string()))?;
        Ok(PgStore {
            pool,
            schema,
            shown,
            ready: Default::default(),
            config,
            writer: Default::default(),
        })
    }

    /// A pooled connection, the schema migrated: every method starts here.
    /// The migration (which takes a connection of its own) runs before this
    /// caller takes one: many first calls at once must not hold every
    /// connection of the pool while the migration waits for one.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.ready
            .get_or_try_init(|| async { self.migrate().await })
            .await?;
        self.pool.get().await.map_err(|e| self.unreachable(e))
    }

    /// LISTENs on the queue channel on a connection of its own and rings for
    /// every notification, until that connection fails.
    pub(super) async fn listen(&self, ring: &(dyn Fn() + Send + Sync)) -> Result<(), StoreError> {
        use futures::StreamExt;
        let (client, mut connection) =
            self.config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| StoreError::Open {
                    path: self.shown.clone(),
                    message: format!("PostgreSQL is unreachable: {e}"),
                })?;
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        {
            let listen = client.batch_execute("LISTEN scenarist_queue");
            tokio::pin!(listen);
            // The LISTEN completes only while the connection is driven.
            loop {
                tokio::select! {
                    done = &mut listen => { done.map_err(db)?; break; }
                    message = messages.next() => match message {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(db(e)),
                        None => return Ok(()),
                    },
                }
            }
        }
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => ring(),
                Ok(_) => {}
                Err(e) => return Err(db(e)),
            }
        }
        drop(client);
        Ok(())
    }

    /// The writers, the schema migrated first.
    async fn writer(&self) -> Result<&writer::Writer, StoreError> {
        drop(self.client().await?);
        Ok(self
            .writer
            .get_or_init(|| async { writer::Writer::start(self.pool.clone()) })
            .await)
    }

    fn unreachable(&self, e: deadpool_postgres::PoolError) -> StoreError {
        StoreError::Open {
            path: self.shown.clone(),
            message: format!("PostgreSQL is unreachable: {e}"),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(|e| self.unreachable(e))?;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db)?;
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.scenarist_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
            schema = self.schema
        ))
        .await
        .map_err(db)?;
        let version: Option<String> = tx
            .query_opt(
                &format!(
                    "SELECT value FROM {}.scenarist_meta WHERE name = 'schema_version'",
                    self.schema
                ),
                &[],
            )
            .await
            .map_err(db)?
            .map(|row| row.get(0));
        let found = match version {
            None => {
                let tables: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name <> 'scenarist_meta'",
                        &[&self.schema],
                    )
                    .await
                    .map_err(db)?
                    .get(0);
                if tables > 0 {
                    return Err(StoreError::Foreign {
                        path: format!("{} (schema {})", self.shown, self.schema),
                        reason: format!("the schema holds {tables} tables of something else"),
                    });
                }
                0
            }
            Some(text) => text.parse::<usize>().map_err(|_| {
                StoreError::Corrupt(format!("schema version `{text}` is not a number"))
            })?,
        };
        if found > MIGRATIONS.len() {
            return Err(StoreError::TooNew {
                path: format!("{} (schema {})", self.shown, self.schema),
                found,
                known: MIGRATIONS.len(),
            });
        }
        for migration in &MIGRATIONS[found..] {
            tx.batch_execute(&format!(
                "SET LOCAL search_path = {};\n{migration}",
                self.schema
            ))
            .await
            .map_err(db)?;
        }
        tx.execute(
            &format!(
                "INSERT INTO {}.scenarist_meta (name, value) VALUES ('schema_version', $1)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                self.schema
            ),
            &[&MIGRATIONS.len().to_string()],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }
}

/// A database error as the store reports it: PostgreSQL's own message when
/// there is one (it never holds the connection's password).
pub(super) fn db(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) => StoreError::Database(format!("{} ({})", d.message(), d.code().code())),
        None => StoreError::Database(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_shown_with_their_password() {
        let store = PgStore::open("postgres://ops:pw@127.0.0.1:5432/db?schema=team_a").unwrap();
        assert_eq!(store.schema, "team_a");
        assert!(!store.shown.contains("pw@"));
        let err = PgStore::open("postgres://ops:pw@127.0.0.1/db?schema=Bad-Name")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a schema name") && !err.contains(":pw@"),
            "{err}"
        );
        let err = PgStore::open("postgresql://ops:pw@127.0.0.1/db?sslmode=bogus")
            .unwrap_err()
            .to_string();
        assert!(!err.contains(":pw@"), "{err}");
    }
}
