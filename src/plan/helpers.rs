//! Template helpers of scenarist's template language (Handlebars, strict mode, no escaping).
//!
//! Helpers are the only computation a scenario author can write inside templates, so
//! they must be total: every helper returns a typed JSON value (usable both as
//! `{{ add a 1 }}` and as a subexpression `{{ json (add a 1) }}`), and wrong input gives
//! a clear `RenderError` naming the helper, never a panic. A parameter whose path does
//! not exist in the data is treated as `null`, so `default` works in strict mode.

use std::cmp::Ordering;
use std::fmt::Write as _;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use chrono::format::StrftimeItems;
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason, Renderable, ScopedJson,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Names of every helper this module registers (used by the validator to tell a helper call from a path).
#[rustfmt::skip]
pub const HELPER_NAMES: &[&str] = &[
    "default", "json", "pick", "upper", "lower", "trim", "len", "eq", "ne", "gt", "gte", "lt", "lte", "and",
    "or", "not", "add", "sub", "mul", "div", "round", "concat", "join", "split", "replace", "now",
    "format_date", "url_encode", "base64", "sha256", "hmac_sha256", "uuid", "find_row",
];

/// Registers every helper on the registry (overriding handlebars' built-in eq/ne/gt/gte/lt/lte/and/or/not/len).
pub fn register(registry: &mut Handlebars<'static>) {
    for spec in SPECS {
        registry.register_helper(spec.name, Box::new(*spec));
    }
}

/// The longest text a helper may give. One call gives at most a few times its
/// arguments' length, but calls nest: each `json` of a `json` doubles the text,
/// so 32 nested calls in a 300-byte template would ask for 4 GiB.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

type Args<'a> = &'a [Value];
type Out = Result<Value, String>;

/// One helper: its name, accepted parameter count (`max == N`: variadic) and its pure function.
#[derive(Clone, Copy)]
struct Spec {
    name: &'static str,
    min: usize,
    max: usize,
    f: fn(Args) -> Out,
}

const N: usize = usize::MAX;

const fn spec(name: &'static str, min: usize, max: usize, f: fn(Args) -> Out) -> Spec {
    Spec { name, min, max, f }
}

