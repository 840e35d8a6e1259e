//! Expressions: a scenario value compiled once, evaluated per execution.
//!
//! A string holding `{{ ... }}` is a Handlebars template; a string that is
//! exactly one `{{ path }}` yields the typed value at that path, and exactly one
//! `{{ helper ... }}` yields the helper's typed result. A string starting with `$.`
//! or `$[` is a JSONPath query. Maps and lists are compiled leaf by leaf, so JSON
//! bodies are built structurally. Data that arrives from outside is only ever
//! read by expressions, never compiled into one.

use std::borrow::Cow;
use std::sync::OnceLock;

use handlebars::template::{HelperTemplate, Parameter, TemplateElement};
use handlebars::{
    Context, Handlebars, Path, PathSeg, RenderContext, RenderErrorReason, Renderable, StringOutput,
    Template,
};
use jsonpath_rust::parser::model::{Segment, Selector};
use serde_json::Value;

mod jsonpath;
mod path;

pub use jsonpath::JsonPathQuery;
pub use path::ContextPath;

use super::helpers;
use super::native::{self, Part};

/// A compiled value.
#[derive(Debug, Clone)]
pub enum Expr {
    Literal(Value),
    /// Exactly `{{ a.b.c }}`: the typed value at that path.
    Path(ContextPath),
    /// Exactly `{{ helper args }}`: rendered through `json` and parsed back.
    Typed(Box<CompiledTemplate>),
    /// Text with templates inside: always a string.
    Text(Box<CompiledTemplate>),
    JsonPath(Box<JsonPathQuery>),
    Object(Vec<(String, Expr)>),
    Array(Vec<Expr>),
}

#[derive(Debug, Clone)]
pub struct CompiledTemplate {
    template: Template,
    source: String,
    /// The same template as a native tree, when it has no block helpers.
    native: Option<Vec<Part>>,
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// The shared Handlebars registry: helpers registered once, strict, no HTML escaping.
pub fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        helpers::register(&mut hb);
        hb
    })
}

impl Expr {
    /// Compiles a value written in a scenario. Errors name the offending leaf
    /// relative to `value` (e.g. `.customer.email`) and say what is wrong.
    pub fn compile(value: &Value) -> Result<Expr, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let expr = compile_at(value, String::new(), &mut errors);
        if errors.is_empty() {
            Ok(expr)
        } else {
            Err(errors)
        }
    }

    /// Compiles a string field (a URL, a message).
    pub fn compile_str(text: &str) -> Result<Expr, String> {
        compile_string(text)
    }

    pub fn is_literal(&self) -> bool {
        matches!(self, Expr::Literal(_))
    }

    /// Evaluates to an owned value; a missing path is an error naming it.
    pub fn eval(&self, ctx: &Context) -> Result<Value, EvalError> {
        match self {
            Expr::Object(fields) => {
                let mut map = serde_json::Map::with_capacity(fields.len());
                for (key, expr) in fields {
                    map.insert(key.clone(), expr.eval(ctx)?);
                }
                Ok(Value::Object(map))
            }
            Expr::Array(items) => items
                .iter()
                .map(|e| e.eval(ctx))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            _ => self.eval_ref(ctx).map(Cow::into_owned),
        }
    }

    /// Evaluates without copying when the value already exists in the context.
    pub fn eval_ref<'a>(&'a self, ctx: &'a Context) -> Result<Cow<'a, Value>, EvalError> {
        match self.eval_optional(ctx)? {
            Some(v) => Ok(v),
            None => {
                let Expr::Path(path) = self else {
                    unreachable!("only paths can be missing")
                };
                Err(EvalError(path.missing_message(ctx.data())))
            }
        }
    }

    /// Like [`Expr::eval_ref`], but a missing path is `None` (for `exists`, `empty`).
    pub fn eval_optional<'a>(
        &'a self,
        ctx: &'a Context,
    ) -> Result<Option<Cow<'a, Value>>, EvalError> {
        Ok(Some(match self {
            Expr::Literal(v) => Cow::Borrowed(v),
            Expr::Path(path) => match path.lookup(ctx.data()) {
                Some(v) => Cow::Borrowed(v),
                None => return Ok(None),
            },
            Expr::Text(t) => Cow::Owned(Value::String(t.render(ctx)?)),
            Expr::Typed(t) => {
                if let Some([Part::Value(node)]) = t.native.as_deref() {
                    return node.eval(ctx.data()).map(|v| Some(Cow::Owned(v)));
                }
                let text = t.render(ctx)?;
                Cow::Owned(
                    serde_json::from_str(&text).map_err(|e| {
                        EvalError(format!("`{}` gave unreadable JSON: {e}", t.source))
                    })?,
                )
            }
            Expr::JsonPath(q) => q.eval(ctx.data()),
            Expr::Object(_) | Expr::Array(_) => Cow::Owned(self.eval(ctx)?),
        }))
    }

    /// Gives the same value each time it is evaluated on the same context:
    /// it calls no helper whose answer changes from call to call (`now`,
    /// `uuid`). A step of such expressions can be re-run after a crash
    /// instead of being journaled before the next effect (see
    /// `PlanStep::replayable`). Conservative: the helper's name anywhere in
    /// a template counts, even as part of a path.
    pub fn is_repeatable(&self) -> bool {
        match self {
            Expr::Literal(_) | Expr::Path(_) | Expr::JsonPath(_) => true,
            Expr::Typed(t) | Expr::Text(t) => !mentions_changing_helper(&t.source),
            Expr::Object(fields) => fields.iter().all(|(_, e)| e.is_repeatable()),
            Expr::Array(items) => items.iter().all(Expr::is_repeatable),
        }
    }

    /// Every context path this expression reads, as segments (for reference checks).
    pub fn references(&self, out: &mut Vec<Vec<String>>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Path(p) => out.push(p.segments.clone()),
            Expr::Typed(t) | Expr::Text(t) => template_references(&t.template.elements, out),
            Expr::JsonPath(q) => {
                let mut names = Vec::new();
                for segment in &q.query.segments {
                    match segment {
                        Segment::Selector(Selector::Name(n)) => names.push(n.clone()),
                        _ => break,
                    }
                }
                if !names.is_empty() {
                    out.push(names);
                }
            }
            Expr::Object(fields) => fields.iter().for_each(|(_, e)| e.references(out)),
            Expr::Array(items) => items.iter().for_each(|e| e.references(out)),
        }
    }
}

