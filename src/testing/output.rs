//! How test results are shown: text for people, JSON for scripts, JUnit XML
//! for CI systems.

use serde_json::json;

use super::FileResult;

fn counts(results: &[FileResult]) -> (usize, usize) {
    let cases: Vec<_> = results.iter().flat_map(|f| &f.cases).collect();
    let failed = cases.iter().filter(|c| !c.passed()).count();
    (cases.len(), failed)
}

fn millis(micros: u128) -> String {
    if micros < 1000 {
        format!("{:.1} ms", micros as f64 / 1000.0)
    } else {
        format!("{} ms", micros / 1000)
    }
}

/// One line per case, failures under it, the counts on a line of their own.
pub fn text(results: &[FileResult]) -> String {
    let mut out = String::new();
    for file in results {
        out.push_str(&format!("{}\n", file.file.display()));
        for case in &file.cases {
            if case.passed() {
                out.push_str(&format!("  ✓ {} ({})\n", case.name, millis(case.micros)));
            } else {
                out.push_str(&format!("  ✗ {}\n", case.name));
                for failure in &case.failures {
                    for (i, line) in failure.lines().enumerate() {
                        let pad = if i == 0 { "      " } else { "        " };
                        out.push_str(&format!("{pad}{line}\n"));
                    }
                }
            }
        }
    }
    let (total, failed) = counts(results);
    let noun = if total == 1 { "case" } else { "cases" };
    out.push_str(&format!(
        "{total} {noun}: {} passed, {failed} failed\n",
        total - failed
    ));
    out
}

pub fn json(results: &[FileResult]) -> String {
    let (total, failed) = counts(results);
    let files: Vec<_> = results
        .iter()
        .map(|f| {
            json!({
                "file": f.file.display().to_string(),
                "scenario": f.scenario,
                "cases": f.cases.iter().map(|c| json!({
                    "name": c.name,
                    "passed": c.passed(),
                    "failures": c.failures,
                    "duration_ms": c.micros as f64 / 1000.0,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "cases": total,
        "passed": total - failed,
        "failed": failed,
        "files": files,
    }))
    .expect("JSON of strings and numbers")
}

fn xml(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => "\u{FFFD}".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// JUnit XML: one `testsuite` per file, one `testcase` per case.
pub fn junit(results: &[FileResult]) -> String {
    let (total, failed) = counts(results);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"scenarist\" tests=\"{total}\" failures=\"{failed}\">\n"
    );
    for file in results {
        let failures = file.cases.iter().filter(|c| !c.passed()).count();
        let seconds: f64 = file.cases.iter().map(|c| c.micros as f64 / 1e6).sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.6}\">\n",
            xml(&file.file.display().to_string()),
            file.cases.len()
        ));
        for case in &file.cases {
            let open = format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.6}\"",
                xml(&file.scenario),
                xml(&case.name),
                case.micros as f64 / 1e6
            );
            if case.passed() {
                out.push_str(&format!("{open}/>\n"));
            } else {
                let first = case.failures[0].lines().next().unwrap_or_default();
                out.push_str(&format!(
                    "{open}>\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    xml(first),
                    xml(&case.failures.join("\n"))
                ));
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
