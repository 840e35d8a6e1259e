//! Values and conditions: each leaf compiled once, and every name it reads
//! (`steps.x`, `env.X`, `vars.y`, loop names) checked against what is in
//! scope at that point of the flow, with a "did you mean".

use std::collections::HashSet;

use serde_json::Value;

use super::{Compiler, Place, Scope, ROOTS};
use crate::diagnostic::did_you_mean;
use crate::load::{join_index, join_key, UNREADABLE_STEP_PREFIX};
use crate::model::Condition;
use crate::plan::condition::Cond;
use crate::plan::expr::{Expr, UNKNOWN_HELPER};
use crate::plan::helpers::HELPER_NAMES;

impl Compiler<'_> {
    /// Compiles a value and checks what it reads, leaf by leaf so that every
    /// problem points at its own field.
    pub(super) fn expr(&mut self, value: &Value, path: &str, scope: &Scope) -> Expr {
        match value {
            Value::Object(map) => {
                let fields: Vec<(String, Expr)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), self.expr(v, &join_key(path, k), scope)))
                    .collect();
                if fields.iter().all(|(_, e)| e.is_literal()) {
                    Expr::Literal(value.clone())
                } else {
                    Expr::Object(fields)
                }
            }
            Value::Array(items) => {
                let items: Vec<Expr> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.expr(v, &join_index(path, i), scope))
                    .collect();
                if items.iter().all(Expr::is_literal) {
                    Expr::Literal(value.clone())
                } else {
                    Expr::Array(items)
                }
            }
            leaf => match Expr::compile(leaf) {
                Ok(expr) => {
                    let mut refs = Vec::new();
                    expr.references(&mut refs);
                    self.check_references(&refs, path, scope);
                    expr
                }
                Err(errors) => {
                    for (sub, message) in errors {
                        self.error(&format!("{path}{sub}"), message);
                    }
                    Expr::Literal(Value::Null)
                }
            },
        }
    }

    pub(super) fn expr_str(&mut self, text: &str, path: &str, scope: &Scope) -> Expr {
        self.expr(&Value::String(text.to_owned()), path, scope)
    }

    pub(super) fn cond(&mut self, condition: &Condition, path: &str, scope: &Scope) -> Cond {
        let (cond, errors) = Cond::compile_all(condition);
        let failed: Vec<String> = errors.iter().map(|(sub, _)| sub.clone()).collect();
        for (sub, message) in errors {
            self.error(&format!("{path}{sub}"), message);
        }
        let mut refs = Vec::new();
        cond.references_at(String::new(), &mut refs);
        for (sub, segments) in refs {
            if !failed.contains(&sub) {
                self.check_references(&[segments], &format!("{path}{sub}"), scope);
            }
        }
        cond
    }

    pub(super) fn check_references(&mut self, refs: &[Vec<String>], path: &str, scope: &Scope) {
        let mut reported = HashSet::new();
        for segments in refs {
            if let Some(message) = self.reference_problem(segments, scope) {
                if reported.insert(message.clone()) {
                    self.error(path, message);
                }
            }
        }
    }

    pub(super) fn reference_problem(&self, segments: &[String], scope: &Scope) -> Option<String> {
        let root = segments[0].as_str();
        let second = segments.get(1).map(String::as_str);
        match root {
            UNKNOWN_HELPER => {
                let name = second.unwrap_or_default();
                let hint = did_you_mean(name, HELPER_NAMES.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                Some(format!("unknown helper `{name}`{hint}"))
            }
            "steps" => {
                let id = second?;
                if scope.visible.iter().any(|v| v == id) {
                    return None;
                }
                match self.places.get(id) {
                    // It may be the step whose id did not read.
                    None if self.places.keys().any(|p| p.starts_with(UNREADABLE_STEP_PREFIX)) => None,
                    None => {
                        let hint = did_you_mean(id, self.places.keys().map(String::as_str))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        Some(format!("unknown step `{id}` in `steps.{id}`{hint}"))
                    }
                    Some(Place { enclosure: Some(inside), .. }) if !scope.enclosures.contains(inside) => Some(format!(
                        "step `{id}` runs inside {inside} and its output is not visible here; read the output of the enclosing step instead"
                    )),
                    Some(_) => Some(format!("step `{id}` has not run yet at this point: a step can only read steps before it")),
                }
            }
            "env" => {
                let name = second?;
                if self.env.contains(name) || self.section_unreadable("env") {
                    None
                } else {
                    Some(format!("`env.{name}` is not declared: add `{name}` to `env` at the top of the scenario"))
                }
            }
            "vars" => {
                let name = second?;
                if self.vars.contains(name) || self.section_unreadable("vars") {
                    None
                } else {
                    let hint = did_you_mean(name, self.vars.iter().map(String::as_str)).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                    Some(format!("`vars.{name}` is not declared in `vars`{hint}"))
                }
            }
            "trigger" => match second {
                None | Some("body" | "headers" | "query" | "received_at") => None,
                Some("item" | "items" | "cursor")
                    if matches!(self.loaded.scenario.trigger, crate::model::Trigger::Poll(_)) =>
                {
                    None
                }
                Some(other) => Some(match self.loaded.scenario.trigger {
                    crate::model::Trigger::Poll(_) => format!("`trigger.{other}` does not exist: a poll's trigger has item (items with `batch`), cursor, body, headers, query and received_at"),
                    _ => format!("`trigger.{other}` does not exist: the trigger has body, headers, query and received_at"),
                }),
            },
            "execution" => match second {
                None | Some("id" | "scenario" | "started_at") => None,
                Some(other) => Some(format!("`execution.{other}` does not exist: the execution has id, scenario and started_at")),
            },
            "error" if scope.in_on_failure => None,
            "event" if scope.event_in_scope => None,
            "index" if !scope.loop_names.is_empty() => None,
            name if scope.loop_names.iter().any(|n| n == name) => None,
            name => {
                let mut allowed: Vec<&str> = ROOTS.to_vec();
                allowed.extend(scope.loop_names.iter().map(String::as_str));
                if !scope.loop_names.is_empty() {
                    allowed.push("index");
                }
                if scope.in_on_failure {
                    allowed.push("error");
                }
                let hint = did_you_mean(name, allowed.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                let context = match name {
                    "item" | "index" => " (only inside for_each)",
                    "event" => " (only in a wait_for's `match`)",
                    "error" => " (only inside on_failure)",
                    _ => "",
                };
                Some(format!("unknown name `{name}`{context}{hint}; templates can read {}", allowed.join(", ")))
            }
        }
    }
}
