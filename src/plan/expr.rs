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
use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use serde_json::Value;

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

#[derive(Debug, Clone)]
pub struct JsonPathQuery {
    query: JpQuery,
    /// A definite path yields one value (null when absent); others an array.
    definite: bool,
    /// The query as plain steps when it only names keys, indexes and
    /// wildcards: walked directly, without building a path string per match.
    simple: Option<Vec<Selector>>,
}

/// A dotted path into the context, e.g. `steps.find.body.users.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextPath {
    segments: Vec<String>,
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

impl ContextPath {
    /// Parses `a.b.0.c` or `a.[b c].d`; `None` when it is not a plain path or
    /// when its first segment is a helper name (then it is a helper call).
    pub fn parse(text: &str) -> Option<ContextPath> {
        let mut segments = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let segment;
            if let Some(bracketed) = rest.strip_prefix('[') {
                let end = bracketed.find(']')?;
                segment = &bracketed[..end];
                rest = &bracketed[end + 1..];
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                segment = &rest[..end];
                rest = &rest[end..];
                if segment.is_empty()
                    || !segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '@')
                {
                    return None;
                }
            }
            segments.push(segment.to_owned());
            if let Some(after) = rest.strip_prefix('.') {
                if after.is_empty() {
                    return None;
                }
                rest = after;
            } else if !rest.is_empty() {
                return None;
            }
        }
        let first = segments.first()?;
        if helpers::HELPER_NAMES.contains(&first.as_str())
            || first.starts_with('@')
            || first == "this"
        {
            return None;
        }
        Some(ContextPath { segments })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn lookup<'a>(&self, data: &'a Value) -> Option<&'a Value> {
        let mut current = data;
        for segment in &self.segments {
            current = step_into(current, segment)?;
        }
        Some(current)
    }

    /// "`trigger.body.amout` is missing (trigger.body has: amount, email)".
    pub(super) fn missing_message(&self, data: &Value) -> String {
        let mut current = data;
        for (depth, segment) in self.segments.iter().enumerate() {
            match step_into(current, segment) {
                Some(next) => current = next,
                None => {
                    let parent = self.segments[..depth].join(".");
                    let full = self.segments.join(".");
                    return match current {
                        Value::Object(map) if depth > 0 => {
                            let keys: Vec<&str> = map.keys().map(String::as_str).take(12).collect();
                            let hint =
                                crate::diagnostic::did_you_mean(segment, keys.iter().copied())
                                    .map(|s| format!("; did you mean `{parent}.{s}`?"))
                                    .unwrap_or_default();
                            if keys.is_empty() {
                                format!("`{full}` is missing (`{parent}` is empty)")
                            } else {
                                format!(
                                    "`{full}` is missing{hint} (`{parent}` has: {})",
                                    keys.join(", ")
                                )
                            }
                        }
                        Value::Array(items) if depth > 0 => {
                            format!(
                                "`{full}` is missing (`{parent}` is a list of {} items)",
                                items.len()
                            )
                        }
                        _ if depth > 0 => {
                            format!("`{full}` is missing (`{parent}` is {})", kind_of(current))
                        }
                        _ => format!("`{full}` is missing"),
                    };
                }
            }
        }
        format!("`{}` is missing", self.segments.join("."))
    }
}

fn step_into<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The deepest nesting of brackets and parentheses a JSONPath query may have.
/// The parser backtracks at every level, so its time multiplies with each one:
/// seven levels of `value(none_of(((... [?` (150 bytes) took over a minute.
pub const MAX_JSONPATH_NESTING: usize = 10;

/// How deep brackets and parentheses nest in `text`, outside quoted names.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut quote, mut escaped) = (0usize, 0, None, false);
    for c in text.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ']' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

impl JsonPathQuery {
    fn compile(text: &str) -> Result<JsonPathQuery, String> {
        if nesting(text) > MAX_JSONPATH_NESTING {
            return Err(format!(
                "invalid JSONPath `{text}`: brackets and parentheses nest more than {MAX_JSONPATH_NESTING} deep"
            ));
        }
        let query = jsonpath_rust::parser::parse_json_path(text)
            .map_err(|e| format!("invalid JSONPath `{text}`: {}", one_line(&e.to_string())))?;
        let definite = query
            .segments
            .iter()
            .all(|s| matches!(s, Segment::Selector(Selector::Name(_) | Selector::Index(_))));
        let simple = query
            .segments
            .iter()
            .map(|s| match s {
                Segment::Selector(
                    sel @ (Selector::Name(_) | Selector::Index(_) | Selector::Wildcard),
                ) => Some(sel.clone()),
                _ => None,
            })
            .collect();
        Ok(JsonPathQuery {
            query,
            definite,
            simple,
        })
    }

