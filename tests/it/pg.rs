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

/// A schema of this test's own on the test server, dropped by [`Schema::drop`].
pub struct Schema {
    pub name: String,
    /// The store URL naming the schema.
    pub url: String,
    server: String,
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
        Some(Schema { name, url, server })
    }

    pub async fn drop(&self) {
        if let Ok((client, connection)) =
            tokio_postgres::connect(&self.server, tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
                .await;
        }
    }
}
