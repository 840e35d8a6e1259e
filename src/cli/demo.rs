//! `scenarist demo`: the whole referral flow, offline, in one process.
//!
//! Starts the stand-ins (referral engine, CRM, payments, chat) on 127.0.0.1,
//! then plays a realistic sequence of events through the example scenarios
//! with a live trace, and ends with what happened and what to run next.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use scenarist::catalog::Catalog;
use scenarist::engine::{Engine, Execution, ExecutionStatus, RunRequest, TriggerData};
use scenarist::plan::Plan;
use scenarist::standins::StandIns;
use serde_json::{json, Value};

use super::trace::Trace;

struct Demo {
    plans: HashMap<String, Plan>,
    env: HashMap<String, String>,
    engine: Engine,
    trace: Trace,
    outcomes: Vec<(String, ExecutionStatus)>,
}

impl Demo {
    async fn run(
        &mut self,
        scenario: &str,
        body: Value,
        dry_run: bool,
    ) -> anyhow::Result<Execution> {
        let plan = self
            .plans
            .get(scenario)
            .with_context(|| format!("scenario `{scenario}` is missing from scenarios/"))?;
        let execution_id = uuid::Uuid::now_v7();
        let request = RunRequest {
            trigger: TriggerData {
                body,
                ..TriggerData::default()
            },
            env: self.env.clone(),
            dry_run,
            execution_id: Some(execution_id),
            ..RunRequest::default()
        };
        eprintln!();
        self.trace.header(
            scenario,
            &execution_id.to_string(),
            plan.scenario.trigger.kind(),
            dry_run,
        );
        let execution = self.engine.execute(plan, request, &self.trace).await?;
        self.outcomes.push((scenario.to_owned(), execution.status));
        Ok(execution)
    }
}

fn chapter(text: &str) {
    println!("\n━━ {text}");
}

