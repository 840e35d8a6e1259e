//! The dashboard's pages and actions over HTTP, against the real daemon:
//! status codes, masked secrets, filters in the URL, keyset pages, CSRF,
//! login, decisions, retries and replays.

use serde_json::{json, Value};

use crate::dashboard_util::{start, SECRET};
use crate::util::Scenarist;

/// Most a page may weigh.
const MAX_PAGE: usize = 200 * 1024;

#[tokio::test]
async fn every_page_answers_and_no_page_shows_a_secret() {
    let ui = start(vec![]).await;
    let done = ui.reward("Lee@BigCo.example", 400).await;
    ui.until_status(&done, "succeeded").await;
    let waiting = ui.reward("ann@bigco.example", 4000).await;
    ui.until_status(&waiting, "waiting").await;

    let root = ui.get("/").await;
    assert_eq!((root.status, root.location.as_deref()), (303, Some("/ui")));
    let pages = [
        ("/ui", 200, "reward"),
        ("/ui/scenarios", 200, "Reward the referrer of a won deal."),
        ("/ui/scenarios/reward", 200, "<svg"),
        ("/ui/scenarios/nobody", 404, "No scenario named"),
        ("/ui/executions", 200, &done[28..]),
        (
            "/ui/executions?key=lee%40bigco.example",
            200,
            "lead: lee@bigco.example",
        ),
        (&format!("/ui/executions/{done}"), 200, "issue"),
        (&format!("/ui/executions/{done}/live"), 200, "Steps"),
        (
            &format!("/ui/executions/{waiting}"),
            200,
            "Waiting for a review",
        ),
        (
            "/ui/executions/01234567-89ab-7def-8123-456789abcdef",
            404,
            "No execution",
        ),
        ("/ui/executions/not-an-id", 404, "No execution"),
        ("/ui/approvals", 200, "Reward for ann@bigco.example"),
        ("/ui/waits", 200, "Nothing waits for an event"),
        ("/ui/report", 200, "Rewards issued"),
        (
            "/ui/report?since=2020-01-01&until=2020-02-01",
            200,
            "2020-01-01 00:00:00",
        ),
        ("/ui/report?since=yesterday", 400, "is neither a date"),
        ("/ui/report.csv", 200, "week_start"),
        ("/ui/executions?status=done", 400, "status:"),
        ("/ui/executions?after=garbage", 400, "after:"),
        ("/ui/assets/style.css", 200, ".timeline"),
        ("/ui/assets/live.js", 200, "x-execution-status"),
    ];
    for (path, status, wanted) in pages {
        let page = ui.get(path).await;
        assert_eq!(page.status, status, "{path}:\n{}", page.body);
        assert!(
            page.body.contains(wanted),
            "{path} lacks {wanted:?}:\n{}",
            page.body
        );
        assert!(!page.body.contains(SECRET), "{path} shows the secret");
        assert!(
            page.body.len() < MAX_PAGE,
            "{path} weighs {} bytes",
            page.body.len()
        );
    }
    // The step that sent the secret shows it masked, with its input and output.
    let shown = ui.get(&format!("/ui/executions/{done}")).await.body;
    assert!(shown.contains("Bearer ***"), "{shown}");
    assert!(
        shown.contains("&quot;token_echo&quot;: &quot;***&quot;"),
        "{shown}"
    );
    // A live fragment says the status, and a finished page does not poll.
    let live = ui.get(&format!("/ui/executions/{waiting}")).await.body;
    assert!(live.contains(&format!("data-live=\"/ui/executions/{waiting}/live\"")));
    assert!(
        !shown.contains("data-live"),
        "a finished execution is not polled"
    );
    let csp = ui.http.get(ui.url("/ui")).send().await.unwrap();
    let policy = csp.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
}

/// Page links from the HTML: `rel="next"`.
fn next_link(body: &str) -> Option<String> {
    let at = body.find("rel=\"next\"")?;
    let before = &body[..at];
    let start = before.rfind("href=\"")? + 6;
    Some(
        before[start..before[start..].find('"')? + start]
            .replace("&amp;", "&")
            .replace("&#x3D;", "="),
    )
}

fn row_ids(body: &str) -> Vec<String> {
    body.match_indices("<tr data-id=\"")
        .map(|(at, m)| body[at + m.len()..at + m.len() + 36].to_owned())
        .collect()
}

