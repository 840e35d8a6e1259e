//! A template (any scenario string: text, `{{ path }}`, `{{ helper ... }}`)
//! compiled as the plan compiles it and evaluated against an execution's
//! context. Input: the template, then optionally NUL and a JSON trigger body.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use scenarist::plan::Expr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, body) = common::split(text);
    let Ok(expr) = Expr::compile_str(template) else {
        return;
    };
    let mut references = Vec::new();
    expr.references(&mut references);
    let ctx = common::context(body);
    let _ = expr.eval(&ctx);
    let _ = expr.eval_optional(&ctx);
});
