//! `scenarist validate`: messages with file:line:col and field paths, exit codes.

use crate::util::{fixture, root, scenario_file, Scenarist};

/// Every invalid fixture: exit 1 and the rendered messages, snapshotted.
#[tokio::test]
async fn every_invalid_fixture_has_a_located_message() {
    let mut names: Vec<String> = std::fs::read_dir(fixture("invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 15, "at least 15 distinct bad files");
    for name in names {
        let relative = format!("tests/fixtures/invalid/{name}");
        let out = Scenarist::new().args(["validate", &relative]).run().await;
        assert_eq!(out.code, 1, "{name}: exit code\n{}", out.stderr);
        assert!(
            !out.stderr.contains("panicked"),
            "{name} panicked:\n{}",
            out.stderr
        );
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&relative),
            "{name}: starts with the file: {first}"
        );
        insta::assert_snapshot!(name.trim_end_matches(".yaml").to_owned(), out.stderr);
    }
}

/// Sections that do not deserialize (name, trigger) do not hide the
/// problems of the steps that do: six problems, six positioned reports.
#[tokio::test]
async fn unreadable_sections_do_not_hide_the_problems_of_the_steps() {
    let file = "tests/fixtures/invalid/sections-and-steps.yaml";
    let out = Scenarist::new().args(["validate", file]).run().await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let located: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{file}:")))
        .collect();
    assert_eq!(located.len(), 6, "{}", out.stderr);
    for (wanted, line) in [
        ("name:", 3),
        ("trigger.webhook.method:", 5),
        ("steps[0].set.email:", 8),
        ("steps[1].id:", 9),
        ("steps[2].set.user:", 12),
        ("steps[3].filter", 14),
    ] {
        assert!(
            located
                .iter()
                .any(|l| l.starts_with(&format!("{file}:{line}:")) && l.contains(wanted)),
            "{wanted} at line {line}:\n{}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn the_example_scenarios_are_valid() {
    let out = Scenarist::new().args(["validate"]).run().await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("9 scenarios valid"), "{}", out.stderr);
}

#[tokio::test]
async fn a_webhook_path_used_twice_in_a_directory_is_an_error() {
    let out = Scenarist::new()
        .args(["validate", "tests/fixtures/duplicate-webhooks"])
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("tests/fixtures/duplicate-webhooks/b.yaml:2:29: trigger.webhook.path: webhook POST /hooks/crm/deal-updated is already served by tests/fixtures/duplicate-webhooks/a.yaml"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn all_problems_of_a_file_are_reported_at_once() {
    let out = Scenarist::new()
        .args(["validate", "tests/fixtures/invalid/many-problems.yaml"])
        .run()
        .await;
    let located: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("tests/fixtures/invalid/many-problems.yaml:"))
        .collect();
    // timezone, env, duplicate id, regex, attempts, unknown step, bad id (found by the loader first)
    assert!(located.len() >= 2, "{}", out.stderr);
    let out = Scenarist::new()
        .args([
            "validate",
            "tests/fixtures/invalid/undeclared-env.yaml",
            "tests/fixtures/invalid/bad-regex.yaml",
            "scenarios",
        ])
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("2 problems in 2 files; 9 scenarios valid"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn semantic_problems_are_all_reported_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(
        &dir,
        "s.yaml",
        "name: s\nenv: [TOKEN]\ntrigger:\n  schedule: { every: 15m, timezone: Mars/Olympus }\nsteps:\n  - id: a\n    set: { x: \"{{ env.TOKN }}\", y: \"{{ steps.zz.x }}\" }\n  - id: b\n    filter: { value: \"{{ vars.nope }}\", matches: \"(\" }\n",
    );
    let out = Scenarist::new()
        .args(["validate"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 1);
    let shown = out.stderr.replace(&format!("{}", file.display()), "s.yaml");
    let lines: Vec<&str> = shown.lines().filter(|l| l.starts_with("s.yaml:")).collect();
    assert_eq!(
        lines,
        vec![
            "s.yaml:4:37: trigger.schedule.timezone: unknown time zone `Mars/Olympus` (use an IANA name such as Europe/Paris)",
            "s.yaml:7:15: steps[0].set.x: `env.TOKN` is not declared: add `TOKN` to `env` at the top of the scenario",
            "s.yaml:7:36: steps[0].set.y: unknown step `zz` in `steps.zz`",
            "s.yaml:9:22: steps[1].filter.value: `vars.nope` is not declared in `vars`",
            "s.yaml:9:50: steps[1].filter.matches: invalid regular expression: regex parse error: ( ^ error: unclosed group",
        ],
        "{shown}"
    );
}

#[tokio::test]
async fn a_missing_path_and_binary_garbage_are_clear_errors() {
    let out = Scenarist::new()
        .args(["validate", "no/such/dir"])
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("no/such/dir: no such file or directory"),
        "{}",
        out.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let file = dir.path().join("garbage.yaml");
    std::fs::write(&file, garbage).unwrap();
    let out = Scenarist::new()
        .args(["validate"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not UTF-8 text"), "{}", out.stderr);
}

#[tokio::test]
async fn the_committed_schema_is_current() {
    let out = Scenarist::new().args(["schema"]).run().await;
    assert_eq!(out.code, 0);
    let committed =
        std::fs::read_to_string(root().join("schemas/scenario.schema.json")).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "schemas/scenario.schema.json is stale: run `cargo run -- schema > schemas/scenario.schema.json`"
    );
    let out = Scenarist::new().args(["schema", "--tests"]).run().await;
    assert_eq!(out.code, 0);
    let committed = std::fs::read_to_string(root().join("schemas/scenario-test.schema.json"))
        .unwrap_or_default();
    assert!(
        committed == out.stdout,
        "schemas/scenario-test.schema.json is stale: run `cargo run -- schema --tests > schemas/scenario-test.schema.json`"
    );
    let out = Scenarist::new().args(["schema", "--app"]).run().await;
    assert_eq!(out.code, 0);
    let committed =
        std::fs::read_to_string(root().join("schemas/app.schema.json")).unwrap_or_default();
    assert!(
        committed == out.stdout,
        "schemas/app.schema.json is stale: run `cargo run -- schema --app > schemas/app.schema.json`"
    );
}

#[tokio::test]
async fn every_example_starts_with_the_schema_comment() {
    for entry in std::fs::read_dir(root().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let schema = match scenarist::catalog::is_test_file(&path) {
            true => "scenario-test.schema.json",
            false => "scenario.schema.json",
        };
        assert!(
            text.starts_with(&format!(
                "# yaml-language-server: $schema=../schemas/{schema}"
            )),
            "{}",
            path.display()
        );
    }
}

#[tokio::test]
async fn list_shows_one_line_per_scenario() {
    let out = Scenarist::new().args(["list"]).run().await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{}", out.stdout);
    assert!(lines[0].starts_with("NAME"));
    assert!(out.stdout.contains("qualify-closed-won"));
    assert!(out.stdout.contains("webhook POST /hooks/crm/deal-updated"));
    assert!(
        out.stdout.contains("poll GET /v1/payments every 15m"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let out = Scenarist::new().args(["run"]).run().await;
    assert_eq!(out.code, 2);
    let out = Scenarist::new().args(["frobnicate"]).run().await;
    assert_eq!(out.code, 2);
    let out = Scenarist::new()
        .args(["run", "tests/fixtures/invalid/bad-regex.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 2, "an invalid scenario does not run");
    assert!(
        out.stderr.contains("the scenario is invalid; nothing ran"),
        "{}",
        out.stderr
    );
}
