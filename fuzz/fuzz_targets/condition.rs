//! A condition (`when`, `filter`) read from YAML as the loader reads one,
//! compiled and evaluated against an execution's context. Input: the YAML,
//! then optionally NUL and a JSON trigger body.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use scenarist::load;
use scenarist::model::Condition;
use scenarist::plan::Cond;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (yaml, body) = common::split(text);
    // Read as the loader reads a step's `when`: limits, positions and all.
    let file = Path::new("fuzz.yaml");
    let Ok((document, map)) = load::parse_document(file, yaml) else {
        return;
    };
    let Ok(condition) = load::read_part::<Condition>(file, &map, document, "when") else {
        return;
    };
    let _ = Cond::describe(&condition);
    let (cond, _errors) = Cond::compile_all(&condition);
    let mut references = Vec::new();
    cond.references_at(String::new(), &mut references);
    let _ = cond.eval(&common::context(body));
});
