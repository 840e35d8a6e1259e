//! Templates evaluated without Handlebars' renderer.
//!
//! Handlebars parses every template; those made only of text, paths and helper
//! calls (nearly all of them) are turned into this small tree and evaluated
//! directly on the context, with no render state and no JSON round trip. Block
//! helpers (`{{#if}}`, `{{#each}}`) and anything unusual stay with Handlebars.

use std::fmt::Write as _;

use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use handlebars::{Path, Template};
use serde_json::Value;

use super::expr::{ContextPath, EvalError};
use super::helpers::HelperFn;

#[derive(Debug, Clone)]
pub enum Node {
    /// A path written as an expression of its own: missing is an error.
    Path(ContextPath),
    /// A path given to a helper: missing reads as null (so `default` works).
    Argument(ContextPath),
    Literal(Value),
    Call(HelperFn, Vec<Node>),
}

#[derive(Debug, Clone)]
pub enum Part {
    Text(String),
    Value(Node),
}

/// Converts a parsed template; `None` when it uses something only Handlebars renders.
pub fn convert(template: &Template) -> Option<Vec<Part>> {
    let mut parts = Vec::with_capacity(template.elements.len());
    for element in &template.elements {
        match element {
            TemplateElement::RawString(text) => parts.push(Part::Text(text.clone())),
            TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                parts.push(Part::Value(expression(h)?))
            }
            _ => return None,
        }
    }
    Some(parts)
}

fn expression(h: &HelperTemplate) -> Option<Node> {
    if h.block || !h.hash.is_empty() || h.template.is_some() {
        return None;
    }
    match &h.name {
        Parameter::Name(name) => match HelperFn::find(name) {
            Some(helper) => Some(Node::Call(
                helper,
                h.params.iter().map(argument).collect::<Option<_>>()?,
            )),
            None if h.params.is_empty() => ContextPath::parse(name).map(Node::Path),
            None => None,
        },
        Parameter::Path(Path::Relative((_, raw))) if h.params.is_empty() => {
            ContextPath::parse(raw).map(Node::Path)
        }
        _ => None,
    }
}

fn argument(parameter: &Parameter) -> Option<Node> {
    match parameter {
        Parameter::Literal(value) => Some(Node::Literal(value.clone())),
        Parameter::Path(Path::Relative((_, raw))) => ContextPath::parse(raw).map(Node::Argument),
        Parameter::Name(name) => ContextPath::parse(name).map(Node::Argument),
        Parameter::Subexpression(sub) => match sub.element.as_ref() {
            TemplateElement::Expression(h) => match &h.name {
                Parameter::Name(name) if h.hash.is_empty() => {
                    let helper = HelperFn::find(name)?;
                    Some(Node::Call(
                        helper,
                        h.params.iter().map(argument).collect::<Option<_>>()?,
                    ))
                }
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

impl Node {
    pub fn eval(&self, data: &Value) -> Result<Value, EvalError> {
        match self {
            Node::Path(path) => path
                .lookup(data)
                .cloned()
                .ok_or_else(|| EvalError(path.missing_message(data))),
            Node::Argument(path) => Ok(path.lookup(data).cloned().unwrap_or(Value::Null)),
            Node::Literal(value) => Ok(value.clone()),
            Node::Call(helper, args) => {
                let args = args
                    .iter()
                    .map(|a| a.eval(data))
                    .collect::<Result<Vec<_>, _>>()?;
                helper.call(&args).map_err(EvalError)
            }
        }
    }

    /// Appends the text form, as a template shows a value: strings as they
    /// are, null as nothing, other values as compact JSON.
    fn render_into(&self, data: &Value, out: &mut String) -> Result<(), EvalError> {
        if let Node::Path(path) = self {
            // Render straight from the context, without cloning the value.
            let value = path
                .lookup(data)
                .ok_or_else(|| EvalError(path.missing_message(data)))?;
            write_text(value, out);
            return Ok(());
        }
        write_text(&self.eval(data)?, out);
        Ok(())
    }
}

fn write_text(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        other => out.push_str(&other.to_string()),
    }
}

pub fn render(parts: &[Part], data: &Value) -> Result<String, EvalError> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Value(node) => node.render_into(data, &mut out)?,
        }
    }
    Ok(out)
}