#[rustfmt::skip]
const SPECS: &[Spec] = &[
    spec("default", 2, 2, |a| {
        let v = at(a, 0);
        Ok(if v.is_null() || v.as_str() == Some("") { at(a, 1) } else { v }.clone())
    }),
    spec("json", 1, 1, |a| Ok(Value::String(at(a, 0).to_string()))),
    // `pick input "email" "name"`: those keys that are there and not null
    // (an app's JSON body sends only the fields a step gave).
    spec("pick", 2, N, |a| match at(a, 0) {
        Value::Object(map) => Ok(a[1..]
            .iter()
            .map(text)
            .filter_map(|k| map.get(&k).filter(|v| !v.is_null()).map(|v| (k, v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into()),
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        v => Err(format!("expected an object, got {}", show(v))),
    }),
    spec("upper", 1, 1, |a| Ok(text(at(a, 0)).to_uppercase().into())),
    spec("lower", 1, 1, |a| Ok(text(at(a, 0)).to_lowercase().into())),
    spec("trim", 1, 1, |a| Ok(text(at(a, 0)).trim().into())),
    spec("len", 1, 1, |a| match at(a, 0) {
        Value::Array(v) => Ok(v.len().into()),
        Value::String(s) => Ok(s.chars().count().into()),
        Value::Object(m) => Ok(m.len().into()),
        Value::Null => Ok(0.into()),
        v => Err(format!("expected an array, string or object, got {}", show(v))),
    }),
    spec("eq", 2, 2, |a| Ok(loose_eq(at(a, 0), at(a, 1)).into())),
    spec("ne", 2, 2, |a| Ok((!loose_eq(at(a, 0), at(a, 1))).into())),
    spec("gt", 2, 2, |a| Ok((compare(a)? == Ordering::Greater).into())),
    spec("gte", 2, 2, |a| Ok((compare(a)? != Ordering::Less).into())),
    spec("lt", 2, 2, |a| Ok((compare(a)? == Ordering::Less).into())),
    spec("lte", 2, 2, |a| Ok((compare(a)? != Ordering::Greater).into())),
    spec("and", 1, N, |a| Ok(a.iter().all(truthy).into())),
    spec("or", 1, N, |a| Ok(a.iter().any(truthy).into())),
    spec("not", 1, 1, |a| Ok((!truthy(at(a, 0))).into())),
    spec("add", 2, N, |a| fold(a, i64::checked_add, |x, y| x + y)),
    spec("sub", 2, 2, |a| fold(a, i64::checked_sub, |x, y| x - y)),
    spec("mul", 2, N, |a| fold(a, i64::checked_mul, |x, y| x * y)),
    spec("div", 2, 2, |a| {
        let (x, y) = (need(at(a, 0))?, need(at(a, 1))?);
        if y == 0.0 { Err("division by zero".into()) } else { number(x / y) }
    }),
    spec("round", 1, 2, round),
    spec("concat", 1, N, |a| {
        if a.iter().all(Value::is_array) {
            return Ok(a.iter().filter_map(Value::as_array).flatten().cloned().collect());
        }
        Ok(a.iter().map(text).collect::<String>().into())
    }),
    spec("join", 1, 2, |a| {
        let items = at(a, 0).as_array();
        let items = items.ok_or_else(|| format!("expected an array, got {}", show(at(a, 0))))?;
        let sep = if at(a, 1).is_null() { ",".to_string() } else { text(at(a, 1)) };
        let texts: Vec<String> = items.iter().map(text).collect();
        fits(texts.iter().map(String::len).sum::<usize>().saturating_add(sep.len().saturating_mul(texts.len())))?;
        Ok(texts.join(&sep).into())
    }),
    spec("split", 2, 2, |a| {
        let (s, sep) = (text(at(a, 0)), text(at(a, 1)));
        Ok(match (s.is_empty(), sep.is_empty()) {
            (true, _) => Vec::new(),
            (false, true) => s.chars().map(|c| c.to_string()).collect(),
            (false, false) => s.split(sep.as_str()).map(str::to_string).collect(),
        }.into())
    }),
    spec("replace", 3, 3, |a| {
        let from = text(at(a, 1));
        if from.is_empty() { return Err("the text to replace must not be empty".into()); }
        let (s, to) = (text(at(a, 0)), text(at(a, 2)));
        let count = s.matches(from.as_str()).count();
        fits((s.len() - count * from.len()).saturating_add(count.saturating_mul(to.len())))?;
        Ok(s.replace(&from, &to).into())
    }),
    spec("now", 0, 1, |a| match at(a, 0) {
        Value::Null => Ok(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true).into()),
        f => strftime(&Utc::now().with_timezone(&Tz::UTC), &text(f)),
    }),
    spec("format_date", 2, 3, format_date),
    spec("url_encode", 1, 1, |a| Ok(urlencoding::encode(&text(at(a, 0))).into_owned().into())),
    spec("base64", 1, 1, |a| Ok(BASE64_STANDARD.encode(text(at(a, 0))).into())),
    spec("sha256", 1, 1, |a| Ok(hex(&Sha256::digest(text(at(a, 0)).as_bytes())).into())),
    spec("hmac_sha256", 2, 2, |a| {
        let mut mac = Hmac::<Sha256>::new_from_slice(text(at(a, 0)).as_bytes())
            .map_err(|e| format!("invalid key: {e}"))?;
        mac.update(text(at(a, 1)).as_bytes());
        Ok(hex(&mac.finalize().into_bytes()).into())
    }),
    spec("uuid", 0, 0, |_| Ok(uuid::Uuid::new_v4().to_string().into())),
    spec("find_row", 3, 3, find_row),
];

/// `find_row ROWS COLUMN VALUE`: the first row (a spreadsheet's rows, each
/// an array of cells) whose cell in COLUMN (a letter, `A`, or a number
/// from 1) reads VALUE, as `{ row, values }` with `row` counted from 1;
/// null when none does.
fn find_row(a: &[Value]) -> Result<Value, String> {
    let column = match at(a, 1) {
        Value::Number(n) => n.as_u64().filter(|n| *n >= 1).map(|n| n - 1),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic()) => Some(
            s.bytes().fold(0u64, |n, b| {
                n * 26 + u64::from(b.to_ascii_uppercase() - b'A' + 1)
            }) - 1,
        ),
        _ => None,
    };
    let column = column.ok_or_else(|| {
        format!(
            "a column is a letter such as `A` or a number from 1, not {}",
            show(at(a, 1))
        )
    })?;
    let wanted = text(at(a, 2));
    let rows = match at(a, 0) {
        Value::Array(rows) => rows.as_slice(),
        Value::Null => &[],
        other => return Err(format!("expected the rows (an array), got {}", show(other))),
    };
    let found = rows.iter().enumerate().find(|(_, row)| {
        row.get(usize::try_from(column).unwrap_or(usize::MAX))
            .is_some_and(|cell| text(cell) == wanted)
    });
    Ok(found.map_or(
        Value::Null,
        |(i, row)| serde_json::json!({ "row": i + 1, "values": row }),
    ))
}

/// A helper looked up once at compile time, callable without Handlebars.
#[derive(Clone, Copy)]
pub struct HelperFn(&'static Spec);

impl std::fmt::Debug for HelperFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HelperFn({})", self.0.name)
    }
}

