//! Steps with effects outside the execution: HTTP requests and data stores.

use handlebars::Context;
use serde_json::{json, Value};
use uuid::Uuid;

use super::execution::StepStatus;
use super::http::Request;
use super::journal::{DataOp, DataRequest};
use super::pace::{pace_key, wait_turn, Pacer};
use super::run::{set_output, Interpreter, Outcome, StepRun};
use super::StepError;
use crate::plan::{HttpPlan, StoreOpPlan, StorePlan};

/// The `Idempotency-Key` of one step of one execution: the same for every
/// retry and every resume, different for every other step and loop iteration.
pub fn idempotency_key(execution_id: Uuid, step_path: &str) -> String {
    Uuid::new_v5(&execution_id, step_path.as_bytes()).to_string()
}

/// The `with` of a `uses:` step, rendered, with the schema's defaults for
/// what it leaves out, checked against the action's input schema.
pub fn app_input(app: &crate::plan::AppCall, ctx: &Context) -> Result<Value, String> {
    let mut input = app
        .with
        .eval(ctx)
        .map_err(|e| format!("the input of `{}` cannot be computed: {}", app.name, e.0))?;
    if let Some(fields) = input.as_object_mut() {
        for (key, default) in &app.defaults {
            fields.entry(key.clone()).or_insert_with(|| default.clone());
        }
    }
    let problems: Vec<String> = app
        .validator
        .iter_errors(&input)
        .map(|e| {
            let at = e.instance_path.to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{}: {e}", at.trim_start_matches('/').replace('/', "."))
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(input)
    } else {
        Err(format!(
            "the input of `{}` does not match its schema, nothing was sent: {}",
            app.name,
            problems.join("; ")
        ))
    }
}

/// The step's output: the action's `output` over `response`, or the http output.
fn app_output(
    app: &crate::plan::AppCall,
    ctx: &mut Context,
    response: Value,
) -> Result<Value, String> {
    let Some(output) = &app.output else {
        return Ok(response);
    };
    let saved = swap_root(ctx, "response", Some(response));
    let result = output.eval(ctx);
    swap_root(ctx, "response", saved);
    result.map_err(|e| format!("the output of `{}` cannot be computed: {}", app.name, e.0))
}

/// Puts `value` at the context's root `name` (or removes it); returns what was there.
fn swap_root(ctx: &mut Context, name: &str, value: Option<Value>) -> Option<Value> {
    let root = ctx.data_mut().as_object_mut()?;
    match value {
        Some(value) => root.insert(name.to_owned(), value),
        None => root.remove(name),
    }
}

/// ` (waited 1.2s for the rate limit 20/s)` when the step waited its turn.
fn paced_note(
    paced: std::time::Duration,
    pace: &Option<(crate::model::RateLimit, String, std::sync::Arc<dyn Pacer>)>,
) -> String {
    match pace {
        Some((limit, ..)) if !paced.is_zero() => format!(
            " (waited {}ms for the rate limit {limit})",
            paced.as_millis()
        ),
        _ => String::new(),
    }
}

impl Interpreter<'_> {
    pub(super) async fn http(
        &self,
        run: &StepRun<'_>,
        http: &HttpPlan,
        ctx: &mut Context,
    ) -> Outcome {
        // A `uses:` step: its input rendered, completed and checked first;
        // the action's templates read it as `input`. Nothing is sent when it
        // does not match the action's schema.
        let built = match &http.app {
            None => Request::build(http, ctx),
            Some(app) => match app_input(app, ctx) {
                Err(message) => return self.step_failed(run, ctx, message, 0, None).await,
                Ok(input) => {
                    let saved = swap_root(ctx, "input", Some(input));
                    let built = Request::build(http, ctx);
                    swap_root(ctx, "input", saved);
                    built
                }
            },
        };
        let mut request = match built {
            Ok(r) => r,
            Err(e) => return self.step_failed(run, ctx, e.0, 0, None).await,
        };
        if let Some(header) = &http.idempotency_header {
            if !request
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(header))
            {
                let key = idempotency_key(self.execution_id, &run.path);
                request.headers.push((header.clone(), key));
            }
        }
        let oauth = match &http.auth {
            Some(crate::plan::AuthPlan::OAuth2(plan)) => Some(plan),
            _ => None,
        };
        let mut access = None;
        if let Some(plan) = oauth {
            if !self.dry_run || request.method.is_safe() {
                match self
                    .engine
                    .sign_in(plan, &http.allowance, ctx, &mut request, None)
                    .await
                {
                    Ok(token) => access = Some(token),
                    Err(e) if e.reconnect.is_some() => {
                        return self
                            .needs_reconnect(run, e.masked(&self.redactor), None)
                            .await
                    }
                    Err(e) => {
                        return self
                            .step_failed(run, ctx, e.masked(&self.redactor), 0, None)
                            .await
                    }
                }
            }
        }
        let mut refreshed = false;
        let summary = request.summary(&self.redactor);
        let mut described = request.describe(&self.redactor);
        if self.dry_run && !request.method.is_safe() {
            let output = json!({ "dry_run": true, "request": described });
            set_output(ctx, run.step.id.as_str(), output.clone());
            let mut record = self.record(run, StepStatus::Skipped, output, None, 0);
            record.detail = Some(format!("{summary} (dry run: not sent)"));
            return self.keep(record, Outcome::Continue).await;
        }
        if let Some(relative) = &request.relative {
            described["path"] = Value::String(self.redactor.string(relative.clone()));
        }
        let policy = &run.step.retry;
        let mut attempt = 0;
        // Rate limits pace the network only: a test transport answers at once.
        let pace = match (http.rate_limit, self.engine.transport()) {
            (Some(limit), None) => {
                Some((limit, pace_key(&request.url, limit), self.engine.pacer()))
            }
            _ => None,
        };
        let mut paced = std::time::Duration::ZERO;
        let outcome = loop {
            attempt += 1;
            if let Some((limit, key, pacer)) = &pace {
                let waited = wait_turn(pacer.as_ref(), key, *limit).await;
                if waited >= std::time::Duration::from_millis(1) {
                    tracing::debug!(step = %run.step.id, wait_ms = waited.as_millis() as u64, rate = %limit, "waited for the rate limit");
                    paced += waited;
                }
            }
            let sender = super::Sender {
                step: run.step.id.as_str(),
                path: &run.path,
            };
            let expect = http.expect.as_deref();
            let send = async {
                match self.engine.transport() {
                    Some(t) => t.send(sender, &request, http.request_timeout, expect).await,
                    None => {
                        let outbound = self.engine.outbound(&http.allowance);
                        request.send(&outbound, http.request_timeout, expect).await
                    }
                }
            };
            let result = match run.step.timeout {
                None => send.await,
                Some(limit) => tokio::time::timeout(limit, send).await.unwrap_or_else(|_| {
                    Err(StepError::retryable(format!(
                        "no answer within {}",
                        crate::model::Duration(limit)
                    )))
                }),
            };
            if let (Some((limit, key, pacer)), Err(e)) = (&pace, &result) {
                if let (Some(429), Some(pause)) = (e.status, e.retry_after) {
                    // The server is over its limit for everyone, not only this step.
                    pacer.hold(key, *limit, pause).await;
                }
            }
            match result {
                Ok(response) => {
                    let status = response.status;
                    let output = match &http.app {
                        Some(app) => match app_output(app, ctx, response.into_output()) {
                            Ok(output) => output,
                            Err(message) => break Err((message, summary.clone())),
                        },
                        None => response.into_output(),
                    };
                    let detail = format!("{summary} -> {status}{}", paced_note(paced, &pace));
                    break Ok((output, detail));
                }
                // A token the API no longer takes: renewed, sent once more.
                Err(e)
                    if !refreshed
                        && oauth.is_some_and(|o| {
                            e.status.is_some_and(|s| o.refresh_on.contains(&s))
                        }) =>
                {
                    refreshed = true;
                    attempt -= 1;
                    let plan = oauth.expect("an oauth2 connection");
                    let signed = self
                        .engine
                        .sign_in(plan, &http.allowance, ctx, &mut request, access.as_deref())
                        .await;
                    match signed {
                        Ok(token) => access = Some(token),
                        Err(e) if e.reconnect.is_some() => {
                            return self
                                .needs_reconnect(
                                    run,
                                    e.masked(&self.redactor),
                                    Some(summary.clone()),
                                )
                                .await
                        }
                        Err(e) => break Err((e.masked(&self.redactor), summary.clone())),
                    }
                }
                Err(e) if e.retryable && attempt < policy.attempts => {
                    let delay =
                        policy.delay_with_hint(attempt, rand::random::<f64>(), e.retry_after);
                    tracing::debug!(step = %run.step.id, attempt, delay_ms = delay.as_millis() as u64, error = %e.masked(&self.redactor), "retrying");
                    match self.engine.transport() {
                        Some(t) => t.pause(delay).await,
                        None => tokio::time::sleep(delay).await,
                    }
                }
                Err(e) => {
                    let detail = match e.status {
                        Some(status) => format!("{summary} -> {status}"),
                        None => summary.clone(),
                    } + &paced_note(paced, &pace);
                    break Err((e.masked(&self.redactor), detail));
                }
            }
        };
        match outcome {
            Ok((output, detail)) => {
                self.succeeded_with_input(run, ctx, output, attempt, detail, described)
                    .await
            }
            Err((message, detail)) => {
                self.step_failed(run, ctx, message, attempt, Some(detail))
                    .await
            }
        }
    }

    pub(super) async fn store(
        &self,
        run: &StepRun<'_>,
        store: &StorePlan,
        ctx: &mut Context,
    ) -> Outcome {
        let built = (|| -> Result<DataRequest, crate::plan::EvalError> {
            let key = match store.key.eval_ref(ctx)?.as_ref() {
                Value::String(s) => s.clone(),
                Value::Null => {
                    return Err(crate::plan::EvalError("the key is empty (null)".to_owned()))
                }
                other => other.to_string(),
            };
            let op = match &store.op {
                StoreOpPlan::Get => DataOp::Get,
                StoreOpPlan::Delete => DataOp::Delete,
                // Kept masked, like everything stored.
                StoreOpPlan::Put(value) => DataOp::Put {
                    value: self.masked(value.eval(ctx)?),
                    ttl: store.ttl,
                },
                StoreOpPlan::Increment(by) => {
                    let by = match by {
                        None => 1.0,
                        Some(expr) => {
                            let value = expr.eval(ctx)?;
                            crate::plan::as_number(&value).ok_or_else(|| {
                                crate::plan::EvalError(format!(
                                    "`value` of an increment must be a number, not {value}"
                                ))
                            })?
                        }
                    };
                    DataOp::Increment { by, ttl: store.ttl }
                }
            };
            Ok(DataRequest {
                store: store.name.clone(),
                key: self.redactor.string(key),
                op,
            })
        })();
        let request = match built {
            Ok(request) => request,
            Err(e) => return self.step_failed(run, ctx, e.0, 1, None).await,
        };
        let verb = match request.op {
            DataOp::Get => "get",
            DataOp::Put { .. } => "put",
            DataOp::Delete => "delete",
            DataOp::Increment { .. } => "increment",
            DataOp::Record { .. } => "record",
        };
        let detail = self
            .redactor
            .string(format!("{verb} {}[{}]", request.store, request.key));
        let input = self.masked(json!({ "store": request.store, verb: request.key }));
        self.data_step(run, ctx, request, detail, input).await
    }

    /// Runs a data operation (`store`, `record`) through the journal, which
    /// commits it with the step's result; a dry run records what it would
    /// have written instead.
    pub(super) async fn data_step(
        &self,
        run: &StepRun<'_>,
        ctx: &mut Context,
        request: DataRequest,
        detail: String,
        input: Value,
    ) -> Outcome {
        if self.dry_run && !matches!(request.op, DataOp::Get) {
            let mut record = self.record(run, StepStatus::Skipped, Value::Null, None, 0);
            record.detail = Some(format!("{detail} (dry run: not written)"));
            record.input = Some(input);
            set_output(ctx, run.step.id.as_str(), Value::Null);
            return self.keep(record, Outcome::Continue).await;
        }
        match self
            .journal
            .data(self.execution_id, &run.path, &request)
            .await
        {
            Ok(output) => {
                let repeated = matches!(request.op, DataOp::Record { .. })
                    && output.get("recorded") == Some(&Value::Bool(false));
                let detail = if repeated {
                    format!("{detail} (already recorded)")
                } else {
                    detail
                };
                self.succeeded_with_input(run, ctx, output, 1, detail, input)
                    .await
            }
            Err(e) => self.step_failed(run, ctx, e.0, 1, Some(detail)).await,
        }
    }
}
