//! `scenarist demo`: the whole referral flow, offline, in one process.
//!
//! Starts stand-ins of a referral engine, a CRM, a payments API and a chat
//! tool, runs the daemon on the example scenarios in `scenarios/` against
//! them, plays a realistic week of events through webhooks (with a duplicate
//! webhook, a flaky 503 and a replay), reviews two large rewards, and ends
//! with the report and the commands to look at what happened. Chapter 6
//! (`journey.rs`) plays correlated waits, including a 90-day timeout.

mod examples;
mod harness;
mod journey;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use chrono::Utc;
use clap::Args;
use scenarist::engine::{ExecutionStatus, NoJournal};
use scenarist::report::{self, ReportRequest};
use scenarist::runner::Runner;
use scenarist::store::{self, Store};
use serde_json::json;

use harness::Harness;

/// Where the demo keeps its history unless told otherwise: apart from the
/// default store, and emptied at each run.
const DEMO_STORE: &str = ".scenarist/demo.db";
/// Where the built-in examples are written for the demo's daemon to serve.
const DEMO_SCENARIOS: &str = ".scenarist/demo-scenarios";

#[derive(Args)]
pub struct DemoArgs {
    /// Keep the demo's history here: sqlite://PATH (the file is replaced), or
    /// postgres://USER@HOST/DB?schema=NAME (a schema without executions).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Play the scenarios of this folder instead of the examples built into
    /// the binary (which are written to .scenarist/demo-scenarios/).
    #[arg(long, value_name = "DIR")]
    dir: Option<std::path::PathBuf>,
}

fn chapter(text: &str) {
    println!("\n━━ {text}");
}

fn say(text: &str) {
    println!("   {text}");
}

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = match &args.dir {
        Some(dir) if !dir.is_dir() => bail!("{} is not a folder of scenarios", dir.display()),
        Some(dir) => dir.clone(),
        None => {
            let dir = Path::new(DEMO_SCENARIOS).to_path_buf();
            examples::write_examples(&dir).with_context(|| {
                format!("cannot write the example scenarios to {}", dir.display())
            })?;
            dir
        }
    };
    let dir = dir.as_path();
    let url = args
        .store
        .unwrap_or_else(|| format!("sqlite://{DEMO_STORE}"));
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !postgres {
        let path = url
            .strip_prefix("sqlite://")
            .context("the demo keeps its history in sqlite://PATH or postgres://...")?
            .to_owned();
        for stale in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot replace {stale}")),
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store: Arc<dyn Store> = store::open(&url)?;
        if postgres {
            let any = scenarist::store::ExecutionFilter {
                limit: Some(1),
                ..Default::default()
            };
            if !store.list(&any).await?.is_empty() {
                bail!(
                    "{} already holds executions: the demo needs a schema of its own, e.g. add ?schema=scenarist_demo (a new one is created)",
                    scenarist::store::without_password(&url)
                );
            }
        }
        let mut harness = Harness::start(dir, store.clone()).await?;
        let result = story(&harness, &url, dir).await;
        harness.shutdown().await;
        result
    })
}

