//! `scenarist test`: scenario tests with mocked HTTP and virtual time,
//! through the binary: passing and failing files, positions and messages,
//! invalid and stale test files, retries, approvals, events in virtual
//! time, JUnit output.

use crate::util::Scenarist;

fn test(args: &[&str]) -> Scenarist {
    Scenarist::new().args([&["test"], args].concat())
}

#[tokio::test]
async fn a_passing_file_exits_0_and_lists_each_case() {
    let out = test(&["tests/fixtures/tests/passing.test.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for case in [
        "✓ qualified once (",
        "✓ a 503 then a 200 is two requests (",
        "✓ a timeout then a connection error then a 200 (",
        "✓ approved by olivia (",
        "✓ nobody answers within 72 hours (",
        "✓ failures alert the ops channel (",
    ] {
        assert!(out.stdout.contains(case), "{case}:\n{}", out.stdout);
    }
    assert!(
        out.stdout.ends_with("6 cases: 6 passed, 0 failed\n"),
        "{}",
        out.stdout
    );
}

/// A case whose fields each have a problem: every one is reported, not
/// only the first that serde met.
#[tokio::test]
async fn each_field_of_a_case_is_checked_on_its_own() {
    let out = test(&["tests/fixtures/tests/two-problems.test.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let located = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("tests/fixtures/tests/two-problems.test.yaml:"))
        .count();
    assert_eq!(located, 2, "{}", out.stderr);
    insta::assert_snapshot!("case_with_two_problems", out.stderr);
}

#[tokio::test]
async fn every_failing_expectation_says_where_what_was_expected_and_what_came() {
    let out = test(&["tests/fixtures/tests/failing.test.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!("failing_expectations", out.stdout);
}

#[tokio::test]
async fn a_request_without_a_mock_fails_its_case_and_names_the_request() {
    let out = test(&[
        "tests/fixtures/tests/failing.test.yaml",
        "--filter",
        "without a mock",
    ])
    .run()
    .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "step `qualify` sent PUT http://api.test/qualification and there is no mock for it"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("1 case: 0 passed, 1 failed\n"),
        "only the filtered case ran: {}",
        out.stdout
    );
}

#[tokio::test]
async fn an_invalid_test_file_reports_every_problem_with_its_position() {
    let out = test(&["tests/fixtures/tests/invalid.test.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.is_empty(), "nothing runs: {}", out.stdout);
    insta::assert_snapshot!("invalid_test_file", out.stderr);
}

#[tokio::test]
async fn a_mock_of_a_step_that_is_gone_is_caught() {
    let out = test(&["tests/fixtures/tests/stale.test.yaml"]).run().await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("tests/fixtures/tests/stale.test.yaml:6:14: cases[0].mocks.find_user: `deal` has no step `find_user`; did you mean `find`?"), "{}", out.stderr);
}

#[tokio::test]
async fn events_arrive_in_virtual_time_and_a_90_day_wait_times_out_at_once() {
    let started = std::time::Instant::now();
    let out = test(&["tests/fixtures/tests/journey.test.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.ends_with("3 cases: 3 passed, 0 failed\n"),
        "{}",
        out.stdout
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "virtual time, not real time"
    );
}

#[tokio::test]
async fn junit_output_is_xml_a_ci_system_reads() {
    let out = test(&[
        "tests/fixtures/tests/failing.test.yaml",
        "tests/fixtures/tests/passing.test.yaml",
        "--format",
        "junit",
    ])
    .run()
    .await;
    assert_eq!(out.code, 1);
    let doc = roxmltree::Document::parse(&out.stdout).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("8"));
    assert_eq!(root.attribute("failures"), Some("2"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 2);
    let message = failures[0].attribute("message").unwrap();
    assert!(
        message.starts_with("tests/fixtures/tests/failing.test.yaml:10:15: cases[0].expect.status"),
        "{message}"
    );
    let json = test(&["tests/fixtures/tests/passing.test.yaml", "--format", "json"])
        .run()
        .await;
    assert_eq!(json.json()["passed"], 6);
}

#[tokio::test]
async fn the_example_scenarios_pass_their_tests() {
    let out = test(&[]).run().await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("scenarios/qualify-closed-won.test.yaml"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(" 0 failed\n"), "{}", out.stdout);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let out = test(&["tests/fixtures/tests/nothing-here.test.yaml"])
        .run()
        .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("no such file or folder"),
        "{}",
        out.stderr
    );
    let out = test(&["tests/fixtures/invalid"]).run().await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no test files"), "{}", out.stderr);
}

/// Runs `deal.yaml` for real against a local API whose base URL is
/// `base_path` under its address, records the execution as a test case,
/// checks that the case passes under the test's own base URL, and returns
/// the recorded file.
async fn record_and_run_the_case(base_path: &str) -> String {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{base_path}/users/lee%40bigco.example")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "id": 7 })))
        .mount(&api)
        .await;
    Mock::given(method("PUT"))
        .and(path(format!("{base_path}/qualification")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "ok": true })))
        .mount(&api)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("deal.yaml");
    std::fs::copy("tests/fixtures/tests/deal.yaml", &scenario).unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let input = r#"{"stage":"closed_won","email":"lee@bigco.example","amount":4000}"#;
    let run = Scenarist::new()
        .arg_path(std::path::Path::new("run"))
        .arg_path(&scenario)
        .args(["--input", "-", "--store", &store, "--output", "json"])
        .env("API", format!("{}{base_path}", api.uri()))
        .env("TOKEN", "s3cret-token-for-prod")
        .stdin(input)
        .run()
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = run.json()["execution_id"].as_str().unwrap().to_owned();
    let recorded = test(&["--record", &id, "--store", &store]).run().await;
    assert_eq!(recorded.code, 0, "{}", recorded.stderr);
    let file = dir.path().join("deal.test.yaml");
    std::fs::write(&file, &recorded.stdout).unwrap();
    let replayed = Scenarist::new()
        .arg_path(std::path::Path::new("test"))
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(
        replayed.code, 0,
        "{}\n{}\n{}",
        replayed.stdout, replayed.stderr, recorded.stdout
    );
    assert!(replayed.stdout.ends_with("1 case: 1 passed, 0 failed\n"));
    recorded.stdout
}

/// An execution kept in a store (here: `scenarist run` against a real local
/// API) becomes a test case that passes as recorded.
#[tokio::test]
async fn a_recorded_execution_becomes_a_case_that_passes() {
    let recorded = record_and_run_the_case("").await;
    assert!(
        !recorded.contains("s3cret-token-for-prod"),
        "secrets stay out"
    );
    for wanted in [
        "scenario: deal.yaml",
        "mocks:",
        "find:",
        "status: succeeded",
        "reward_issued",
    ] {
        assert!(recorded.contains(wanted), "{wanted}:\n{recorded}");
    }
}

/// Most real APIs have a path in their base URL (`/api/v2`): the recorded
/// case expects the address after the base, so it passes under the test's
/// own base URL.
#[tokio::test]
async fn a_case_recorded_against_a_base_url_with_a_path_passes() {
    let recorded = record_and_run_the_case("/ref/v2").await;
    assert!(
        recorded.contains("url: /qualification\n"),
        "the address after the base:\n{recorded}"
    );
}

/// In a concurrent `for_each`, `lookup#1` answers the second iteration and
/// the step's own mock the others, whatever order they run in.
#[tokio::test]
async fn loop_iterations_take_their_own_answers_whatever_their_order() {
    for _ in 0..3 {
        let out = test(&["tests/fixtures/tests/fanout.test.yaml"]).run().await;
        assert_eq!(out.code, 0, "{}", out.stdout);
    }
}