impl HelperFn {
    pub fn find(name: &str) -> Option<HelperFn> {
        SPECS.iter().find(|s| s.name == name).map(HelperFn)
    }

    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// Checks the argument count, then calls the helper; errors name it.
    pub fn call(&self, args: &[Value]) -> Result<Value, String> {
        let name = self.0.name;
        self.0
            .check_arity(args.len())
            .map_err(|m| format!("helper `{name}`: {m}"))?;
        self.0
            .apply(args)
            .map_err(|m| format!("helper `{name}`: {m}"))
    }
}

impl Spec {
    fn check_arity(&self, n: usize) -> Result<(), String> {
        if n < self.min || n > self.max {
            let expected = match self.max {
                N => format!("at least {}", self.min),
                max if max == self.min => format!("{max}"),
                max => format!("{} to {max}", self.min),
            };
            return Err(format!("expected {expected} parameter(s), got {n}"));
        }
        Ok(())
    }

    fn eval(&self, h: &Helper<'_>) -> Result<Value, RenderError> {
        let name = self.name;
        let fail = |m: String| RenderErrorReason::Other(format!("helper `{name}`: {m}")).into();
        if let Some(key) = h.hash().keys().next() {
            return Err(fail(format!("named parameter `{key}` is not supported")));
        }
        // A missing path (`is_value_missing()`) reads as null here, even in strict mode.
        let args: Vec<Value> = h.params().iter().map(|p| p.value().clone()).collect();
        self.check_arity(args.len()).map_err(fail)?;
        self.apply(&args).map_err(fail)
    }

    /// The helper's function, refusing a text longer than [`MAX_RESULT_BYTES`]
    /// (the helpers that could ask for far more check before building it).
    fn apply(&self, args: Args) -> Out {
        let result = (self.f)(args)?;
        if let Value::String(s) = &result {
            fits(s.len())?;
        }
        Ok(result)
    }
}

/// Non-block use: handlebars' default `call`, which renders the value of `call_inner`.
struct Inline<'a>(&'a Spec);

impl HelperDef for Inline<'_> {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        self.0.eval(h).map(ScopedJson::Derived)
    }
}

impl HelperDef for Spec {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        self.eval(h).map(ScopedJson::Derived)
    }

    /// Block use (`{{#eq a b}}..{{else}}..{{/eq}}`, as handlebars' built-ins allow):
    /// renders the block when the value is truthy, the inverse otherwise.
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        if !h.is_block() {
            return Inline(self).call(h, r, ctx, rc, out);
        }
        let (then, inverse) = (h.template(), h.inverse());
        let branch = if truthy(&self.eval(h)?) {
            then
        } else {
            inverse
        };
        branch.map_or(Ok(()), |t| t.render(r, ctx, rc, out))
    }
}

fn fits(len: usize) -> Result<(), String> {
    if len > MAX_RESULT_BYTES {
        return Err(format!(
            "the result would be {len} bytes, more than the {MAX_RESULT_BYTES} a helper may give"
        ));
    }
    Ok(())
}

fn at(a: &[Value], i: usize) -> &Value {
    const NULL: &Value = &Value::Null;
    a.get(i).unwrap_or(NULL)
}

/// Text form: strings as is, null as "", anything else as compact JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// A value for error messages: compact JSON, cut after 80 characters.
fn show(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Numeric value: a JSON number, or a string parsing (after trim) as a finite f64.
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Exact integer value (integers are computed and compared without going through f64).
fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn need(v: &Value) -> Result<f64, String> {
    num(v).ok_or_else(|| format!("expected a number, got {}", show(v)))
}

/// JSON number for `f`: an integer when integral and within i64, else a float.
fn number(f: f64) -> Out {
    match serde_json::Number::from_f64(f) {
        Some(_) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Value::from(f as i64)),
        Some(n) => Ok(Value::Number(n)),
        None => Err("the result is not a finite number".into()),
    }
}

