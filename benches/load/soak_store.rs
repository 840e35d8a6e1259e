//! The store a soak runs on, and what it measures of it as the load goes
//! on: an SQLite file (its database and write-ahead log), or a schema of
//! its own on a PostgreSQL server (its tables' heap and indexes, and the
//! dead rows autovacuum has not reclaimed yet: bloat, as it grows).

use std::path::{Path, PathBuf};

/// Where a soak's daemons keep their journal.
pub enum SoakStore {
    Sqlite { db: PathBuf, wal: PathBuf },
    Postgres { server: String, schema: String },
}

/// The store's size at one moment; `NaN` where the backend has no such thing.
pub struct StoreSize {
    /// SQLite: the write-ahead log file. PostgreSQL: none (its WAL is the server's).
    pub log_mb: f64,
    /// SQLite: the database file. PostgreSQL: the schema's tables (heap and TOAST).
    pub store_mb: f64,
    /// PostgreSQL: the schema's indexes (SQLite's are in its file).
    pub index_mb: f64,
    /// PostgreSQL: dead rows as a share of all rows (bloat not yet vacuumed).
    pub dead_pct: f64,
    /// PostgreSQL: autovacuum runs on the schema's tables so far.
    pub autovacuums: f64,
}

impl SoakStore {
    /// A fresh SQLite file in `dir`, or a fresh schema on `postgres`.
    pub fn fresh(dir: &Path, name: &str, postgres: Option<&str>) -> SoakStore {
        match postgres {
            Some(server) => {
                let store = SoakStore::Postgres {
                    server: server.to_owned(),
                    schema: format!("soak_{name}_{}", std::process::id()),
                };
                store.drop_schema();
                store
            }
            None => {
                let db = dir.join(format!("{name}.db"));
                let mut wal = db.as_os_str().to_owned();
                wal.push("-wal");
                SoakStore::Sqlite {
                    db,
                    wal: PathBuf::from(wal),
                }
            }
        }
    }

    /// The daemon's `--store`, with `args` (`max_log=16MB`, ...) added.
    pub fn url(&self, args: &str) -> String {
        let base = match self {
            SoakStore::Sqlite { db, .. } => format!("sqlite://{}", db.display()),
            SoakStore::Postgres { server, schema } => {
                let separator = if server.contains('?') { '&' } else { '?' };
                format!("{server}{separator}schema={schema}")
            }
        };
        match (args, base.contains('?')) {
            ("", _) => base,
            (args, true) => format!("{base}&{args}"),
            (args, false) => format!("{base}?{args}"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            SoakStore::Sqlite { .. } => "SQLite file".to_owned(),
            // Whether the server vacuums by itself decides what bloat shows.
            SoakStore::Postgres { server, .. } => format!(
                "PostgreSQL schema (server {}, autovacuum {})",
                psql(server, "SHOW server_version"),
                psql(server, "SHOW autovacuum")
            ),
        }
    }

    pub fn size(&self) -> StoreSize {
        match self {
            SoakStore::Sqlite { db, wal } => StoreSize {
                log_mb: file_mb(wal),
                store_mb: file_mb(db),
                index_mb: f64::NAN,
                dead_pct: f64::NAN,
                autovacuums: f64::NAN,
            },
            SoakStore::Postgres { server, schema } => {
                let figures = psql(
                    server,
                    &format!(
                        "SELECT coalesce(sum(pg_table_size(relid)), 0), coalesce(sum(pg_indexes_size(relid)), 0), \
                         coalesce(sum(n_dead_tup), 0), coalesce(sum(n_live_tup), 0), coalesce(sum(autovacuum_count), 0) \
                         FROM pg_stat_user_tables WHERE schemaname = '{schema}'"
                    ),
                );
                let numbers: Vec<f64> = figures
                    .split('|')
                    .map(|n| n.trim().parse().unwrap_or(f64::NAN))
                    .collect();
                let at = |i: usize| numbers.get(i).copied().unwrap_or(f64::NAN);
                let mb = 1024.0 * 1024.0;
                StoreSize {
                    log_mb: f64::NAN,
                    store_mb: at(0) / mb,
                    index_mb: at(1) / mb,
                    dead_pct: 100.0 * at(2) / (at(2) + at(3)).max(1.0),
                    autovacuums: at(4),
                }
            }
        }
    }

    /// Bytes the store holds in all (SQLite: database and log; PostgreSQL:
    /// tables and indexes).
    pub fn bytes(&self) -> f64 {
        let size = self.size();
        let mb = 1024.0 * 1024.0;
        match self {
            SoakStore::Sqlite { .. } => (size.log_mb + size.store_mb) * mb,
            SoakStore::Postgres { .. } => (size.store_mb + size.index_mb) * mb,
        }
    }

    /// Removes a PostgreSQL schema (an SQLite file goes with its folder).
    pub fn drop_schema(&self) {
        if let SoakStore::Postgres { server, schema } = self {
            psql(server, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / (1024.0 * 1024.0)
}

/// One statement through `psql`, its unaligned output (the load benches
/// use the client on the machine rather than a driver of their own).
fn psql(server: &str, sql: &str) -> String {
    let output = std::process::Command::new("psql")
        .arg(server)
        .args(["-qAtc", sql])
        .output()
        .expect("run psql");
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
