//! Scenario text through the loader and the compiler, as `scenarist validate`
//! reads a file: every problem is a diagnostic, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use scenarist::{load, plan};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.yaml");
    let diagnostics = match load::load_str(file, text.to_owned()) {
        Ok(loaded) => match plan::compile(&loaded) {
            Ok(plan) => {
                let _ = plan.find_step("a");
                Vec::new()
            }
            Err(diagnostics) => diagnostics,
        },
        Err(failure) => {
            let mut diagnostics = failure.diagnostics;
            // As the catalog does: what could be read is compiled too.
            if let Some(partial) = failure.partial {
                if let Err(more) = plan::compile(&partial) {
                    diagnostics.extend(more);
                }
            }
            diagnostics
        }
    };
    for diagnostic in &diagnostics {
        let _ = diagnostic.render(Some(text));
    }
});
