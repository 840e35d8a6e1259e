//! The step list: ids indexed first (so a reference to a later step says
//! "not yet" rather than "unknown"), then each step compiled in order with
//! what it may read, dispatched to its family's file.

use serde_json::Value;

use super::{Compiler, Place, Scope};
use crate::model::{Step, StepKind};
use crate::plan::{Cond, Expr, PlanKind, PlanStep, RetryPolicy};

impl Compiler<'_> {
    pub(super) fn index_steps(&mut self, steps: &[Step], base: &str, enclosure: Option<&str>) {
        for (i, step) in steps.iter().enumerate() {
            let path = format!("{base}[{i}]");
            let id = step.id.to_string();
            if let Some(first) = self.places.get(&id) {
                let first_path = first.path.clone();
                let line = self
                    .loaded
                    .source_map
                    .value(&first_path)
                    .map(|p| format!(" (line {})", p.line))
                    .unwrap_or_default();
                self.error(&format!("{path}.id"), format!("duplicate step id `{id}`: already used by {first_path}{line}; ids must be unique in a scenario"));
                continue;
            }
            self.places.insert(
                id.clone(),
                Place {
                    path: path.clone(),
                    enclosure: enclosure.map(str::to_owned),
                },
            );
            match &step.kind {
                StepKind::Router(r) => {
                    for (ri, route) in r.routes.iter().enumerate() {
                        let inner = format!("route `{}` of step `{id}`", route.name);
                        self.index_steps(
                            &route.steps,
                            &format!("{path}.router.routes[{ri}].steps"),
                            Some(&inner),
                        );
                    }
                }
                StepKind::ForEach(f) => {
                    let inner = format!("the loop `{id}`");
                    self.index_steps(&f.steps, &format!("{path}.for_each.steps"), Some(&inner));
                }
                _ => {}
            }
        }
    }

    pub(super) fn steps(&mut self, steps: &[Step], base: &str, scope: &mut Scope) -> Vec<PlanStep> {
        let mut out = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let path = format!("{base}[{i}]");
            out.push(self.step(step, &path, scope));
            scope.visible.push(step.id.to_string());
        }
        out
    }

    pub(super) fn step(&mut self, step: &Step, path: &str, scope: &Scope) -> PlanStep {
        let when = step
            .when
            .as_ref()
            .map(|c| self.cond(c, &format!("{path}.when"), scope));
        let fallback = step
            .fallback
            .as_ref()
            .map(|v| self.expr(v, &format!("{path}.fallback"), scope));
        if step.fallback.is_some() && step.on_error != crate::model::OnError::Continue {
            self.error(
                &format!("{path}.fallback"),
                "`fallback` is only used with `on_error: continue`",
            );
        }
        if let Some(retry) = &step.retry {
            self.check_retry(retry, &format!("{path}.retry"));
        }
        let mut retry = step.retry.as_ref().map(RetryPolicy::from_spec);
        if matches!(
            step.kind,
            StepKind::Approval(_) | StepKind::Delay(_) | StepKind::WaitFor(_)
        ) {
            let kind = step.kind.name();
            let a = if kind == "approval" { "an" } else { "a" };
            if scope.in_on_failure {
                self.error(
                    &format!("{path}.{kind}"),
                    format!(
                        "a `{kind}` step cannot be in on_failure: failure handlers run at once"
                    ),
                );
            } else if !scope.loop_names.is_empty() {
                self.error(
                    &format!("{path}.{kind}"),
                    format!("{a} `{kind}` step cannot be inside a for_each: put the loop in a scenario of its own, or wait before the loop"),
                );
            }
        }
        let kind = match &step.kind {
            StepKind::Http(http) => {
                let (plan, connection_retry) = self.http(http, &format!("{path}.http"), scope);
                retry = retry.or(connection_retry);
                PlanKind::Http(Box::new(plan))
            }
            StepKind::Uses(uses) => {
                let (plan, app_retry) = self.uses(uses, path, scope);
                retry = retry.or(app_retry);
                PlanKind::Http(Box::new(plan))
            }
            StepKind::Set(fields) => {
                if fields.is_empty() {
                    self.error(&format!("{path}.set"), "`set` needs at least one key");
                }
                PlanKind::Set(self.expr(
                    &Value::Object(fields.clone()),
                    &format!("{path}.set"),
                    scope,
                ))
            }
            StepKind::Filter(condition) => {
                PlanKind::Filter(self.cond(condition, &format!("{path}.filter"), scope))
            }
            StepKind::Router(router) => self.router(router, step, path, scope),
            StepKind::ForEach(each) => self.for_each(each, step, path, scope),
            StepKind::Respond(respond) => self.respond(respond, path, scope),
            StepKind::Fail(fail) => {
                PlanKind::Fail(self.expr_str(&fail.message, &format!("{path}.fail.message"), scope))
            }
            StepKind::Store(store) => {
                PlanKind::Store(self.store(store, &format!("{path}.store"), scope))
            }
            StepKind::Approval(approval) => self.approval(approval, path, scope),
            StepKind::Delay(delay) => PlanKind::Delay(delay.duration.as_std()),
            StepKind::WaitFor(wait) => PlanKind::WaitFor(Box::new(self.wait_for(
                wait,
                &format!("{path}.wait_for"),
                scope,
            ))),
            StepKind::Emit(emit) => self.emit(emit, path, scope),
            StepKind::Record(record) => self.record(record, path, scope),
        };
        let replayable = kind.is_repeatable()
            && when.as_ref().is_none_or(Cond::is_repeatable)
            && fallback.as_ref().is_none_or(Expr::is_repeatable);
        PlanStep {
            replayable,
            id: step.id.clone(),
            name: step.name.clone(),
            when,
            timeout: step.timeout.map(|d| d.as_std()),
            retry: retry.unwrap_or(RetryPolicy::NONE),
            on_error: step.on_error,
            fallback,
            kind,
        }
    }
}