/// Helpers whose answer changes from one call to the next.
const CHANGING_HELPERS: [&str; 2] = ["now", "uuid"];

fn mentions_changing_helper(source: &str) -> bool {
    source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| CHANGING_HELPERS.contains(&word))
}

fn compile_at(value: &Value, at: String, errors: &mut Vec<(String, String)>) -> Expr {
    match value {
        Value::String(text) => compile_string(text).unwrap_or_else(|message| {
            errors.push((at, message));
            Expr::Literal(Value::Null)
        }),
        Value::Object(map) => {
            let fields: Vec<(String, Expr)> = map
                .iter()
                .map(|(k, v)| (k.clone(), compile_at(v, format!("{at}.{k}"), errors)))
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
                .map(|(i, v)| compile_at(v, format!("{at}[{i}]"), errors))
                .collect();
            if items.iter().all(Expr::is_literal) {
                Expr::Literal(value.clone())
            } else {
                Expr::Array(items)
            }
        }
        other => Expr::Literal(other.clone()),
    }
}

fn compile_string(text: &str) -> Result<Expr, String> {
    if text.starts_with("$.") || text.starts_with("$[") || text == "$" {
        return JsonPathQuery::compile(text).map(|q| Expr::JsonPath(Box::new(q)));
    }
    if !text.contains("{{") {
        if text.contains("}}") {
            return Err(format!("`}}}}` without an opening `{{{{` in `{text}`"));
        }
        return Ok(Expr::Literal(Value::String(text.to_owned())));
    }
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "the template is {} bytes; a template is limited to {MAX_TEMPLATE_BYTES} bytes (split it into several values)",
            text.len()
        ));
    }
    let template = compile_template(text)?;
    if let Some(inner) = single_expression(text) {
        if let Some(path) = ContextPath::parse(inner) {
            return Ok(Expr::Path(path));
        }
        if let [TemplateElement::Expression(_)] = template.elements.as_slice() {
            let typed = compile_template(&format!("{{{{json ({inner})}}}}"))?;
            return Ok(Expr::Typed(Box::new(CompiledTemplate {
                native: native::convert(&template),
                template: typed,
                source: text.to_owned(),
            })));
        }
    }
    Ok(Expr::Text(Box::new(CompiledTemplate {
        native: native::convert(&template),
        template,
        source: text.to_owned(),
    })))
}

/// The longest template compiled. Handlebars finds the line of each token by
/// reading the template again from its start, so compiling takes time in the
/// square of the length: a 1 MiB template would hold `validate` for minutes.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;

