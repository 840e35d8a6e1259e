//! Compiled conditions and their semantics.
//!
//! Comparisons are forgiving about representation (a numeric string compares as
//! a number, as ops data from forms and CRMs often is) but never about meaning:
//! a template condition must render exactly `true` or `false`, and comparing
//! things that have no order is an error, not a silent `false`.

use std::borrow::Cow;

use handlebars::Context;
use regex::Regex;
use serde_json::Value;

use super::expr::{EvalError, Expr};
use crate::model::{CompareOp, Condition};

#[derive(Debug, Clone)]
pub enum Cond {
    Literal(bool),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    /// A template that must render `true` or `false`.
    Template(Expr),
    Compare {
        value: Expr,
        op: Op,
    },
}

#[derive(Debug, Clone)]
pub enum Op {
    Equals(Expr),
    NotEquals(Expr),
    In(Expr),
    NotIn(Expr),
    Contains(Expr),
    NotContains(Expr),
    StartsWith(Expr),
    EndsWith(Expr),
    Matches(Regex),
    Gt(Expr),
    Gte(Expr),
    Lt(Expr),
    Lte(Expr),
    Exists(bool),
    Empty(bool),
}

impl Cond {
    /// Compiles a condition; errors carry the path below the condition (`.all[1].value`).
    pub fn compile(condition: &Condition) -> Result<Cond, Vec<(String, String)>> {
        let (cond, errors) = Cond::compile_all(condition);
        if errors.is_empty() {
            Ok(cond)
        } else {
            Err(errors)
        }
    }

    /// Compiles what can be compiled and returns every error, so that a
    /// validator can still check the references of the valid parts.
    pub fn compile_all(condition: &Condition) -> (Cond, Vec<(String, String)>) {
        let mut errors = Vec::new();
        let cond = compile_at(condition, String::new(), &mut errors);
        (cond, errors)
    }

