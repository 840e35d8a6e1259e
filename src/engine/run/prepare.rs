//! A run request checked against the plan (env values present, vars known,
//! input valid) and turned into the starting context and the redactor.

use chrono::{DateTime, SecondsFormat, Utc};
use handlebars::Context;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::execution::StepRecord;
use crate::engine::redact::Redactor;
use crate::engine::{Clock, RunError, RunRequest};
use crate::plan::Plan;

/// A request checked against the plan, turned into the starting context.
pub struct Prepared {
    pub(super) ctx: Context,
    pub(super) redactor: Redactor,
    pub(super) execution_id: Uuid,
    pub(super) started_at: DateTime<Utc>,
    pub(super) dry_run: bool,
    /// `Some` when resuming: the settled steps, by path, and their order.
    pub(super) resume: Option<Vec<StepRecord>>,
    pub(super) vars_overrides: Map<String, Value>,
    pub(super) clock: Clock,
    pub(super) origin: Option<Uuid>,
}

impl Prepared {
    pub fn execution_id(&self) -> Uuid {
        self.execution_id
    }
}

pub(in crate::engine) fn prepare(plan: &Plan, request: RunRequest) -> Result<Prepared, RunError> {
    let missing: Vec<String> = plan
        .env
        .iter()
        .filter(|e| e.value(&request.env).is_none())
        .map(|e| e.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(RunError::MissingEnv(missing));
    }
    let mut vars = plan.vars.clone();
    for (name, value) in &request.vars {
        if !vars.contains_key(name) {
            return Err(RunError::UnknownVar(name.clone()));
        }
        vars.insert(name.clone(), value.clone());
    }
    let violations = plan.input_violations(&request.trigger.body);
    if !violations.is_empty() {
        return Err(RunError::InvalidInput(violations));
    }
    let secrets = plan
        .env
        .iter()
        .filter(|e| e.secret)
        .filter_map(|e| e.value(&request.env).map(str::to_owned));
    let redactor = Redactor::new(secrets);
    let env: Map<String, Value> = plan
        .env
        .iter()
        .filter_map(|e| {
            Some((
                e.name.clone(),
                Value::String(e.value(&request.env)?.to_owned()),
            ))
        })
        .collect();
    let execution_id = request.execution_id.unwrap_or_else(Uuid::now_v7);
    let (started_at, resume) = match request.resume {
        Some(resume) => (resume.started_at, Some(resume.completed)),
        None => (Utc::now(), None),
    };
    let trigger = request.trigger;
    // Built by moving values in: `json!` would serialize the body again.
    let mut trigger_map = Map::with_capacity(4 + trigger.extra.len());
    trigger_map.extend(trigger.extra);
    trigger_map.insert("body".to_owned(), trigger.body);
    trigger_map.insert("headers".to_owned(), Value::Object(trigger.headers));
    trigger_map.insert("query".to_owned(), Value::Object(trigger.query));
    trigger_map.insert(
        "received_at".to_owned(),
        Value::String(
            trigger
                .received_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
    );
    let mut execution = Map::with_capacity(3);
    execution.insert("id".to_owned(), Value::String(execution_id.to_string()));
    execution.insert("scenario".to_owned(), Value::String(plan.name.clone()));
    execution.insert(
        "started_at".to_owned(),
        Value::String(started_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    let mut root = Map::with_capacity(8);
    root.insert("trigger".to_owned(), Value::Object(trigger_map));
    root.insert("steps".to_owned(), Value::Object(Map::new()));
    root.insert("vars".to_owned(), Value::Object(vars));
    root.insert("env".to_owned(), Value::Object(env));
    root.insert("execution".to_owned(), Value::Object(execution));
    let ctx = Context::from(Value::Object(root));
    Ok(Prepared {
        ctx,
        redactor,
        execution_id,
        started_at,
        dry_run: request.dry_run,
        resume,
        vars_overrides: request.vars,
        clock: request.clock.clone().unwrap_or_default(),
        origin: request.origin,
    })
}

/// The context a connection's templates read outside any execution
/// (`scenarist connect`, the dashboard's Connections page): the declared
/// env values, every one required; and the redactor of the secret ones.
pub fn env_context(
    plan: &Plan,
    env: &std::collections::HashMap<String, String>,
) -> Result<(Context, Redactor), RunError> {
    let missing: Vec<String> = plan
        .env
        .iter()
        .filter(|e| e.value(env).is_none())
        .map(|e| e.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(RunError::MissingEnv(missing));
    }
    let redactor = Redactor::new(
        plan.env
            .iter()
            .filter(|e| e.secret)
            .filter_map(|e| e.value(env).map(str::to_owned)),
    );
    let values: Map<String, Value> = plan
        .env
        .iter()
        .filter_map(|e| Some((e.name.clone(), Value::String(e.value(env)?.to_owned()))))
        .collect();
    let ctx = Context::from(serde_json::json!({ "env": values }));
    Ok((ctx, redactor))
}
