//! The demo's long wait: referred trials wait for the deal that qualifies
//! them (`referral-journey`), one deal closes before its trial is set up
//! (the early event), one after (the wait resumes, then the review), and one
//! never does (the demo's clock jumps 91 days and the wait times out).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::harness::Harness;
use super::{chapter, outcomes, say};

/// How far the demo's clock is ahead of the system's, in microseconds.
static AHEAD: AtomicI64 = AtomicI64::new(0);

/// The daemon's clock in the demo: the system's, plus the jumps made so far.
pub fn now() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::microseconds(AHEAD.load(Ordering::SeqCst))
}

fn jump(days: i64) {
    AHEAD.fetch_add(days * 86_400 * 1_000_000, Ordering::SeqCst);
}

/// What the CRM's closed-won workflow posts (the shape `qualify-closed-won` reads too).
fn deal(id: &str, email: &str, amount: u64) -> Value {
    json!({ "deal": { "id": id, "stage": "closed_won", "amount": amount, "currency": "EUR", "contact_email": email } })
}

pub async fn play(h: &Harness) -> anyhow::Result<()> {
    chapter(
        "6. The long wait: referred trials wait up to 90 days for the deal that qualifies them",
    );
    let chapter_start = Utc::now();
    let leads = [
        (
            "quinn@globex.example",
            "Quinn",
            "ann@northwind.example",
            "Globex",
            40,
        ),
        (
            "rosa@umbrella.example",
            "Rosa",
            "ben@contoso.example",
            "Umbrella",
            900,
        ),
        (
            "sid@hooli.example",
            "Sid",
            "chloe@fabrikam.example",
            "Hooli",
            15,
        ),
    ];
    for (email, name, referrer, company, employees) in leads {
        let details = json!({ "company": company, "employees": employees });
        h.standins
            .with_state(|s| s.join_with(email, name, referrer, &details));
    }
    h.settle().await?;
    say("referral engine: Quinn, Rosa and Sid join through their friends' links (routed as in chapter 2)");

    let (status, _) = h
        .post(
            "/hooks/crm/deal-won",
            &deal("D-Q1", "quinn@globex.example", 3_000),
        )
        .await?;
    h.settle().await?;
    say(&format!(
        "CRM: Quinn's deal D-Q1 (3000 EUR) closes before her trial is even set up -> {status}: deal.closed_won is kept, nobody waits for it yet"
    ));
    for (email, ..) in leads {
        h.post(
            "/hooks/product/trial-started",
            &json!({ "email": email, "plan": "team" }),
        )
        .await?;
    }
    h.settle().await?;
    say("product: the three start trials; each journey waits for its lead's deal.closed_won");
    say("Quinn's journey finds the deal that closed before it started waiting (lookback) and goes on at once;");
    say("Rosa and Sid wait in the store, holding no worker (`scenarist waits`):");
    for w in h
        .get("/api/waits")
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        say(&format!(
            "  ⏸ {:<24} {} until {}",
            w["key"].as_str().unwrap_or("?"),
            w["event"].as_str().unwrap_or("?"),
            w["deadline"]
                .as_str()
                .unwrap_or("?")
                .get(..10)
                .unwrap_or("?"),
        ));
    }

    let (status, answer) = h
        .post(
            "/hooks/crm/deal-won",
            &deal("D-R1", "rosa@umbrella.example", 15_000),
        )
        .await?;
    let pending = h.reviews(1).await?;
    say(&format!(
        "CRM: Rosa's deal D-R1 (15000 EUR) closes -> {status} {}; her journey resumes and asks for a review:",
        answer["execution_id"].as_str().map(|_| "accepted").unwrap_or("?")
    ));
    for p in &pending {
        say(&format!("  {}", p["message"].as_str().unwrap_or("?")));
        let id = p["id"].as_str().unwrap_or_default();
        let body = json!({ "by": "olivia", "comment": "Umbrella signed" });
        let (status, _) = h
            .post(&format!("/api/executions/{id}/approve"), &body)
            .await?;
        say(&format!("  olivia approves {id} -> {status}"));
    }
    h.settle().await?;

    jump(91);
    say("⏩ 91 days later (the demo's clock jumps): Sid never closed a deal; the daemon wakes his journey at its deadline");
    let started = Instant::now();
    while !h
        .get("/api/waits")
        .await?
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("Sid's wait did not time out");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.settle().await?;
    if let Some(message) = h.standins.with_state(|s| s.chat.last().cloned()) {
        say(&format!("chat: {message}"));
    }
    outcomes(h, chapter_start).await
}
