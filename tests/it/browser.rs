//! The dashboard in a real headless Chromium, driven over WebDriver
//! (Debian's `chromium` and `chromedriver`): search by a lead's email and
//! open its execution, approve a review by clicking and watch the page turn
//! `succeeded` by itself, bulk-retry two incomplete executions.
//!
//! On a machine without Chromium these tests say so in one line and pass;
//! `.ci/run` sets `SCENARIST_REQUIRE_BROWSER=1`, which makes that a failure.
//! A failing test leaves a screenshot in `target/tmp/browser/`.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{json, Value};

use crate::daemon_util::eventually;
use crate::dashboard_util::{start, Dashboard};

const REQUIRE: &str = "SCENARIST_REQUIRE_BROWSER";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// A WebDriver session on a headless Chromium of its own (fresh profile),
/// and the chromedriver process behind it (ended when dropped).
pub(crate) struct Browser {
    pub client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

pub(crate) async fn browser() -> Option<Browser> {
    let (Some(chromium), Some(driver)) = (
        find_program(&["chromium", "chromium-browser"]),
        find_program(&["chromedriver"]),
    ) else {
        assert!(
            std::env::var_os(REQUIRE).is_none(),
            "{REQUIRE} is set but chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipping the browser tests: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let driver = tokio::process::Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let up = eventually(20, || async {
        reqwest::get(format!("{url}/status"))
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "chromedriver answers on {url}");
    let profile = tempfile::tempdir().unwrap();
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--window-size=1280,1000".to_owned(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": chromium, "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a WebDriver session on headless Chromium");
    Some(Browser {
        client,
        _driver: driver,
        _profile: profile,
    })
}

/// Runs `test` in the browser; on failure saves a screenshot of the page
/// under `target/tmp/browser/NAME.png`, then fails with the test's message.
async fn in_browser<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Client, Dashboard) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(browser) = browser().await else {
        return;
    };
    let ui = start(vec![]).await;
    let client = browser.client.clone();
    let outcome = AssertUnwindSafe(test(browser.client.clone(), ui))
        .catch_unwind()
        .await;
    if let Err(panic) = outcome {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        let _ = std::fs::create_dir_all(&dir);
        let shot = dir.join(format!("{name}.png"));
        match client.screenshot().await {
            Ok(png) => {
                let _ = std::fs::write(&shot, png);
                eprintln!("screenshot of the failing page: {}", shot.display());
            }
            Err(e) => eprintln!("no screenshot: {e}"),
        }
        let _ = client.close().await;
        std::panic::resume_unwind(panic);
    }
    let _ = client.close().await;
}

