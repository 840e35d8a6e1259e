//! The http step: its connection (base URL, headers, query, idempotency,
//! timeout, rate limit, network allowance) merged with what the step writes,
//! and its body. `uses.rs` builds on the same plan for app actions.

use serde_json::Value;

use super::{Compiler, Scope};
use crate::diagnostic::did_you_mean;
use crate::model::{BodySpec, Idempotency};
use crate::plan::{
    parse_network, Expr, HttpBody, HttpPlan, NetworkAllowance, RetryPolicy,
    DEFAULT_IDEMPOTENCY_HEADER, DEFAULT_REQUEST_TIMEOUT,
};

impl Compiler<'_> {
    pub(super) fn http(
        &mut self,
        http: &crate::model::HttpStep,
        base: &str,
        scope: &Scope,
    ) -> (HttpPlan, Option<RetryPolicy>) {
        let connection = match &http.connection {
            None => None,
            Some(name) => match self.loaded.scenario.connections.get(name) {
                Some(c) => Some(c),
                None if self.section_unreadable("connections") => None,
                None => {
                    let known = self.loaded.scenario.connections.keys().map(String::as_str);
                    let hint = did_you_mean(name, known)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    self.error(
                        &format!("{base}.connection"),
                        format!("unknown connection `{name}`{hint}"),
                    );
                    None
                }
            },
        };
        let conn_path = http.connection.as_ref().map(|n| format!("connections.{n}"));
        let base_url = connection.map(|c| {
            self.expr_str(
                &c.base_url,
                &format!("{}.base_url", conn_path.as_deref().unwrap_or_default()),
                &Scope::default(),
            )
        });
        let target = match (&http.url, &http.path) {
            (Some(url), None) => self.expr_str(url, &format!("{base}.url"), scope),
            (None, Some(path)) => {
                if http.connection.is_none() {
                    self.error(
                        &format!("{base}.path"),
                        "`path` needs a `connection` with a base_url; use `url` for a full URL",
                    );
                }
                self.expr_str(path, &format!("{base}.path"), scope)
            }
            (Some(_), Some(_)) => {
                self.error(base, "an http step takes `url` or `path`, not both");
                Expr::Literal(Value::Null)
            }
            (None, None) => {
                self.error(
                    base,
                    "an http step needs `url` (a full URL) or `path` (with a connection)",
                );
                Expr::Literal(Value::Null)
            }
        };
        if let Expr::Literal(Value::String(url)) = &target {
            if http.url.is_some() && !(url.starts_with("http://") || url.starts_with("https://")) {
                self.error(
                    &format!("{base}.url"),
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        let mut query = Vec::new();
        let mut headers = Vec::new();
        if let Some(conn) = connection {
            let cp = conn_path.clone().unwrap_or_default();
            for (k, v) in &conn.query {
                query.push((
                    k.clone(),
                    self.expr(v, &format!("{cp}.query.{k}"), &Scope::default()),
                ));
            }
            for (k, v) in &conn.headers {
                headers.push((
                    k.clone(),
                    self.expr(v, &format!("{cp}.headers.{k}"), &Scope::default()),
                ));
            }
        }
        for (k, v) in &http.query {
            query.retain(|(existing, _)| existing != k);
            query.push((k.clone(), self.expr(v, &format!("{base}.query.{k}"), scope)));
        }
        for (k, v) in &http.headers {
            headers.retain(|(existing, _): &(String, Expr)| !existing.eq_ignore_ascii_case(k));
            headers.push((
                k.clone(),
                self.expr(v, &format!("{base}.headers.{k}"), scope),
            ));
        }
        let (spec, several) = http.body_spec();
        if several {
            self.error(
                base,
                "an http step takes at most one of `json`, `form` and `body`",
            );
        }
        let body = match spec {
            BodySpec::Json(json) => HttpBody::Json(self.expr(json, &format!("{base}.json"), scope)),
            BodySpec::Form(form) => HttpBody::Form(
                form.iter()
                    .map(|(k, v)| (k.clone(), self.expr(v, &format!("{base}.form.{k}"), scope)))
                    .collect(),
            ),
            BodySpec::Text(text) => {
                HttpBody::Text(self.expr_str(text, &format!("{base}.body"), scope))
            }
            BodySpec::None => HttpBody::None,
        };
        if let Some(expect) = &http.expect {
            for (i, status) in expect.iter().enumerate() {
                if !(100..=599).contains(status) {
                    self.error(
                        &format!("{base}.expect[{i}]"),
                        format!("{status} is not an HTTP status (100 to 599)"),
                    );
                }
            }
        }
        let plan = HttpPlan {
            method: http.method,
            base_url,
            target,
            base_env: http.url.as_deref().and_then(leading_env),
            query,
            headers,
            body,
            expect: http.expect.clone(),
            idempotency_header: match connection.and_then(|c| c.idempotency.as_ref()) {
                None | Some(Idempotency::Enabled(true)) => {
                    Some(DEFAULT_IDEMPOTENCY_HEADER.to_owned())
                }
                Some(Idempotency::Enabled(false)) => None,
                Some(Idempotency::Header { header }) => {
                    if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                        self.error(
                            &format!(
                                "{}.idempotency.header",
                                conn_path.as_deref().unwrap_or_default()
                            ),
                            format!("`{header}` is not a valid HTTP header name"),
                        );
                    }
                    Some(header.clone())
                }
            },
            request_timeout: connection
                .and_then(|c| c.timeout)
                .map(|d| d.as_std())
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            rate_limit: connection.and_then(|c| c.rate_limit),
            app: None,
            auth: http
                .connection
                .as_ref()
                .and_then(|name| self.conn_auth.get(name).cloned()),
            allowance: match connection {
                None => NetworkAllowance::default(),
                Some(c) => NetworkAllowance {
                    private: c.allow_private,
                    networks: c
                        .allow_network
                        .iter()
                        .enumerate()
                        .filter_map(|(i, text)| match parse_network(text) {
                            Ok(net) => Some(net),
                            Err(e) => {
                                let cp = conn_path.as_deref().unwrap_or_default();
                                self.error(&format!("{cp}.allow_network[{i}]"), e);
                                None
                            }
                        })
                        .collect(),
                },
            },
        };
        (
            plan,
            connection
                .and_then(|c| c.retry.as_ref())
                .map(RetryPolicy::from_spec),
        )
    }
}

/// `API` for a URL that begins with `{{ env.API }}`.
fn leading_env(url: &str) -> Option<String> {
    let inside = url.trim_start().strip_prefix("{{")?.split_once("}}")?.0;
    let name = inside.trim().strip_prefix("env.")?;
    let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plain.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::leading_env;

    #[test]
    fn the_env_value_that_begins_a_url_is_found() {
        assert_eq!(leading_env("{{ env.API }}/users").as_deref(), Some("API"));
        assert_eq!(leading_env("{{env.API_V2}}").as_deref(), Some("API_V2"));
        assert_eq!(leading_env("https://x.test/{{ env.API }}"), None);
        assert_eq!(leading_env("{{ url_encode env.API }}/x"), None);
        assert_eq!(leading_env("{{ vars.base }}/x"), None);
    }
}
