//! Hostile or broken inputs: a clear message and a non-zero exit, never a panic.

use crate::util::{scenario_file, Scenarist};

const SIMPLE: &str = "name: s\nsteps:\n  - id: a\n    set: { n: \"{{ trigger.body }}\" }\n";

fn assert_no_panic(out: &crate::util::Output) {
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_yaml_alias_bomb_is_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("name: bomb\nsteps: [ { id: a, set: { x: *a11 } } ]\n");
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "bomb.yaml", &text);
    let out = Scenarist::new()
        .args(["validate"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert_no_panic(&out);
    assert!(out.stderr.contains("alias"), "{}", out.stderr);
}

#[tokio::test]
async fn a_10_mb_input_is_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", SIMPLE);
    let big = format!("{{\"blob\": \"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let input = dir.path().join("big.json");
    std::fs::write(&input, &big).unwrap();
    for source in [input.display().to_string(), "-".to_owned()] {
        let mut cmd = Scenarist::new()
            .args(["run", "--input", &source])
            .arg_path(&file);
        if source == "-" {
            cmd = cmd.stdin(big.clone());
        }
        let out = cmd.run().await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert_no_panic(&out);
        assert!(out.stderr.contains("larger than 5 MiB"), "{}", out.stderr);
    }
}

#[tokio::test]
async fn deeply_nested_json_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", SIMPLE);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let out = Scenarist::new()
        .args(["run", "--input", "-"])
        .arg_path(&file)
        .stdin(deep)
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert_no_panic(&out);
    assert!(
        out.stderr.contains("recursion limit exceeded"),
        "{}",
        out.stderr
    );
}

/// 200 KB of brackets: refused in linear time (it took 49 s when the YAML
/// parser was left to find out), at the bracket that goes one level too deep.
#[tokio::test]
async fn deeply_nested_yaml_scenario_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: s\nsteps:\n  - id: a\n    set: {{ x: {}{} }}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let file = scenario_file(&dir, "deep.yaml", &text);
    let started = std::time::Instant::now();
    let out = Scenarist::new()
        .args(["validate"])
        .arg_path(&file)
        .run()
        .await;
    // Generous: a debug build on a busy machine; the release build takes milliseconds.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.code, 1);
    assert_no_panic(&out);
    assert!(
        out.stderr
            .contains("deep.yaml:4:142: the YAML nests too deeply (more than 128 levels)"),
        "{}",
        out.stderr
    );
    let test_file = scenario_file(
        &dir,
        "deep.test.yaml",
        &text.replace("name: s", "cases: []"),
    );
    let out = Scenarist::new()
        .args(["test"])
        .arg_path(&test_file)
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("nests too deeply"), "{}", out.stderr);
}

#[tokio::test]
async fn binary_garbage_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = scenario_file(&dir, "s.yaml", SIMPLE);
    let garbage: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    let out = Scenarist::new()
        .args(["run", "--input", "-"])
        .arg_path(&file)
        .stdin(garbage)
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert_no_panic(&out);
    assert!(out.stderr.contains("not UTF-8"), "{}", out.stderr);
    let out = Scenarist::new()
        .args(["run", "--input", "-"])
        .arg_path(&file)
        .stdin("{\"a\": ")
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not a valid JSON or YAML document"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_oversized_scenario_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: s\ndescription: \"{}\"\nsteps: [ {{ id: a, set: {{ x: 1 }} }} ]\n",
        "x".repeat(2 * 1024 * 1024)
    );
    let file = scenario_file(&dir, "big.yaml", &text);
    let out = Scenarist::new()
        .args(["validate"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("scenario files are limited to 1048576 bytes"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn absurd_periods_are_clear_errors_not_panics() {
    for args in [
        vec!["report", "--since", "100000000d"],
        vec!["executions", "list", "--since", "100000000d"],
        vec!["prune", "--older-than", "100000000d"],
        vec!["report", "--since", "3x"],
    ] {
        let out = Scenarist::new().args(&args).run().await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("error:"), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test]
async fn a_password_in_the_store_url_appears_neither_in_help_nor_in_errors() {
    let url = "postgres://ops:hunter22-secret@127.0.0.1:1/scenarist";
    for args in [
        vec!["waits", "--help"],
        vec!["waits"],
        vec!["executions", "list"],
    ] {
        let out = Scenarist::new()
            .env("SCENARIST_STORE", url)
            .args(args.clone())
            .run()
            .await;
        assert!(
            !out.stdout.contains("hunter22") && !out.stderr.contains("hunter22"),
            "{args:?}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    let refused = Scenarist::new()
        .args(["emit", "deal.won", "lee", "--store", url])
        .run()
        .await;
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("ops:***@127.0.0.1:1"),
        "{}",
        refused.stderr
    );
}

/// An endless file is refused after reading just past the limit, never held
/// in memory (it was read whole, then killed by the OOM killer).
#[tokio::test]
async fn an_endless_file_is_refused_without_reading_it_all() {
    let started = std::time::Instant::now();
    let out = Scenarist::new().args(["validate", "/dev/zero"]).run().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_no_panic(&out);
    assert!(
        out.stderr.contains("/dev/zero: the file is more than 1048576 bytes; scenario files are limited to 1048576 bytes"),
        "{}",
        out.stderr
    );
}