fn compile_template(text: &str) -> Result<Template, String> {
    check_unclosed(text)?;
    let template = Template::compile(text).map_err(|e| {
        let reason = e.reason().to_string();
        match e.pos() {
            Some((line, col)) => format!(
                "invalid template `{text}`: {} (at line {line}, column {col} of the template)",
                one_line(&reason)
            ),
            None => format!("invalid template `{text}`: {}", one_line(&reason)),
        }
    })?;
    Ok(template)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Handlebars reads a stray `{{` as text; in a scenario it is always a mistake.
fn check_unclosed(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) if !after[..close].contains("{{") => rest = &after[close + 2..],
            _ => {
                return Err(format!(
                    "unclosed `{{{{` in template `{text}`: every `{{{{` needs a matching `}}}}`"
                ))
            }
        }
    }
    Ok(())
}

/// The inside of a string that is exactly one `{{ ... }}` expression.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let block_or_special =
        inner.starts_with(['#', '/', '!', '>', '^', '{', '~', '&']) || inner == "else";
    if inner.is_empty() || inner.contains("{{") || inner.contains("}}") || block_or_special {
        return None;
    }
    Some(inner)
}

impl CompiledTemplate {
    fn render(&self, ctx: &Context) -> Result<String, EvalError> {
        if let Some(parts) = &self.native {
            return native::render(parts, ctx.data());
        }
        let registry = registry();
        let mut rc = RenderContext::new(None);
        let mut out = StringOutput::new();
        self.template
            .render(registry, ctx, &mut rc, &mut out)
            .map_err(|e| EvalError(render_error_message(&self.source, &e, ctx.data())))?;
        out.into_string()
            .map_err(|e| EvalError(format!("`{}`: {e}", self.source)))
    }
}

fn render_error_message(source: &str, error: &handlebars::RenderError, data: &Value) -> String {
    match error.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => ContextPath::parse(path)
            .map(|p| p.missing_message(data))
            .unwrap_or_else(|| format!("`{path}` is missing")),
        RenderErrorReason::MissingVariable(None) => {
            format!("a value read by `{source}` is missing")
        }
        RenderErrorReason::HelperNotFound(name) => format!("unknown helper `{name}` in `{source}`"),
        other => format!("`{source}`: {other}"),
    }
}

fn template_references(elements: &[TemplateElement], out: &mut Vec<Vec<String>>) {
    for element in elements {
        match element {
            TemplateElement::Expression(h)
            | TemplateElement::HtmlExpression(h)
            | TemplateElement::HelperBlock(h) => {
                helper_references(h, out);
                // Inside `each`/`with` names are relative to the item: only `if`/`unless` keep the root.
                if !matches!(&h.name, Parameter::Name(n) if n == "if" || n == "unless") {
                    continue;
                }
                if let Some(t) = &h.template {
                    template_references(&t.elements, out);
                }
                if let Some(t) = &h.inverse {
                    template_references(&t.elements, out);
                }
            }
            _ => {}
        }
    }
}

/// A name that is not a helper and has arguments is reported as `["@helper", name]`.
pub const UNKNOWN_HELPER: &str = "@helper";

fn helper_references(h: &HelperTemplate, out: &mut Vec<Vec<String>>) {
    match &h.name {
        Parameter::Name(name)
            if !helpers::HELPER_NAMES.contains(&name.as_str())
                && !BUILTIN_BLOCKS.contains(&name.as_str()) =>
        {
            if h.params.is_empty() && h.hash.is_empty() {
                out.push(vec![name.clone()]);
            } else {
                out.push(vec![UNKNOWN_HELPER.to_owned(), name.clone()]);
            }
        }
        // `{{ now }}`: a helper called without arguments reads no path.
        Parameter::Path(Path::Relative((segments, _)))
            if h.params.is_empty()
                && matches!(segments.as_slice(), [PathSeg::Named(n)] if helpers::HELPER_NAMES.contains(&n.as_str())) =>
            {}
        other => parameter_references(other, out),
    }
    h.params.iter().for_each(|p| parameter_references(p, out));
    h.hash.values().for_each(|p| parameter_references(p, out));
}

/// Handlebars' own block helpers, usable in text templates.
const BUILTIN_BLOCKS: &[&str] = &["if", "unless", "each", "with", "lookup", "log", "else"];

fn parameter_references(parameter: &Parameter, out: &mut Vec<Vec<String>>) {
    match parameter {
        Parameter::Path(Path::Relative((segments, _))) => {
            let names: Vec<String> = segments
                .iter()
                .map_while(|s| match s {
                    PathSeg::Named(n) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            if !names.is_empty() && names[0] != "this" {
                out.push(names);
            }
        }
        Parameter::Subexpression(sub) => {
            if let TemplateElement::Expression(h) = sub.element.as_ref() {
                helper_references(h, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
