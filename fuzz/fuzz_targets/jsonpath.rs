//! A JSONPath query compiled as the plan compiles one and evaluated on a JSON
//! document. Input: the query, NUL, the document (the trigger body). A query
//! not starting with `$` gets one, so every input is a query.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use scenarist::plan::Expr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (query, document) = common::split(text);
    let query = if query.starts_with('$') {
        query.to_owned()
    } else {
        format!("${query}")
    };
    let Ok(expr) = Expr::compile_str(&query) else {
        return;
    };
    let mut references = Vec::new();
    expr.references(&mut references);
    let ctx = common::context(document);
    // The query runs on the whole context, as a scenario's `$.trigger.body...` does.
    let _ = expr.eval(&ctx);
});