    pub fn eval(&self, ctx: &Context) -> Result<bool, EvalError> {
        match self {
            Cond::Literal(b) => Ok(*b),
            Cond::All(items) => {
                for c in items {
                    if !c.eval(ctx)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Cond::Any(items) => {
                for c in items {
                    if c.eval(ctx)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Cond::Not(c) => Ok(!c.eval(ctx)?),
            Cond::Template(expr) => match expr.eval_ref(ctx)?.as_ref() {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s.trim() == "true" => Ok(true),
                Value::String(s) if s.trim() == "false" => Ok(false),
                other => Err(EvalError(format!(
                    "the condition must give true or false, but gave {}; use a comparison such as `{{ value: ..., equals: ... }}` or a helper such as `eq`",
                    short(other)
                ))),
            },
            Cond::Compare { value, op } => {
                // Only `exists` and `empty` may look at a missing path; any other
                // operator on one is an error naming it, never a silent false.
                let actual = match op {
                    Op::Exists(_) | Op::Empty(_) => value.eval_optional(ctx)?,
                    _ => Some(value.eval_ref(ctx)?),
                };
                op.test(actual, ctx)
            }
        }
    }

    /// Gives the same answer each time on the same context (see [`Expr::is_repeatable`]).
    pub fn is_repeatable(&self) -> bool {
        match self {
            Cond::Literal(_) => true,
            Cond::All(items) | Cond::Any(items) => items.iter().all(Cond::is_repeatable),
            Cond::Not(c) => c.is_repeatable(),
            Cond::Template(e) => e.is_repeatable(),
            Cond::Compare { value, op } => {
                value.is_repeatable() && op.operand().is_none_or(Expr::is_repeatable)
            }
        }
    }

    /// Every context path read, with the part of the condition that reads it
    /// (`.all[1].value`), so that problems point at the right line.
    pub fn references_at(&self, at: String, out: &mut Vec<(String, Vec<String>)>) {
        let mut collect = |sub: String, expr: &Expr| {
            let mut refs = Vec::new();
            expr.references(&mut refs);
            out.extend(refs.into_iter().map(|r| (sub.clone(), r)));
        };
        match self {
            Cond::Literal(_) => {}
            Cond::All(items) => {
                for (i, c) in items.iter().enumerate() {
                    c.references_at(format!("{at}.all[{i}]"), out);
                }
            }
            Cond::Any(items) => {
                for (i, c) in items.iter().enumerate() {
                    c.references_at(format!("{at}.any[{i}]"), out);
                }
            }
            Cond::Not(c) => c.references_at(format!("{at}.not"), out),
            Cond::Template(e) => collect(at, e),
            Cond::Compare { value, op } => {
                collect(format!("{at}.value"), value);
                if let Some(e) = op.operand() {
                    collect(format!("{at}.{}", op.name()), e);
                }
            }
        }
    }

    /// A short human form for diagrams and traces.
    pub fn describe(condition: &Condition) -> String {
        match condition {
            Condition::Literal(b) => b.to_string(),
            Condition::Template(t) => t.clone(),
            Condition::All { all } => all
                .iter()
                .map(Cond::describe)
                .collect::<Vec<_>>()
                .join(" and "),
            Condition::Any { any } => any
                .iter()
                .map(Cond::describe)
                .collect::<Vec<_>>()
                .join(" or "),
            Condition::Not { not } => format!("not ({})", Cond::describe(not)),
            Condition::Compare(c) => {
                let value = match &c.value {
                    Value::String(s) => s
                        .trim_start_matches("{{")
                        .trim_end_matches("}}")
                        .trim()
                        .to_owned(),
                    other => other.to_string(),
                };
                let operand = match &c.op {
                    CompareOp::Matches(r) => format!("/{r}/"),
                    CompareOp::Exists(b) | CompareOp::Empty(b) => b.to_string(),
                    CompareOp::Equals(v)
                    | CompareOp::NotEquals(v)
                    | CompareOp::In(v)
                    | CompareOp::NotIn(v)
                    | CompareOp::Contains(v)
                    | CompareOp::NotContains(v)
                    | CompareOp::StartsWith(v)
                    | CompareOp::EndsWith(v)
                    | CompareOp::Gt(v)
                    | CompareOp::Gte(v)
                    | CompareOp::Lt(v)
                    | CompareOp::Lte(v) => match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                };
                format!("{value} {} {operand}", c.op.name())
            }
        }
    }
}

fn compile_at(condition: &Condition, at: String, errors: &mut Vec<(String, String)>) -> Cond {
    let mut expr = |value: &Value, sub: &str| match Expr::compile(value) {
        Ok(e) => e,
        Err(errs) => {
            errors.extend(errs.into_iter().map(|(p, m)| (format!("{at}{sub}{p}"), m)));
            Expr::Literal(Value::Null)
        }
    };
    match condition {
        Condition::Literal(b) => Cond::Literal(*b),
        Condition::Template(text) => {
            let e = expr(&Value::String(text.clone()), "");
            if let Expr::Literal(v) = &e {
                errors.push((at, format!("the condition {v} has no `{{{{ }}}}` template and would always be the same; write true/false, or a template such as `{{{{ eq vars.x 1 }}}}`")));
            }
            Cond::Template(e)
        }
        Condition::All { all } => Cond::All(
            all.iter()
                .enumerate()
                .map(|(i, c)| compile_at(c, format!("{at}.all[{i}]"), errors))
                .collect(),
        ),
        Condition::Any { any } => Cond::Any(
            any.iter()
                .enumerate()
                .map(|(i, c)| compile_at(c, format!("{at}.any[{i}]"), errors))
                .collect(),
        ),
        Condition::Not { not } => Cond::Not(Box::new(compile_at(not, format!("{at}.not"), errors))),
        Condition::Compare(c) => {
            let value = expr(&c.value, ".value");
            let name = c.op.name();
            let sub = format!(".{name}");
            let op = match &c.op {
                CompareOp::Equals(v) => Op::Equals(expr(v, &sub)),
                CompareOp::NotEquals(v) => Op::NotEquals(expr(v, &sub)),
                CompareOp::In(v) => Op::In(expr(v, &sub)),
                CompareOp::NotIn(v) => Op::NotIn(expr(v, &sub)),
                CompareOp::Contains(v) => Op::Contains(expr(v, &sub)),
                CompareOp::NotContains(v) => Op::NotContains(expr(v, &sub)),
                CompareOp::StartsWith(v) => Op::StartsWith(expr(v, &sub)),
                CompareOp::EndsWith(v) => Op::EndsWith(expr(v, &sub)),
                CompareOp::Gt(v) => Op::Gt(expr(v, &sub)),
                CompareOp::Gte(v) => Op::Gte(expr(v, &sub)),
                CompareOp::Lt(v) => Op::Lt(expr(v, &sub)),
                CompareOp::Lte(v) => Op::Lte(expr(v, &sub)),
                CompareOp::Exists(b) => Op::Exists(*b),
                CompareOp::Empty(b) => Op::Empty(*b),
                CompareOp::Matches(pattern) => match Regex::new(pattern) {
                    Ok(r) => Op::Matches(r),
                    Err(e) => {
                        errors.push((
                            format!("{at}.matches"),
                            format!("invalid regular expression: {}", one_line(&e.to_string())),
                        ));
                        Op::Exists(true)
                    }
                },
            };
            Cond::Compare { value, op }
        }
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Equals(_) => "equals",
            Op::NotEquals(_) => "not_equals",
            Op::In(_) => "in",
            Op::NotIn(_) => "not_in",
            Op::Contains(_) => "contains",
            Op::NotContains(_) => "not_contains",
            Op::StartsWith(_) => "starts_with",
            Op::EndsWith(_) => "ends_with",
            Op::Matches(_) => "matches",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::Exists(_) => "exists",
            Op::Empty(_) => "empty",
        }
    }

    fn operand(&self) -> Option<&Expr> {
        match self {
            Op::Equals(e)
            | Op::NotEquals(e)
            | Op::In(e)
            | Op::NotIn(e)
            | Op::Contains(e)
            | Op::NotContains(e)
            | Op::StartsWith(e)
            | Op::EndsWith(e)
            | Op::Gt(e)
            | Op::Gte(e)
            | Op::Lt(e)
            | Op::Lte(e) => Some(e),
            Op::Matches(_) | Op::Exists(_) | Op::Empty(_) => None,
        }
    }

    fn test(&self, actual: Option<Cow<'_, Value>>, ctx: &Context) -> Result<bool, EvalError> {
        match self {
            Op::Exists(want) => {
                return Ok(matches!(actual.as_deref(), Some(v) if !v.is_null()) == *want)
            }
            Op::Empty(want) => return Ok(actual.as_deref().is_none_or(is_empty) == *want),
            _ => {}
        }
        let null = Value::Null;
        let actual: &Value = actual.as_deref().unwrap_or(&null);
        Ok(match self {
            Op::Matches(regex) => match actual {
                Value::Null => false,
                other => regex.is_match(&text_of(other)),
            },
            Op::Equals(e) => loose_eq(actual, e.eval_ref(ctx)?.as_ref()),
            Op::NotEquals(e) => !loose_eq(actual, e.eval_ref(ctx)?.as_ref()),
            Op::In(e) => contains(e.eval_ref(ctx)?.as_ref(), actual),
            Op::NotIn(e) => !contains(e.eval_ref(ctx)?.as_ref(), actual),
            Op::Contains(e) => contains(actual, e.eval_ref(ctx)?.as_ref()),
            Op::NotContains(e) => !contains(actual, e.eval_ref(ctx)?.as_ref()),
            Op::StartsWith(e) => {
                !actual.is_null()
                    && text_of(actual).starts_with(text_of(e.eval_ref(ctx)?.as_ref()).as_ref())
            }
            Op::EndsWith(e) => {
                !actual.is_null()
                    && text_of(actual).ends_with(text_of(e.eval_ref(ctx)?.as_ref()).as_ref())
            }
            Op::Gt(e) => order(actual, e.eval_ref(ctx)?.as_ref(), "gt")?.is_gt(),
            Op::Gte(e) => order(actual, e.eval_ref(ctx)?.as_ref(), "gte")?.is_ge(),
            Op::Lt(e) => order(actual, e.eval_ref(ctx)?.as_ref(), "lt")?.is_lt(),
            Op::Lte(e) => order(actual, e.eval_ref(ctx)?.as_ref(), "lte")?.is_le(),
            Op::Exists(_) | Op::Empty(_) => unreachable!("handled above"),
        })
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Numbers and numeric strings as f64.
pub fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn text_of(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

/// Equality where `"500"` equals `500`, and `1` equals `1.0`.
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    if a.is_number() || b.is_number() {
        if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
            return x == y;
        }
    }
    false
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::Array(items) => items.iter().any(|i| loose_eq(i, needle)),
        Value::String(s) => !needle.is_null() && s.contains(text_of(needle).as_ref()),
        Value::Object(map) => matches!(needle, Value::String(k) if map.contains_key(k)),
        _ => false,
    }
}

fn order(a: &Value, b: &Value, op: &str) -> Result<std::cmp::Ordering, EvalError> {
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return Ok(x.total_cmp(&y));
    }
    if let (Value::String(x), Value::String(y)) = (a, b) {
        return Ok(x.cmp(y));
    }
    Err(EvalError(format!(
        "`{op}` cannot compare {} with {}",
        short(a),
        short(b)
    )))
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 60 {
        format!(
            "{}...",
            &text[..text
                .char_indices()
                .nth(57)
                .map(|(i, _)| i)
                .unwrap_or(text.len())]
        )
    } else {
        text
    }
}

#[cfg(test)]
mod tests;
