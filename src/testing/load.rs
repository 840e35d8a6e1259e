//! Reads a test file with positions, like a scenario: each case on its own,
//! so one bad case does not hide the next; then checks it against the
//! compiled scenario (mocks of steps that are not http steps are stale,
//! approvals of steps that are not approvals, unknown step ids with "did
//! you mean", undeclared or missing env values).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

use super::model::{TestCase, TestFile};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::load::{join_index, parse_document, problems_by_key, read_part, SourceMap};
use crate::model::Step;
use crate::plan::Plan;

/// A test file read and checked, with what is needed to point at its lines.
#[derive(Debug)]
pub struct LoadedTest {
    pub file: PathBuf,
    pub source: String,
    pub map: SourceMap,
    pub test: TestFile,
    /// The index in the file of each case of `test.cases`.
    pub numbers: Vec<usize>,
}

impl LoadedTest {
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.map.value(path), path, message)
    }

    /// The scenario file this test file is about.
    pub fn scenario_file(&self) -> PathBuf {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        match &self.test.scenario {
            Some(name) => dir.join(name),
            None => {
                let name = self.file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let base = name
                    .strip_suffix(".test.yaml")
                    .or_else(|| name.strip_suffix(".test.yml"))
                    .unwrap_or(name);
                dir.join(format!("{base}.yaml"))
            }
        }
    }
}

/// Reads and parses a test file. A file that cannot be read at all is an
/// error; otherwise the cases that could be read come back with the
/// problems of the others, so that every problem is reported at once.
pub fn load_test(file: &Path) -> Result<(LoadedTest, Vec<Diagnostic>), Vec<Diagnostic>> {
    let whole = |message: String| vec![Diagnostic::new(file, None, "", message)];
    let bytes = crate::load::read_capped(file, "test").map_err(whole)?;
    let source =
        String::from_utf8(bytes).map_err(|_| whole("the file is not UTF-8 text".to_owned()))?;
    let (document, map) = parse_document(file, &source).map_err(|d| vec![d])?;
    if !matches!(document, Yaml::Mapping(_)) {
        return Err(whole(
            "a test file is a YAML mapping with `cases` (and optionally `scenario`, `env`, `vars`)"
                .to_owned(),
        ));
    }
    let mut diagnostics = Vec::new();
    let header = match read_part::<TestFile<Yaml>>(file, &map, document, "") {
        Ok(h) => h,
        Err(d) => return Err(vec![d]),
    };
    let mut cases = Vec::with_capacity(header.cases.len());
    let mut numbers = Vec::with_capacity(header.cases.len());
    for (i, raw) in header.cases.into_iter().enumerate() {
        let base = join_index("cases", i);
        match read_part::<TestCase>(file, &map, raw.clone(), &base) {
            Ok(case) => {
                cases.push(case);
                numbers.push(i);
            }
            Err(first) => {
                // Each field on its own, so one bad field does not hide the next.
                let placeholder = [("name", Yaml::String("case".to_owned()))];
                let each = problems_by_key::<TestCase>(file, &map, &raw, &base, &placeholder);
                if each.is_empty() {
                    diagnostics.push(first);
                } else {
                    diagnostics.extend(each);
                }
            }
        }
    }
    if cases.is_empty() && diagnostics.is_empty() {
        diagnostics.push(Diagnostic::new(
            file,
            map.value("cases"),
            "cases",
            "a test file needs at least one case",
        ));
    }
    let loaded = LoadedTest {
        file: file.to_path_buf(),
        source,
        map,
        test: TestFile {
            scenario: header.scenario,
            env: header.env,
            vars: header.vars,
            cases,
        },
        numbers,
    };
    Ok((loaded, diagnostics))
}

fn collect<'a>(
    steps: impl IntoIterator<Item = &'a Step>,
    out: &mut BTreeMap<String, &'static str>,
) {
    for step in steps {
        // An app's action is an http step: mocked and expected like one.
        let kind = match step.kind.name() {
            "uses" => "http",
            other => other,
        };
        out.insert(step.id.to_string(), kind);
        collect(step.children(), out);
    }
}

