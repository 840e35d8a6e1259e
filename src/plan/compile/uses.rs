//! `uses: APP.ACTION` with `with: {...}`: an http step built from an app's
//! compiled action. Checked here: the app and the action exist ("did you
//! mean"), every `with` field is one the action takes, every required one is
//! given, and constant values have the schema's type. Templated values are
//! checked at run time, after rendering, before anything is sent.

use std::sync::Arc;

use serde_json::Value;

use super::{Compiler, Scope};
use crate::diagnostic::did_you_mean;
use crate::load::join_key;
use crate::model::UsesStep;
use crate::plan::{AppCall, Expr, HttpBody, HttpPlan, RetryPolicy, DEFAULT_REQUEST_TIMEOUT};

fn placeholder() -> HttpPlan {
    HttpPlan {
        method: crate::model::HttpMethod::Get,
        base_url: None,
        target: Expr::Literal(Value::Null),
        base_env: None,
        query: Vec::new(),
        headers: Vec::new(),
        body: HttpBody::None,
        expect: None,
        request_timeout: DEFAULT_REQUEST_TIMEOUT,
        idempotency_header: None,
        allowance: Default::default(),
        rate_limit: None,
        app: None,
        auth: None,
    }
}

impl Compiler<'_> {
    pub(super) fn uses(
        &mut self,
        uses: &UsesStep,
        path: &str,
        scope: &Scope,
    ) -> (HttpPlan, Option<RetryPolicy>) {
        let at = format!("{path}.uses");
        let Some((app_name, action_name)) = uses.target() else {
            self.error(
                &at,
                format!(
                    "`{}` is not `APP.ACTION`, e.g. `referral-factory.qualify`",
                    uses.uses
                ),
            );
            return (placeholder(), None);
        };
        let Some(app) = self.apps.get(app_name).cloned() else {
            let hint = did_you_mean(app_name, self.apps.keys().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    format!(
                        " (apps: {})",
                        self.apps.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                });
            self.error(&at, format!("unknown app `{app_name}`{hint}"));
            return (placeholder(), None);
        };
        let Some(action) = app.actions.get(action_name) else {
            let hint = did_you_mean(action_name, app.actions.keys().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            self.error(
                &at,
                format!("`{app_name}` has no action `{action_name}`{hint}"),
            );
            return (placeholder(), None);
        };
        self.app_call(
            &app,
            action,
            &uses.uses,
            &uses.with,
            uses.connection.as_ref(),
            path,
            scope,
        )
    }

    /// The http plan of an app's action (or watch) called as `called` with `with_value`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn app_call(
        &mut self,
        app: &Arc<crate::plan::app::AppPlan>,
        action: &crate::plan::app::ActionPlan,
        called: &str,
        with_value: &serde_json::Map<String, Value>,
        connection: Option<&crate::model::ConnectionOverride>,
        path: &str,
        scope: &Scope,
    ) -> (HttpPlan, Option<RetryPolicy>) {
        let at = format!("{path}.uses");
        self.used_apps.insert(app.name.clone(), Arc::clone(app));

        let with_path = format!("{path}.with");
        let properties = action.schema.get("properties").and_then(Value::as_object);
        let open = action.schema.get("additionalProperties") == Some(&Value::Bool(true))
            || properties.is_none();
        for (key, value) in with_value {
            let field = join_key(&with_path, key);
            match properties.and_then(|p| p.get(key)) {
                None if !open => {
                    let known = properties
                        .into_iter()
                        .flat_map(|p| p.keys().map(String::as_str));
                    let hint = did_you_mean(key, known)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            let all: Vec<&str> = properties
                                .into_iter()
                                .flat_map(|p| p.keys().map(String::as_str))
                                .collect();
                            format!(" (it takes {})", all.join(", "))
                        });
                    self.error(&field, format!("`{}` takes no input `{key}`{hint}", called));
                }
                Some(schema) if Expr::compile(value).is_ok_and(|e| e.is_literal()) => {
                    if let Ok(validator) = jsonschema::validator_for(schema) {
                        if let Some(problem) = validator.iter_errors(value).next() {
                            self.error(&field, format!("`{key}` of `{}`: {problem}", called));
                        }
                    }
                }
                _ => {}
            }
        }
        let mut defaults = Vec::new();
        for (key, schema) in properties.into_iter().flatten() {
            if let Some(default) = schema.get("default") {
                defaults.push((key.clone(), default.clone()));
            }
        }
        let required = action.schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten().filter_map(Value::as_str) {
            if !with_value.contains_key(name) && !defaults.iter().any(|(k, _)| k == name) {
                let where_ = if with_value.is_empty() {
                    at.clone()
                } else {
                    with_path.clone()
                };
                self.error(
                    &where_,
                    format!("`{}` needs the input `{name}` under `with`", called),
                );
            }
        }
        let with = self.expr(&Value::Object(with_value.clone()), &with_path, scope);

        let overrides = connection.cloned().unwrap_or_default();
        let mut headers = app.headers.clone();
        let replace = |headers: &mut Vec<(String, Expr)>, name: &str, expr: Expr| {
            headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
            headers.push((name.to_owned(), expr));
        };
        for (name, expr) in &action.headers {
            replace(&mut headers, name, expr.clone());
        }
        for (name, value) in &overrides.headers {
            let expr = self.expr(
                value,
                &join_key(&format!("{path}.connection.headers"), name),
                scope,
            );
            replace(&mut headers, name, expr);
        }
        let mut query = app.query.clone();
        query.extend(action.query.iter().cloned());
        let plan = HttpPlan {
            method: action.method,
            base_url: Some(app.base_url.clone()),
            target: action.path.clone(),
            base_env: None,
            query,
            headers,
            body: action.body.clone(),
            expect: action.expect.clone(),
            request_timeout: overrides.timeout.map(|d| d.as_std()).unwrap_or(app.timeout),
            idempotency_header: app.idempotency_header.clone(),
            allowance: app.allowance.clone(),
            rate_limit: app.rate_limit,
            auth: app.auth.clone(),
            app: Some(AppCall {
                name: called.to_owned(),
                with,
                defaults,
                validator: Arc::clone(&action.validator),
                output: action.output.clone(),
            }),
        };
        let retry = overrides
            .retry
            .as_ref()
            .map(RetryPolicy::from_spec)
            .or_else(|| app.retry.clone());
        (plan, retry)
    }
}