fn fold(a: Args, iop: fn(i64, i64) -> Option<i64>, fop: fn(f64, f64) -> f64) -> Out {
    let fs = a.iter().map(need).collect::<Result<Vec<_>, _>>()?;
    // All integers and no overflow: exact i64 arithmetic; otherwise f64.
    let ints: Vec<i64> = a.iter().map(int).collect::<Option<_>>().unwrap_or_default();
    if let Some((first, rest)) = ints.split_first() {
        if let Some(r) = rest.iter().try_fold(*first, |acc, &x| iop(acc, x)) {
            return Ok(r.into());
        }
    }
    let (first, rest) = fs.split_first().ok_or("no operands")?;
    number(rest.iter().fold(*first, |acc, &x| fop(acc, x)))
}

/// Numeric ordering when both values are numeric (exact for integers).
fn num_cmp(x: &Value, y: &Value) -> Option<Ordering> {
    match (int(x), int(y)) {
        (Some(i), Some(j)) => Some(i.cmp(&j)),
        _ => num(x)?.partial_cmp(&num(y)?),
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match num_cmp(a, b) {
        Some(o) if a.is_number() || b.is_number() => o == Ordering::Equal,
        _ => a == b,
    }
}

fn compare(a: Args) -> Result<Ordering, String> {
    let (x, y) = (at(a, 0), at(a, 1));
    match (num_cmp(x, y), x, y) {
        (Some(o), _, _) => Ok(o),
        (None, Value::String(s), Value::String(t)) => Ok(s.cmp(t)),
        _ => Err(format!("cannot compare {} with {}", show(x), show(y))),
    }
}

/// Half away from zero, on the shortest decimal form of the number (so 2.675 -> 2.68).
fn round(a: Args) -> Out {
    let x = need(at(a, 0))?;
    let digits = match at(a, 1) {
        Value::Null => 0,
        v => num(v)
            .filter(|d| d.fract() == 0.0 && d.abs() <= 15.0)
            .ok_or_else(|| format!("digits must be an integer from -15 to 15, got {}", show(v)))?
            as i64,
    };
    let rounded = shift(x, digits).and_then(|s| shift(s.round(), -digits));
    number(rounded.ok_or("the result is not a finite number")?)
}

/// `x * 10^d` computed on the decimal text, avoiding binary artefacts (2.675 * 100 = 267.4999...).
fn shift(x: f64, d: i64) -> Option<f64> {
    let f: f64 = format!("{x}e{d}").parse().ok()?;
    f.is_finite().then_some(f)
}

fn strftime(dt: &DateTime<Tz>, fmt: &str) -> Out {
    let items = StrftimeItems::new(fmt)
        .parse()
        .map_err(|_| format!("invalid date format {}", show(&fmt.into())))?;
    let mut s = String::new();
    write!(s, "{}", dt.format_with_items(items.iter()))
        .map_err(|_| format!("date format {} cannot be applied", show(&fmt.into())))?;
    Ok(s.into())
}

const DATE_FORMS: &str = "an RFC 3339 date-time, a YYYY-MM-DD date or unix seconds";

fn format_date(a: Args) -> Out {
    let unknown = |v: &Value| format!("unknown timezone {}", show(v));
    let tz: Tz = match at(a, 2) {
        Value::Null => Tz::UTC,
        v => text(v).trim().parse().map_err(|_| unknown(v))?,
    };
    let v = at(a, 0);
    let bad = || format!("expected {DATE_FORMS}, got {}", show(v));
    let s = v.as_str().map(str::trim).unwrap_or_default();
    let dt = if let Some(secs) = num(v) {
        if secs.abs() > 1e14 {
            return Err(bad());
        }
        let whole = secs.floor();
        DateTime::from_timestamp(whole as i64, ((secs - whole) * 1e9) as u32).ok_or_else(bad)?
    } else if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        dt.with_timezone(&Utc)
    } else if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        // A plain date is midnight in the requested timezone, so it keeps its day.
        let midnight = day.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
        match tz.from_local_datetime(&midnight).earliest() {
            Some(local) => local.with_timezone(&Utc),
            None => Utc.from_utc_datetime(&midnight),
        }
    } else {
        return Err(bad());
    };
    strftime(&dt.with_timezone(&tz), &text(at(a, 1)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