/// The rows of the executions table at `url`.
async fn execution_rows(client: &Client, url: &str) -> Vec<fantoccini::elements::Element> {
    client.goto(url).await.unwrap();
    client
        .find_all(Locator::Css("table.executions tbody tr[data-id]"))
        .await
        .unwrap()
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` to click: {e}"))
        .click()
        .await
        .unwrap();
}

async fn type_into(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` to type into: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// The text of the first `css` element, waiting for it to appear. A live
/// update may replace the element between finding and reading it: then it
/// is found again.
async fn text(client: &Client, css: &str) -> String {
    for _ in 0..50 {
        let element = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"));
        match element.text().await {
            Ok(text) => return text,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("`{css}` kept being replaced while read");
}

#[tokio::test]
async fn search_by_a_leads_email_open_the_execution_and_see_its_steps() {
    in_browser("search", |client, ui| async move {
        for (email, amount) in [("lee@bigco.example", 400), ("kim@other.example", 300)] {
            let id = ui
                .send("deals/won", json!({ "email": email, "amount": amount }))
                .await;
            ui.until_status(&id, "succeeded").await;
        }
        client.goto(&ui.url("/ui/executions")).await.unwrap();
        type_into(&client, "input[name=key]", "lee@bigco.example").await;
        click(&client, "form.filters button").await;
        let searched = eventually(10, || async {
            client
                .current_url()
                .await
                .is_ok_and(|u| u.as_str().contains("key=lee%40bigco.example"))
        })
        .await;
        assert!(searched, "the search is in the URL");
        let rows = client
            .find_all(Locator::Css("table.executions tbody tr[data-id]"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "one execution for the lead");
        let row = rows[0].text().await.unwrap();
        assert!(
            row.contains("lead: lee@bigco.example") && row.contains("succeeded"),
            "{row}"
        );
        rows[0]
            .find(Locator::Css("a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let heading = text(&client, "h1").await;
        assert!(heading.starts_with("Execution"), "{heading}");
        let steps = client
            .find_all(Locator::Css(".timeline li.step"))
            .await
            .unwrap();
        let mut names = Vec::new();
        for step in &steps {
            names.push(
                step.find(Locator::Css(".name"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            names,
            ["amount", "review", "issue", "issued"],
            "the steps in order"
        );
        assert_eq!(text(&client, "#status").await, "succeeded");
    })
    .await;
}

#[tokio::test]
async fn approve_a_waiting_review_by_clicking_and_the_page_turns_succeeded_by_itself() {
    in_browser("approve", |client, ui| async move {
        let id = ui
            .send(
                "deals/won",
                json!({ "email": "ann@bigco.example", "amount": 4000 }),
            )
            .await;
        ui.until_status(&id, "waiting").await;
        client.goto(&ui.url("/ui/approvals")).await.unwrap();
        let card = text(&client, "section.review").await;
        assert!(card.contains("Reward for ann@bigco.example"), "{card}");
        client
            .goto(&ui.url(&format!("/ui/executions/{id}")))
            .await
            .unwrap();
        assert_eq!(text(&client, "#status").await, "waiting");
        type_into(&client, "section.review input[name=by]", "olivia").await;
        type_into(
            &client,
            "section.review input[name=comment]",
            "checked the deal",
        )
        .await;
        // The page keeps polling while it waits; what was typed stays.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let typed = client
            .find(Locator::Css("section.review input[name=by]"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(
            typed.as_deref(),
            Some("olivia"),
            "typing survives the live updates"
        );
        click(&client, "section.review button.approve").await;
        // The decision lands back on the execution's page, which then
        // follows the execution without being reloaded.
        let flash = text(&client, ".flash.ok").await;
        assert!(flash.contains("Decision kept"), "{flash}");
        client
            .execute("window.__not_reloaded = true;", vec![])
            .await
            .unwrap();
        let mut status = String::new();
        for _ in 0..100 {
            status = text(&client, "#status").await;
            if status == "succeeded" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(status, "succeeded", "the page updated itself");
        let kept = client
            .execute("return window.__not_reloaded === true;", vec![])
            .await
            .unwrap();
        assert_eq!(kept, Value::Bool(true), "updated in place, not reloaded");
        let body = text(&client, ".timeline").await;
        assert!(body.contains("review") && body.contains("issue"), "{body}");
        assert_eq!(ui.status(&id).await, "succeeded");
    })
    .await;
}

#[tokio::test]
async fn bulk_retry_two_incomplete_executions_from_the_list() {
    in_browser("bulk-retry", |client, ui| async move {
        let mut ids = Vec::new();
        for n in 0..2 {
            ids.push(
                ui.send(
                    "flaky/go",
                    json!({ "n": n, "email": "batch@bigco.example" }),
                )
                .await,
            );
        }
        for id in &ids {
            ui.until_status(id, "incomplete").await;
        }
        ui.heal().await;
        let rows = execution_rows(&client, &ui.url("/ui/executions?status=incomplete")).await;
        assert_eq!(rows.len(), 2);
        click(&client, "form[action='/ui/executions/retry'] button").await;
        let heading = text(&client, "main p").await;
        assert!(
            heading.contains("2 of 2 incomplete executions"),
            "{heading}"
        );
        let results = text(&client, "main table").await;
        assert_eq!(
            results
                .matches("retrying from the step that stopped it")
                .count(),
            2,
            "{results}"
        );
        for id in &ids {
            ui.until_status(id, "succeeded").await;
        }
        let rows = execution_rows(
            &client,
            &ui.url("/ui/executions?scenario=flaky&status=succeeded"),
        )
        .await;
        assert_eq!(rows.len(), 2, "both succeeded");
    })
    .await;
}