    fn eval<'a>(&'a self, data: &'a Value) -> Cow<'a, Value> {
        if let Some(steps) = &self.simple {
            let mut found = Vec::new();
            walk(data, steps, &mut found);
            return if self.definite {
                found
                    .into_iter()
                    .next()
                    .map(Cow::Borrowed)
                    .unwrap_or(Cow::Owned(Value::Null))
            } else {
                Cow::Owned(Value::Array(found.into_iter().cloned().collect()))
            };
        }
        let found = jsonpath_rust::query::js_path_process(&self.query, data).unwrap_or_default();
        if self.definite {
            found
                .into_iter()
                .next()
                .map(|r| Cow::Borrowed(r.val))
                .unwrap_or(Cow::Owned(Value::Null))
        } else {
            Cow::Owned(Value::Array(
                found.into_iter().map(|r| r.val.clone()).collect(),
            ))
        }
    }
}

/// RFC 9535 semantics for name, index (negative from the end) and wildcard selectors.
fn walk<'a>(value: &'a Value, steps: &[Selector], found: &mut Vec<&'a Value>) {
    let Some((first, rest)) = steps.split_first() else {
        found.push(value);
        return;
    };
    match (first, value) {
        (Selector::Name(name), Value::Object(map)) => {
            if let Some(v) = map.get(name) {
                walk(v, rest, found);
            }
        }
        (Selector::Index(i), Value::Array(items)) => {
            let index = if *i < 0 { items.len() as i64 + i } else { *i };
            if let Some(v) = usize::try_from(index).ok().and_then(|i| items.get(i)) {
                walk(v, rest, found);
            }
        }
        (Selector::Wildcard, Value::Array(items)) => {
            items.iter().for_each(|v| walk(v, rest, found))
        }
        (Selector::Wildcard, Value::Object(map)) => map.values().for_each(|v| walk(v, rest, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(source: Value, data: Value) -> Result<Value, EvalError> {
        let expr = Expr::compile(&source).map_err(|e| EvalError(format!("{e:?}")))?;
        expr.eval(&Context::from(data))
    }

    #[test]
    fn a_deeply_nested_jsonpath_is_refused_before_it_is_parsed() {
        // Found by the jsonpath fuzz target (a timeout): the parser's time
        // multiplies with each level, and seven of these took over a minute.
        let deep = format!("$.a[?{}@.c", "value(none_of((($.b[?".repeat(7));
        let err = Expr::compile_str(&deep).expect_err("too deep");
        assert!(err.contains("nest more than 10 deep"), "{err}");
        let fine = "$.trigger.body.items[?(@.price > 5 && @.name == 'a(b[c')].sku";
        assert!(Expr::compile_str(fine).is_ok());
        assert_eq!(nesting("$['a[(']"), 1);
    }

    #[test]
    fn a_long_template_is_refused_before_handlebars_compiles_it() {
        // Found by a hand-written input to the template fuzz target: 3,000
        // nested `if` blocks (48 KB) took 7 s to compile, and the time grows
        // with the square of the length.
        let long = format!("{}x{}", "{{#if a}}".repeat(3000), "{{/if}}".repeat(3000));
        let err = Expr::compile_str(&long).expect_err("too long");
        assert!(
            err.contains("a template is limited to 16384 bytes"),
            "{err}"
        );
        let fits = format!("{}x{}", "{{#if a}}".repeat(500), "{{/if}}".repeat(500));
        assert!(Expr::compile_str(&fits).is_ok());
    }

    #[test]
    fn a_single_path_keeps_its_type() {
        let data = json!({"trigger": {"body": {"amount": 750, "tags": ["a"]}}});
        assert_eq!(
            eval(json!("{{ trigger.body.amount }}"), data.clone()).unwrap(),
            json!(750)
        );
        assert_eq!(
            eval(json!("{{trigger.body.tags}}"), data.clone()).unwrap(),
            json!(["a"])
        );
        assert_eq!(
            eval(json!("n={{ trigger.body.amount }}"), data).unwrap(),
            json!("n=750")
        );
    }

    #[test]
    fn a_single_helper_call_keeps_its_type() {
        let data = json!({"a": 2});
        assert_eq!(
            eval(json!("{{ add a 3 }}"), data.clone()).unwrap(),
            json!(5)
        );
        assert_eq!(eval(json!("{{ gte a 1 }}"), data).unwrap(), json!(true));
    }

    #[test]
    fn block_helpers_still_render_through_handlebars() {
        let data = json!({"vip": true, "name": "Ann", "n": 2});
        assert_eq!(
            eval(json!("{{#if vip}}VIP {{/if}}{{ name }}"), data.clone()).unwrap(),
            json!("VIP Ann")
        );
        assert_eq!(
            eval(json!("{{#gt n 1}}many{{else}}one{{/gt}}"), data.clone()).unwrap(),
            json!("many")
        );
        // The native path renders the same text as Handlebars for scalars.
        assert_eq!(
            eval(
                json!("{{ name }}: {{ n }} {{ vip }} {{ upper (trim name) }}"),
                data
            )
            .unwrap(),
            json!("Ann: 2 true ANN")
        );
    }

    #[test]
    fn maps_and_lists_are_built_leaf_by_leaf() {
        let data = json!({"x": {"id": 7, "name": "Ann \"the\" {{ boss }}"}});
        let out = eval(
            json!({"id": "{{ x.id }}", "who": ["{{ x.name }}", 1]}),
            data,
        )
        .unwrap();
        // The name arrives from outside and is never evaluated as a template.
        assert_eq!(out, json!({"id": 7, "who": ["Ann \"the\" {{ boss }}", 1]}));
    }

    #[test]
    fn missing_paths_are_errors_that_name_the_path() {
        let data = json!({"trigger": {"body": {"amount": 1, "email": "a@b"}}});
        let err = eval(json!("{{ trigger.body.amout }}"), data.clone()).unwrap_err();
        assert_eq!(err.0, "`trigger.body.amout` is missing; did you mean `trigger.body.amount`? (`trigger.body` has: amount, email)");
        let err = eval(json!("x {{ trigger.body.nope }}"), data).unwrap_err();
        assert!(
            err.0.contains("`trigger.body.nope` is missing"),
            "{}",
            err.0
        );
    }

    #[test]
    fn jsonpath_definite_and_wildcard() {
        let data = json!({"steps": {"list": {"body": [{"id": 1}, {"id": 2}]}}});
        assert_eq!(
            eval(json!("$.steps.list.body[1].id"), data.clone()).unwrap(),
            json!(2)
        );
        assert_eq!(
            eval(json!("$.steps.list.body[9].id"), data.clone()).unwrap(),
            json!(null)
        );
        assert_eq!(
            eval(json!("$.steps.list.body[*].id"), data).unwrap(),
            json!([1, 2])
        );
    }

    #[test]
    fn syntax_errors_are_reported_at_their_leaf() {
        let errors = Expr::compile(&json!({"a": "{{ x ", "b": ["$.[", "ok"]})).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, ".a");
        assert!(errors[0].1.contains("template"), "{}", errors[0].1);
        assert_eq!(errors[1].0, ".b[0]");
        assert!(errors[1].1.contains("invalid JSONPath"), "{}", errors[1].1);
    }

    #[test]
    fn references_are_collected_from_templates_and_paths() {
        let expr = Expr::compile(
            &json!({"a": "{{ default steps.find.body.url vars.fallback }}", "b": "$.env.TOKEN"}),
        )
        .unwrap();
        let mut refs = Vec::new();
        expr.references(&mut refs);
        assert!(
            refs.contains(&vec![
                "steps".into(),
                "find".into(),
                "body".into(),
                "url".into()
            ]),
            "{refs:?}"
        );
        assert!(refs.contains(&vec!["vars".into(), "fallback".into()]));
        assert!(refs.contains(&vec!["env".into(), "TOKEN".into()]));
    }
}