/// Checks the test file against the scenario it tests: every problem.
pub fn check_against(loaded: &LoadedTest, plan: &Plan) -> Vec<Diagnostic> {
    let numbers = &loaded.numbers;
    let mut kinds = BTreeMap::new();
    collect(&plan.scenario.steps, &mut kinds);
    collect(&plan.scenario.on_failure, &mut kinds);
    if plan.poll.is_some() {
        // A poll's request is mocked and expected as the step `trigger`.
        kinds.insert("trigger".to_owned(), "http");
    }
    let mut out = Vec::new();
    let unknown = |id: &str, path: &str, out: &mut Vec<Diagnostic>| {
        let hint = did_you_mean(id, kinds.keys().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        out.push(loaded.diagnostic(path, format!("`{}` has no step `{id}`{hint}", plan.name)));
    };
    let of_kind =
        |id: &str, path: &str, wanted: &str, what: &str, out: &mut Vec<Diagnostic>| match kinds
            .get(id)
        {
            None => unknown(id, path, out),
            Some(kind) if *kind != wanted => out.push(loaded.diagnostic(
                path,
                format!("step `{id}` is `{kind}`, not `{wanted}`: {what}"),
            )),
            Some(_) => {}
        };
    for declared in &plan.env {
        if declared.default.is_none() && !loaded.test.env.contains_key(&declared.name) {
            out.push(loaded.diagnostic(
                "env",
                format!(
                    "the scenario reads `{}`: give it a test value in `env`",
                    declared.name
                ),
            ));
        }
    }
    for name in loaded.test.env.keys() {
        if !plan.env.iter().any(|d| d.name == *name) {
            out.push(loaded.diagnostic(
                &format!("env.{name}"),
                format!("`{}` does not declare `{name}` in its `env`", plan.name),
            ));
        }
    }
    for (case, i) in loaded.test.cases.iter().zip(numbers) {
        let base = format!("cases[{i}]");
        if case.poll.is_some() && plan.poll.is_none() {
            out.push(loaded.diagnostic(
                &format!("{base}.poll"),
                format!("`{}` has no poll trigger to test", plan.name),
            ));
        }
        if case.expect.items.is_some() && case.poll.is_none() {
            out.push(loaded.diagnostic(
                &format!("{base}.expect.items"),
                "`items` are what a poll turned into executions: the case needs `poll:`",
            ));
        }
        for key in case.mocks.keys() {
            // `lookup#1`: the answer of one iteration of a loop.
            let id = key.split('#').next().unwrap_or(key);
            of_kind(
                id,
                &format!("{base}.mocks.{key}"),
                "http",
                "a mock answers an http step (a stale mock?)",
                &mut out,
            );
        }
        for id in case.approvals.keys() {
            of_kind(
                id,
                &format!("{base}.approvals.{id}"),
                "approval",
                "only approval steps are decided",
                &mut out,
            );
        }
        for id in case.expect.requests.keys() {
            of_kind(
                id,
                &format!("{base}.expect.requests.{id}"),
                "http",
                "only http steps send requests",
                &mut out,
            );
        }
        for (j, id) in case.expect.not_called.iter().enumerate() {
            of_kind(
                id,
                &format!("{base}.expect.not_called[{j}]"),
                "http",
                "only http steps send requests",
                &mut out,
            );
        }
        for id in case.expect.outputs.keys() {
            if !kinds.contains_key(id) {
                unknown(id, &format!("{base}.expect.outputs.{id}"), &mut out);
            }
        }
        for (j, id) in case.expect.steps.iter().flatten().enumerate() {
            if !kinds.contains_key(id) {
                unknown(id, &format!("{base}.expect.steps[{j}]"), &mut out);
            }
        }
        for (j, event) in case.events.iter().enumerate() {
            if !crate::plan::is_event_name(&event.event) {
                out.push(loaded.diagnostic(
                    &format!("{base}.events[{j}].event"),
                    format!(
                        "`{}` is not an event name: lowercase letters, digits, `_`, `.` and `-`",
                        event.event
                    ),
                ));
            }
        }
        for name in case.vars.keys().chain(loaded.test.vars.keys()) {
            if !plan.vars.contains_key(name) {
                let path = if case.vars.contains_key(name) {
                    format!("{base}.vars.{name}")
                } else {
                    format!("vars.{name}")
                };
                out.push(
                    loaded.diagnostic(&path, format!("`{}` declares no var `{name}`", plan.name)),
                );
            }
        }
    }
    out.sort_by_key(|d| d.position);
    out.dedup_by(|a, b| a.path == b.path && a.message == b.message);
    out
}