pub fn demo() -> anyhow::Result<ExitCode> {
    let dir = Path::new("scenarios");
    if !dir.is_dir() {
        bail!("run the demo from the project folder: it plays the example scenarios in scenarios/");
    }
    let catalog = Catalog::load(&[dir.to_path_buf()]);
    if !catalog.problems.is_empty() {
        super::validate::print_problems(&catalog);
        bail!("the example scenarios are invalid");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let standins = StandIns::start().await.context("cannot start the stand-ins on 127.0.0.1")?;
        let mut demo = Demo {
            plans: catalog.entries.into_iter().map(|e| (e.plan.name.clone(), e.plan)).collect(),
            env: standins.env().into_iter().collect(),
            engine: Engine::new(),
            trace: Trace::new(),
            outcomes: Vec::new(),
        };
        println!("scenarist demo: a referral program run end to end, offline.");
        println!("Stand-ins of a referral engine, a CRM, a payments API and a chat tool listen on http://{}", standins.addr);
        println!("(they imitate the real systems; see src/standins/). Traces go to stderr, the story to stdout.");

        chapter("1. Two CRM customers agree to referrals: enrol them and write their links back (enrol-crm-customer)");
        for (id, email, name) in [("c-101", "ann@acme.example", "Ann"), ("c-102", "bob@globex.example", "Bob")] {
            let event = json!({"event_id": format!("evt-{id}"), "contact": {"id": id, "email": email, "first_name": name, "referral_consent": true}});
            let e = demo.run("enrol-crm-customer", event, false).await?;
            println!("   {name} enrolled: referral link {}", e.response.as_ref().map(|r| r["body"]["referral_link"].clone()).unwrap_or_default());
        }
        let event = json!({"event_id": "evt-c-103", "contact": {"id": "c-103", "email": "cy@initech.example", "first_name": "Cy", "referral_consent": false}});
        demo.run("enrol-crm-customer", event, false).await?;
        println!("   Cy did not consent: filtered, nothing sent.");

        chapter("2. Two people sign up through those links: route each referred lead by segment (route-referred-lead)");
        standins.with_state(|s| {
            s.join("lee@bigco.example", "Lee", "ann@acme.example");
            s.join("max@smallshop.example", "Max", "bob@globex.example");
        });
        let join = |email: &str, name: &str, company: &str, employees: u32, referrer: &str| {
            json!({"event": "user.join", "data": {"email": email, "first_name": name, "campaign_id": 4211, "company": company, "employees": employees, "referrer": {"email": referrer}}})
        };
        demo.run("route-referred-lead", join("lee@bigco.example", "Lee", "BigCo", 450, "ann@acme.example"), false).await?;
        println!("   Lee (BigCo, 450 people) went to the enterprise route: CRM lead with an owner, and the sales channel was told.");
        demo.run("route-referred-lead", join("max@smallshop.example", "Max", "Small Shop", 4, "bob@globex.example"), false).await?;
        println!("   Max (Small Shop, 4 people) went to the smb route: CRM lead only.");

        chapter("3. Lee's deal closes for 900 EUR: qualify the referral, through one flaky 503 (qualify-closed-won)");
        standins.with_state(|s| s.inject_failure("PUT", "/referral/api/v2/users/qualification", 503, 1));
        let deal = |id: &str, amount: u32, email: &str| json!({"deal": {"id": id, "stage": "closed_won", "amount": amount, "currency": "EUR", "contact_email": email}});
        let e = demo.run("qualify-closed-won", deal("D-501", 900, "lee@bigco.example"), false).await?;
        let attempts = e.step("qualify").map(|r| r.attempts).unwrap_or(0);
        println!("   Qualified after {attempts} attempts: the referral engine answered 503 once, the retry went through. Ann's reward is due.");

        chapter("4. The CRM sends the same deal webhook again: no second reward");
        let e = demo.run("qualify-closed-won", deal("D-501", 900, "lee@bigco.example"), false).await?;
        println!("   Execution {}: Lee is already qualified, so the scenario stops before the qualification call.", e.status);

        chapter("5. Max's deal closes for only 200 EUR: below the 500 EUR threshold");
        demo.run("qualify-closed-won", deal("D-502", 200, "max@smallshop.example"), false).await?;
        println!("   Filtered: no reward moves unless the milestone is real.");

        chapter("6. The 15-minute payments poll finds Max's first payment (poll-first-payments)");
        standins.with_state(|s| {
            s.payments = vec![
                json!({"id": "py_9001", "customer_email": "max@smallshop.example", "amount": 4900, "currency": "EUR"}),
                json!({"id": "py_9002", "customer_email": "walk-in@example.com", "amount": 1900, "currency": "EUR"}),
            ]
        });
        let e = demo.run("poll-first-payments", json!({"scheduled_at": chrono::Utc::now().to_rfc3339()}), false).await?;
        println!("   {}", e.step("qualify_each").map(|r| r.output.to_string()).unwrap_or_default());

        chapter("7. A dry run shows what would be sent, without sending it");
        standins.with_state(|s| {
            s.join("sam@megacorp.example", "Sam", "ann@acme.example");
        });
        let before = standins.summary();
        demo.run("qualify-closed-won", deal("D-503", 1200, "sam@megacorp.example"), true).await?;
        let after = standins.summary();
        println!("   Nothing changed in the referral engine: {} rewards before, {} after.", before.rewards_issued, after.rewards_issued);

        let summary = standins.summary();
        let rewards: u32 = standins.with_state(|s| s.rewards.iter().map(|r| r.amount).sum());
        chapter("What happened");
        println!("   executions:           {}", demo.outcomes.len());
        for status in [ExecutionStatus::Succeeded, ExecutionStatus::Filtered, ExecutionStatus::Failed, ExecutionStatus::Incomplete] {
            let n = demo.outcomes.iter().filter(|(_, s)| *s == status).count();
            if n > 0 {
                println!("     {status:<19} {n}");
            }
        }
        println!("   participants enrolled: {}", summary.enrolled);
        println!("   referred sign-ups:     {}", summary.referred);
        println!("   referrals qualified:   {}", summary.qualified);
        println!("   rewards issued:        {} ({} EUR)", summary.rewards_issued, rewards);
        println!("   rewards issued twice:  {}", summary.rewards_issued_twice);
        println!("   CRM links written:     {}, CRM leads: {}, chat messages: {}", summary.crm_links_written, summary.crm_leads, summary.chat_messages);
        println!("\nNext:");
        println!("   cargo run --release -- validate                      # check every scenario, with locations");
        println!("   cargo run --release -- graph scenarios/route-referred-lead.yaml   # the flow as a Mermaid diagram");
        println!("   cargo run --release -- run scenarios/qualify-closed-won.yaml --dry-run --input deal.json   # try one");
        let failed = demo.outcomes.iter().any(|(_, s)| !s.is_success());
        if summary.rewards_issued_twice > 0 || failed {
            bail!("the demo did not go as expected (see above)");
        }
        Ok(ExitCode::SUCCESS)
    })
}
