//! `connections`: base URLs, shared headers and query, retry policies. Each
//! is checked once here; an http step that names one copies it in `http.rs`.

use serde_json::Value;

use super::{Compiler, Scope};
use crate::plan::{AuthPlan, Expr};

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
            if let Some(auth) = &conn.auth {
                let plan = self.auth(auth, &format!("{base}.auth"));
                self.conn_auth.insert(name.clone(), plan);
            }
        }
    }

    /// A connection's `auth:`: templates over `env` only (a value read from
    /// a trigger or a step would not be the connection's), never empty.
    pub(super) fn auth(&mut self, auth: &crate::model::Auth, path: &str) -> AuthPlan {
        let scope = Scope::default();
        let value = |c: &mut Self, text: &str, field: &str| {
            let at = format!("{path}.{}.{field}", auth.kind());
            if text.trim().is_empty() {
                c.error(&at, format!("`{field}` is empty"));
            }
            let expr = c.expr_str(text, &at, &scope);
            let mut refs = Vec::new();
            expr.references(&mut refs);
            if refs
                .iter()
                .any(|r| r.first().is_some_and(|root| root != "env"))
            {
                c.error(
                    &at,
                    "a connection's credentials are templates over `env` only",
                );
            }
            expr
        };
        let origin = path.trim_end_matches(".auth").to_owned();
        AuthPlan::compile(auth, origin, |text, field| value(self, text, field))
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
