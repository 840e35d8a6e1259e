//! `connections`: base URLs, shared headers and query, retry policies. Each
//! is checked once here; an http step that names one copies it in `http.rs`.

use serde_json::Value;

use super::{Compiler, Scope};
use crate::plan::Expr;

impl Compiler<'_> {
    pub(super) fn check_connections(&mut self) {
        let scope = Scope::default();
        for (name, conn) in &self.loaded.scenario.connections {
            let base = format!("connections.{name}");
            let url = self.expr_str(&conn.base_url, &format!("{base}.base_url"), &scope);
            if let Expr::Literal(Value::String(u)) = &url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    self.error(
                        &format!("{base}.base_url"),
                        format!("`{u}` is not an http:// or https:// URL"),
                    );
                }
            }
            for (k, v) in &conn.headers {
                self.expr(v, &format!("{base}.headers.{k}"), &scope);
            }
            for (k, v) in &conn.query {
                self.expr(v, &format!("{base}.query.{k}"), &scope);
            }
            if let Some(retry) = &conn.retry {
                self.check_retry(retry, &format!("{base}.retry"));
            }
        }
    }

    pub(super) fn check_retry(&mut self, retry: &crate::model::RetrySpec, path: &str) {
        if retry.attempts == 0 || retry.attempts > 50 {
            self.error(
                &format!("{path}.attempts"),
                format!(
                    "attempts must be between 1 and 50, found {}",
                    retry.attempts
                ),
            );
        }
        if let (Some(initial), Some(max)) = (retry.initial, retry.max) {
            if initial > max {
                self.error(
                    &format!("{path}.initial"),
                    format!("initial delay {initial} is longer than max {max}"),
                );
            }
        }
    }
}