async fn story(h: &Harness, url: &str, dir: &Path) -> anyhow::Result<ExitCode> {
    let began = Utc::now();
    println!(
        "scenarist demo: a referral program run by the example scenarios in {}/.",
        dir.display()
    );
    say(&format!(
        "Stand-ins of a referral engine, a CRM, a payments API and a chat tool listen on http://{}",
        h.standins.addr
    ));
    say("(they imitate the real systems offline; see src/standins/). The daemon serves the");
    say(&format!(
        "scenarios at {} and keeps every execution in {}.",
        h.base,
        scenarist::store::without_password(url)
    ));

    // The payments watch starts now (it remembers the payments already there,
    // none yet): only payments made during the story count.
    h.post("/api/triggers/poll-first-payments/poll", &json!({}))
        .await?;

    chapter("1. Enrolment: new CRM customers and a website sign-up get their referral links");
    let customers = [
        ("ann@northwind.example", "Ann", "Northwind", true),
        ("ben@contoso.example", "Ben", "Contoso", true),
        ("chloe@fabrikam.example", "Chloe", "Fabrikam", true),
        ("dan@initech.example", "Dan", "Initech", false),
    ];
    for (email, name, company, consent) in customers {
        h.standins.with_state(|s| {
            s.add_contact_with(
                email,
                name,
                "",
                company,
                "customer",
                json!({ "referral_consent": consent }),
            )
        });
    }
    say("CRM: 4 customers created (Dan did not consent to the referral program)");
    let form = json!({ "email": "Eve@Example.org", "first_name": "Eve" });
    let (status, answer) = h.post("/hooks/forms/referral-signup", &form).await?;
    say(&format!(
        "website form: Eve signs up -> {status}, the page shows {}",
        answer["referral_link"].as_str().unwrap_or("?")
    ));
    let (status, answer) = h.post("/hooks/forms/referral-signup", &form).await?;
    say(&format!(
        "website form: Eve double-clicks -> {status} duplicate={} (nothing runs twice)",
        answer["duplicate"]
    ));
    h.settle().await?;
    outcomes(h, began).await?;

    chapter("2. Referred sign-ups: five people join through their friends' links");
    let chapter_start = Utc::now();
    let joins = [
        (
            "lee@bigco.example",
            "Lee",
            "ann@northwind.example",
            json!({ "company": "BigCo", "employees": 1200 }),
        ),
        (
            "mia@smallshop.example",
            "Mia",
            "ann@northwind.example",
            json!({ "company": "Small Shop", "employees": 12 }),
        ),
        (
            "noah@acme.example",
            "Noah",
            "ben@contoso.example",
            json!({ "company": "Acme", "employees": 350 }),
        ),
        (
            "olga@fabrikam.example",
            "Olga",
            "chloe@fabrikam.example",
            json!({ "company": "Fabrikam" }),
        ),
        (
            "pat@example.net",
            "Pat",
            "eve@example.org",
            json!({ "company": "Pat's Pottery", "employees": 2 }),
        ),
    ];
    for (email, name, referrer, details) in &joins {
        h.standins
            .with_state(|s| s.join_with(email, name, referrer, details));
    }
    h.settle().await?;
    h.standins.redeliver_last("user.join");
    say("the referral engine sends Pat's user.join webhook a second time (it happens): deduplicated");
    h.settle().await?;
    outcomes(h, chapter_start).await?;

    chapter("3. Milestones: deals close, a first payment arrives; large rewards wait for review");
    let chapter_start = Utc::now();
    let mut deals = Vec::new();
    for (email, name, company, amount) in [
        ("lee@bigco.example", "Lee", "BigCo", 4_000u64),
        ("mia@smallshop.example", "Mia", "Small Shop", 300),
        ("noah@acme.example", "Noah", "Acme", 25_000),
        ("olga@fabrikam.example", "Olga", "Fabrikam", 18_000),
        ("ben@contoso.example", "Ben", "Contoso", 9_000),
    ] {
        let id = h.standins.with_state(|s| {
            let contact = s.add_contact_with(email, name, "", company, "customer", json!({}));
            s.add_deal(
                &contact,
                &format!("{company} subscription"),
                amount,
                "EUR",
                "open",
            )
        });
        deals.push((name, amount, id.map_err(anyhow::Error::msg)?));
    }
    say("sales adds the referred customers to the CRM with a deal each (they are not asked to join the program themselves)");
    h.settle().await?;
    // The referral engine answers the first qualification with a 503.
    h.standins
        .with_state(|s| s.inject_failure("PUT", "/referral/api/v2/users/qualification", 503, 1));
    for (name, amount, id) in &deals {
        h.standins
            .move_deal(id, "closed_won")
            .map_err(anyhow::Error::msg)?;
        say(&format!(
            "CRM: {name}'s deal {id} ({amount} EUR) moves to closed-won"
        ));
    }
    say("(the referral engine answers the first qualification with a 503: the step retries)");
    h.standins.pay("pat@example.net", 4_900, true);
    say("payments: Pat pays for the first time; the payments watch polls (on demand here, every 15m in production) and finds the new payment");
    h.settle().await?;
    h.post("/api/triggers/poll-first-payments/poll", &json!({}))
        .await?;
    let pending = h.reviews(2).await?;
    h.settle().await?;
    for p in &pending {
        say(&format!(
            "waiting for review: {}",
            p["message"].as_str().unwrap_or("?")
        ));
    }
    for p in &pending {
        let id = p["id"].as_str().unwrap_or_default();
        let message = p["message"].as_str().unwrap_or_default();
        let (path, body) = if message.contains("noah@") {
            (
                "approve",
                json!({ "by": "olivia", "comment": "Acme signed a 3-year contract" }),
            )
        } else {
            (
                "reject",
                json!({ "by": "sam", "comment": "referrer and referral work at the same company" }),
            )
        };
        let (status, _) = h
            .post(&format!("/api/executions/{id}/{path}"), &body)
            .await?;
        say(&format!(
            "{} {}s {id} -> {status}",
            body["by"].as_str().unwrap_or_default(),
            path,
        ));
    }
    h.settle().await?;
    outcomes(h, chapter_start).await?;

    chapter("4. A replay: ops re-runs Lee's qualification; the reward is not issued again");
    let chapter_start = Utc::now();
    let mut lee = None;
    for e in h.since(began).await? {
        if e.scenario != "qualify-closed-won" || e.status != ExecutionStatus::Succeeded {
            continue;
        }
        let stored = h.store.execution(e.id).await?;
        if stored.is_some_and(|x| {
            x.trigger["body"]["deal"]["contact_email"] == json!("lee@bigco.example")
        }) {
            lee = Some(e);
        }
    }
    let lee = lee.context("Lee's qualification should have succeeded")?;
    let runner = Runner::new(
        scenarist::engine::Engine::new(),
        h.store.clone(),
        h.env.clone(),
    );
    let replay = runner.replay(lee.id, &NoJournal).await?;
    say(&format!(
        "replay of {} -> {} (the referral is already qualified)",
        lee.id, replay.status
    ));
    h.settle().await?;
    outcomes(h, chapter_start).await?;

    chapter("5. The reporting loop: the weekly report goes to the chat channel");
    h.post("/api/scenarios/weekly-report/run", &json!({}))
        .await?;
    h.settle().await?;
    if let Some(message) = h.standins.with_state(|s| s.chat.last().cloned()) {
        say(&format!("chat: {message}"));
    }

    journey::play(h).await?;

    chapter("The report (`scenarist report`)");
    let until = Utc::now() + chrono::Duration::seconds(1);
    let request = ReportRequest {
        since: until - chrono::Duration::days(30),
        until,
        scenario: None,
    };
    let events = h.store.business_events(request.since, until, None).await?;
    let counts = h.store.report_counts(request.since, until, None).await?;
    print!(
        "{}",
        report::render::table(&report::build(&request, &events, counts))
    );

    let summary = h.standins.summary();
    chapter("What the stand-in referral engine saw");
    say(&format!(
        "{} participants enrolled, {} referred, {} qualified, {} rewards issued, {} issued twice",
        summary.enrolled,
        summary.referred,
        summary.qualified,
        summary.rewards_issued,
        summary.rewards_issued_twice
    ));

    chapter("Look around");
    let store_flag = format!("--store {}", scenarist::store::without_password(url));
    say(&format!("scenarist executions list {store_flag}"));
    say(&format!(
        "scenarist executions show {} {store_flag}",
        lee.id
    ));
    say(&format!("scenarist approvals {store_flag}"));
    say(&format!("scenarist waits {store_flag}"));
    say(&format!("scenarist events {store_flag}"));
    say(&format!("scenarist report --chart report.svg {store_flag}"));
    say(&format!(
        "scenarist graph {}",
        dir.join("qualify-closed-won.yaml").display()
    ));
    say("The dashboard on this history (Ctrl-C stops it):");
    say(&format!(
        "scenarist serve --dir {} {store_flag}   then open http://127.0.0.1:8080/ui",
        dir.display()
    ));

    if summary.rewards_issued_twice > 0 {
        bail!("a reward was issued twice: that is the mistake scenarist exists to prevent");
    }
    let failed: Vec<_> = h
        .since(began)
        .await?
        .into_iter()
        .filter(|e| e.status == ExecutionStatus::Failed)
        .collect();
    if !failed.is_empty() {
        bail!("{} executions failed in the demo", failed.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// What ran since `since`, oldest first: one line per kind of outcome
/// (scenario, status and why), with how many and, when one, its id.
async fn outcomes(h: &Harness, since: chrono::DateTime<Utc>) -> anyhow::Result<()> {
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for e in h.since(since).await? {
        let mark = match e.status {
            ExecutionStatus::Succeeded => "✓",
            ExecutionStatus::Filtered => "⊘",
            ExecutionStatus::Rejected => "✗",
            ExecutionStatus::Waiting => "⏸",
            _ => "!",
        };
        let why = match (&e.status, &e.error) {
            (ExecutionStatus::Filtered, _) => {
                let stopped_at = h
                    .store
                    .execution(e.id)
                    .await?
                    .and_then(|x| {
                        x.steps
                            .into_iter()
                            .find(|s| s.status == scenarist::engine::StepStatus::Filtered)
                    })
                    .map(|s| format!("filter `{}`", s.path))
                    .unwrap_or_else(|| "a filter".to_owned());
                format!(" (stopped by {stopped_at}: not a failure)")
            }
            (_, Some(error)) => format!(" ({error})"),
            _ => String::new(),
        };
        let line = format!("   {mark} {:<20} {:<10}{{}}{why}", e.scenario, e.status);
        match lines.iter_mut().find(|(l, _)| *l == line) {
            Some((_, ids)) => ids.push(e.id.to_string()),
            None => lines.push((line, vec![e.id.to_string()])),
        }
    }
    for (line, ids) in lines {
        let what = match ids.as_slice() {
            [one] => format!(" {one}"),
            many => format!(" ×{}", many.len()),
        };
        println!("{}", line.replacen("{}", &what, 1));
    }
    Ok(())
}
