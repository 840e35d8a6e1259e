//! `scenarist demo` as a test of the whole: the stand-ins, the daemon and the
//! example scenarios together, and the report's exact counts afterwards.

use serde_json::json;

use crate::util::Scenarist;

#[tokio::test]
async fn the_demo_issues_each_reward_once_and_the_report_counts_exactly() {
    // From a folder that is not the project's: the examples are built in.
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("demo.db").display());
    let out = Scenarist::new()
        .in_dir(dir.path())
        .args(["demo", "--store", &store])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(dir
        .path()
        .join(".scenarist/demo-scenarios/qualify-closed-won.yaml")
        .is_file());
    for line in [
        "Eve double-clicks -> 200 duplicate=true",
        "sends Pat's user.join webhook a second time",
        "olivia approves",
        "sam rejects",
        "-> filtered (the referral is already qualified)",
        "4 participants enrolled, 8 referred, 5 qualified, 5 rewards issued, 0 issued twice",
        "⏸ rosa@umbrella.example    deal.closed_won until",
        "⏸ sid@hooli.example        deal.closed_won until",
        "Reward of 1500 EUR to ben@contoso.example for rosa@umbrella.example (deal D-R1, 15000 EUR)",
        "chat: Referral of sid@hooli.example did not qualify",
        "✓ referral-journey     succeeded  ×2",
        "stopped by filter `converted`",
        "scenarist approvals --store",
    ] {
        assert!(
            out.stdout.contains(line),
            "missing `{line}` in:\n{}",
            out.stdout
        );
    }

    // Secrets stay out of the output and out of the stored history.
    let mut kept = Vec::new();
    for file in ["demo.db", "demo.db-wal"] {
        kept.extend(std::fs::read(dir.path().join(file)).unwrap_or_default());
    }
    for secret in [
        scenarist::standins::REFERRAL_TOKEN,
        scenarist::standins::CRM_TOKEN,
        scenarist::standins::CHAT_HOOK,
    ] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
        assert!(
            !kept.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "`{secret}` is in the store"
        );
    }

    let report = Scenarist::new()
        .env("SCENARIST_STORE", store.clone())
        .args(["report", "--format", "json"])
        .run()
        .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let totals = report.json()["totals"].clone();
    assert_eq!(totals["enrolments"], 4);
    assert_eq!(totals["referred"], 8);
    assert_eq!(totals["qualified"], 5);
    assert_eq!(totals["qualification_rate"], 0.625);
    assert_eq!(totals["rewards_issued"], 5);
    // 10% of Lee's 4,000 and Noah's 25,000 deals, Pat's fixed 50, and the
    // journeys' 10% of Quinn's 3,000 and Rosa's 15,000.
    assert_eq!(totals["rewards_value"], 4750.0);
    assert_eq!(totals["waiting_for_review"], 0);
    assert_eq!(totals["failed"], 0);
    assert_eq!(totals["incomplete"], 0);

    // One scenario's share: the deal milestone qualified Lee and Noah.
    let deals = Scenarist::new()
        .env("SCENARIST_STORE", store.clone())
        .args([
            "report",
            "--scenario",
            "qualify-closed-won",
            "--format",
            "json",
        ])
        .run()
        .await;
    let totals = deals.json()["totals"].clone();
    assert_eq!(totals["enrolments"], 0);
    assert_eq!(totals["qualified"], 2);
    assert_eq!(totals["rewards_value"], 2900.0);

    // The journeys: Quinn's took the early event, Rosa's waited, Sid's timed out.
    let journeys = Scenarist::new()
        .env("SCENARIST_STORE", store.clone())
        .args([
            "report",
            "--scenario",
            "referral-journey",
            "--format",
            "json",
        ])
        .run()
        .await;
    assert_eq!(journeys.json()["totals"]["qualified"], 2);
    let waits = Scenarist::new()
        .env("SCENARIST_STORE", store.clone())
        .args(["waits", "--output", "json"])
        .run()
        .await;
    assert_eq!(waits.json(), json!([]), "no wait is left over");
    let events = Scenarist::new()
        .env("SCENARIST_STORE", store.clone())
        .args(["events", "--event", "deal.closed_won", "--output", "json"])
        .run()
        .await
        .json();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events
        .iter()
        .all(|e| e["resumed"].as_array().unwrap().len() <= 1));

    let rejected = Scenarist::new()
        .env("SCENARIST_STORE", store.clone())
        .args([
            "executions",
            "list",
            "--status",
            "rejected",
            "--output",
            "json",
        ])
        .run()
        .await;
    let rows = rejected.json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["scenario"], json!("qualify-closed-won"));
    assert!(rows[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("rejected by sam"));

    let chart = dir.path().join("report.svg");
    let charted = Scenarist::new()
        .env("SCENARIST_STORE", store)
        .args([
            "report",
            "--chart",
            chart.to_str().unwrap(),
            "--format",
            "csv",
        ])
        .run()
        .await;
    assert_eq!(charted.code, 0, "{}", charted.stderr);
    assert!(charted
        .stdout
        .starts_with("week_start,enrolments,referred,qualified,rewards_issued,rewards_value"));
    let svg = std::fs::read_to_string(chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
}

#[tokio::test]
async fn the_demo_gives_the_same_report_on_postgresql() {
    let Some(schema) = crate::pg::Schema::new("demo").await else {
        return;
    };
    let out = Scenarist::new()
        .args(["demo", "--store", &schema.url])
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "4 participants enrolled, 8 referred, 5 qualified, 5 rewards issued, 0 issued twice"
        ),
        "{}",
        out.stdout
    );
    let report = Scenarist::new()
        .env("SCENARIST_STORE", schema.url.clone())
        .args(["report", "--format", "json"])
        .run()
        .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let totals = report.json()["totals"].clone();
    assert_eq!(totals["referred"], 8);
    assert_eq!(totals["qualified"], 5);
    assert_eq!(totals["rewards_value"], 4750.0);
    // A second demo on the same schema is refused rather than mixed in.
    let again = Scenarist::new()
        .args(["demo", "--store", &schema.url])
        .run()
        .await;
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("already holds executions"),
        "{}",
        again.stderr
    );
    schema.drop().await;
}

#[tokio::test]
async fn the_demo_plays_another_folder_only_if_it_is_one() {
    let out = Scenarist::new()
        .args(["demo", "--dir", "no-such-folder", "--store", "memory"])
        .run()
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no-such-folder is not a folder of scenarios"),
        "{}",
        out.stderr
    );
}