#[tokio::test]
async fn a_wait_and_a_failure_are_shown_where_people_look_first() {
    let ui = start(vec![]).await;
    let waiting = ui
        .send("trials/started", json!({ "email": "quinn@bigco.example" }))
        .await;
    ui.until_status(&waiting, "waiting").await;
    let waits = ui.get("/ui/waits").await.body;
    assert!(waits.contains(&waiting[28..]), "{waits}");
    for wanted in [
        "journey",
        "milestone",
        "deal.closed_won",
        "quinn@bigco.example",
    ] {
        assert!(waits.contains(wanted), "/ui/waits lacks {wanted}:\n{waits}");
    }
    let page = ui.get(&format!("/ui/executions/{waiting}")).await.body;
    assert!(
        page.contains("Waiting for an event") && page.contains("deal.closed_won"),
        "{page}"
    );
    // The event arrives: the wait leaves the page and the execution goes on.
    let sent = ui
        .http
        .post(ui.url("/api/events"))
        .json(&json!({ "event": "deal.closed_won", "key": "quinn@bigco.example", "data": { "amount": 900 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status().as_u16(), 202);
    ui.until_status(&waiting, "succeeded").await;
    assert!(!ui.get("/ui/waits").await.body.contains(&waiting[28..]));

    // A failure is said first, then the steps, the failed one open and marked.
    let stuck = ui
        .send("flaky/go", json!({ "n": 1, "email": "x@bigco.example" }))
        .await;
    ui.until_status(&stuck, "incomplete").await;
    let page = ui.get(&format!("/ui/executions/{stuck}")).await.body;
    let failure = page.find("id=\"failure\"").expect("a failure card");
    let steps = page.find("<h2>Steps</h2>").unwrap();
    assert!(failure < steps, "the failure comes first");
    assert!(
        page.contains("Failed at <a href=\"#step-call\">call</a>"),
        "{page}"
    );
    assert!(
        page.contains("<li class=\"step failed failed-step\" id=\"step-call\">"),
        "{page}"
    );
    assert!(page.contains("<details open>"), "the failed step is open");
    assert!(page.contains("503"), "its error: {page}");
}

#[tokio::test]
async fn filters_live_in_the_url_and_pages_follow_by_position() {
    let ui = start(vec![]).await;
    let mut lees = Vec::new();
    for n in 0..7 {
        let id = ui.reward("lee@bigco.example", 100 + n).await;
        lees.push(id);
    }
    let other = ui.reward("kim@other.example", 100).await;
    for id in lees.iter().chain([&other]) {
        ui.until_status(id, "succeeded").await;
    }
    lees.reverse();
    // Three at a time by key: the next link carries the filter and the position.
    let mut seen = Vec::new();
    let mut path = Some("/ui/executions?key=lee%40bigco.example&limit=3".to_owned());
    while let Some(p) = path {
        let page = ui.get(&p).await;
        assert_eq!(page.status, 200, "{p}");
        assert!(
            page.body.contains("value=\"lee@bigco.example\""),
            "the filter form keeps the key"
        );
        seen.extend(row_ids(&page.body));
        path = next_link(&page.body);
        if let Some(next) = &path {
            assert!(
                next.contains("key=lee%40bigco.example") && next.contains("after="),
                "{next}"
            );
        }
    }
    assert_eq!(seen, lees, "every execution of the key once, newest first");
    // Status and scenario filters, and a period that holds nothing.
    let failed = ui.get("/ui/executions?status=failed&scenario=reward").await;
    assert!(row_ids(&failed.body).is_empty() && failed.body.contains("No executions match"));
    assert!(
        failed.body.contains("<option value=\"failed\" selected>"),
        "the status stays chosen"
    );
    let old = ui.get("/ui/executions?until=2020-01-01").await;
    assert!(row_ids(&old.body).is_empty());
    // The API and the CLI find the same executions by key.
    let api: Vec<Value> = ui
        .http
        .get(ui.url("/api/executions?key=kim@other.example"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api.len(), 1);
    assert_eq!(api[0]["id"], json!(other));
    assert_eq!(api[0]["keys"]["lead"], "kim@other.example");
    let store = format!("sqlite://{}", ui.dir.path().join("s.db").display());
    let cli = Scenarist::new()
        .args([
            "executions",
            "list",
            "--key",
            "kim@other.example",
            "--store",
            &store,
        ])
        .run()
        .await;
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    assert!(
        cli.stdout.contains(&other) && cli.stdout.contains("lead=kim@other.example"),
        "{}",
        cli.stdout
    );
    assert!(!cli.stdout.contains(&lees[0]));
}

#[tokio::test]
async fn bulk_retry_takes_the_incomplete_executions_that_match_and_says_what_became_of_each() {
    let ui = start(vec![]).await;
    let stuck: Vec<String> = futures::future::join_all((0..2).map(|n| {
        ui.send(
            "flaky/go",
            json!({ "n": n, "email": "batch@bigco.example" }),
        )
    }))
    .await;
    let other = ui
        .send("flaky/go", json!({ "n": 9, "email": "else@bigco.example" }))
        .await;
    for id in stuck.iter().chain([&other]) {
        ui.until_status(id, "incomplete").await;
    }
    let fine = ui.reward("batch@bigco.example", 10).await;
    ui.until_status(&fine, "succeeded").await;
    // One retried alone first: it fails again (the API still answers 503).
    let page = ui.get(&format!("/ui/executions/{other}")).await;
    assert!(page.body.contains("Retry from the failed step"));
    let alone = ui
        .post(
            &format!("/ui/executions/{other}/retry"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(alone.status, 303);
    let tried_again = crate::daemon_util::eventually(20, || async {
        let shown = ui.execution(&other).await;
        shown["attempt"] == 2 && shown["status"] == "incomplete"
    })
    .await;
    assert!(tried_again, "the retry ran and stopped again at the 503");
    let refused = ui
        .post(
            &format!("/ui/executions/{fine}/retry"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(
        refused.status, 409,
        "only incomplete executions: {}",
        refused.body
    );

    ui.heal().await;
    let list = ui.get("/ui/executions?key=batch%40bigco.example").await;
    let csrf = list.csrf();
    let done = ui
        .post(
            "/ui/executions/retry",
            &[("csrf", &csrf), ("key", "batch@bigco.example")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("2 of 2 incomplete executions"),
        "{}",
        done.body
    );
    for id in &stuck {
        assert!(done.body.contains(&id[28..]), "{id} listed with its result");
        ui.until_status(id, "succeeded").await;
    }
    assert!(
        !done.body.contains(&fine[28..]),
        "a succeeded one is not retried"
    );
    assert_eq!(ui.status(&other).await, "incomplete", "outside the filter");
}

#[tokio::test]
async fn a_scenario_page_shows_its_versions_and_what_changed() {
    let ui = start(vec![]).await;
    let first = ui.reward("v@bigco.example", 10).await;
    ui.until_status(&first, "succeeded").await;
    let file = ui.dir.path().join("reward.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("gt: 1000", "gt: 2500")).unwrap();
    let reloaded = crate::daemon_util::eventually(10, || async {
        ui.get("/ui/scenarios/reward")
            .await
            .body
            .matches("<tr")
            .count()
            >= 3
    })
    .await;
    assert!(reloaded, "the edit was picked up:\n{}", ui.daemon.log());
    let page = ui.get("/ui/scenarios/reward").await;
    // By default the previous version is compared with the newest.
    let versions: Vec<&str> = page
        .body
        .match_indices("name=\"from\" value=\"")
        .map(|(at, m)| &page.body[at + m.len()..at + m.len() + 64])
        .collect();
    assert_eq!(versions.len(), 2, "{}", page.body);
    let diff = ui
        .get(&format!(
            "/ui/scenarios/reward?from={}&to={}",
            versions[1], versions[0]
        ))
        .await;
    assert!(diff.body.contains("<span class=\"delete\">-     when: { value: &quot;{{ trigger.body.amount }}&quot;, gt: 1000 }</span>"), "{}", diff.body);
    assert!(diff.body.contains("gt: 2500 }</span>"), "{}", diff.body);
    // The execution links to the version it ran, whose YAML the page shows.
    let shown = ui.get(&format!("/ui/executions/{first}")).await.body;
    let link = format!("/ui/scenarios/reward?version={}", versions[1]);
    assert!(shown.contains(&link), "{shown}");
    let old = ui.get(&format!("{link}#source")).await.body;
    assert!(
        old.contains("gt: 1000") && !old.contains("gt: 2500 }\n"),
        "the old YAML"
    );
    // A replay starts a new execution of the same version and lands on it.
    let page = ui.get(&format!("/ui/executions/{first}")).await;
    let replay = ui
        .post(
            &format!("/ui/executions/{first}/replay"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(replay.status, 303);
    let to = replay.location.unwrap();
    let new_id = to
        .trim_start_matches("/ui/executions/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(new_id, first);
    ui.until_status(&new_id, "succeeded").await;
    assert!(
        ui.get(&to)
            .await
            .body
            .contains(&format!("/ui/executions/{first}")),
        "replay of links back"
    );
}
