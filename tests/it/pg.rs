//! The PostgreSQL server the tests may use: `SCENARIST_TEST_POSTGRES` holds
//! its URL (`.ci/run` sets it and fails when the server is unreachable).
//! Without it, PostgreSQL tests skip with one line saying how to enable them.

use std::sync::Once;

pub const VARIABLE: &str = "SCENARIST_TEST_POSTGRES";

/// The server's URL, or `None` after printing (once) how to enable the tests.
pub fn server() -> Option<String> {
    static SAID: Once = Once::new();
    match std::env::var(VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            SAID.call_once(|| {
                eprintln!("skipping PostgreSQL tests: set {VARIABLE}=postgres://USER@HOST:PORT/DB to run them");
            });
            None
        }
    }
}

/// A schema of this test's own on the test server, dropped by [`Schema::drop`],
/// or when the value is dropped (a failing test unwinds through it), so no
/// test leaves its schema behind.
pub struct Schema {
    pub name: String,
    /// The store URL naming the schema.
    pub url: String,
    server: String,
    dropped: std::sync::atomic::AtomicBool,
}

impl Schema {
    pub async fn new(tag: &str) -> Option<Schema> {
        let server = server()?;
        let name = format!("t_{tag}_{}", uuid::Uuid::new_v4().simple());
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}schema={name}");
        // Reachable, or the test fails: a set variable means "test this".
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("{VARIABLE} is set but PostgreSQL is unreachable: {e}"));
        tokio::spawn(connection);
        drop(client);
        Some(Schema {
            name,
            url,
            server,
            dropped: Default::default(),
        })
    }

    pub async fn drop(&self) {
        self.dropped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        execute_quietly(&self.server, &sql).await;
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if !self.dropped.load(std::sync::atomic::Ordering::SeqCst) {
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            execute_blocking(&self.server, sql);
        }
    }
}

/// Runs `sql` on the server, ignoring failures (cleanup).
pub async fn execute_quietly(server: &str, sql: &str) {
    if let Ok((client, connection)) = tokio_postgres::connect(server, tokio_postgres::NoTls).await {
        tokio::spawn(connection);
        let _ = client.batch_execute(sql).await;
    }
}

/// As [`execute_quietly`], from a `Drop`: on a thread and runtime of its
/// own, since the test's runtime may be the one unwinding.
pub fn execute_blocking(server: &str, sql: String) {
    let server = server.to_owned();
    let cleanup = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(execute_quietly(&server, &sql));
        }
    });
    let _ = cleanup.join();
}
