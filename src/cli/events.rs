//! Correlated events: `emit`, `waits`, `events`.

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use scenarist::store::EventFilter;

use super::run::OutputFormat;
use super::store_arg::{runtime, StoreArg};

#[derive(Args)]
pub struct EmitArgs {
    /// The event's name, e.g. `deal.closed_won`.
    event: String,
    /// The correlation key, e.g. the lead's email.
    key: String,
    /// What the event carries, as JSON (waiters read it as `event.data`).
    #[arg(long, value_name = "JSON")]
    data: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only this event name.
    #[arg(long)]
    event: Option<String>,
    /// Only this key.
    #[arg(long)]
    key: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArg,
}

impl ListArgs {
    fn filter(&self) -> EventFilter {
        EventFilter {
            event: self.event.clone(),
            key: self.key.clone(),
            limit: Some(self.limit),
        }
    }
}

/// Commits the event (and wakes its waiters) before printing anything.
pub fn emit(args: EmitArgs) -> anyhow::Result<ExitCode> {
    let data = match &args.data {
        None => serde_json::Value::Object(Default::default()),
        Some(text) => match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                eprintln!("error: --data is not JSON: {e}");
                return Ok(ExitCode::from(super::EXIT_INVALID));
            }
        },
    };
    let runner = args.store.runner()?;
    let emitted = runtime()?.block_on(runner.emit(&args.event, &args.key, data))?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&emitted)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("✔ event {} committed", emitted.event_id);
    if emitted.resumed.is_empty() {
        println!("no execution waits for {} [{}]", args.event, args.key);
    } else {
        println!(
            "resumed {} execution(s); they go on in the daemon (or with `scenarist resume`):",
            emitted.resumed.len()
        );
        for id in &emitted.resumed {
            println!("  {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn waits(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let waits = runtime()?.block_on(store.waits(&args.filter()))?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&waits)?);
        return Ok(ExitCode::SUCCESS);
    }
    if waits.is_empty() {
        eprintln!("no execution waits for an event");
        return Ok(ExitCode::SUCCESS);
    }
    let now = Utc::now();
    println!(
        "{:<36}  {:<24} {:<16} {:<20} {:<28} {:>8}  DEADLINE (UTC)",
        "ID", "SCENARIO", "STEP", "EVENT", "KEY", "WAITING"
    );
    for w in &waits {
        println!(
            "{:<36}  {:<24} {:<16} {:<20} {:<28} {:>8}  {}",
            w.execution_id,
            w.scenario,
            w.step,
            w.event,
            w.key,
            super::review::waited(now - w.waiting_since),
            w.deadline.format("%Y-%m-%d %H:%M")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn events(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let events = runtime()?.block_on(store.events(&args.filter()))?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&events)?);
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        eprintln!("no events match");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<19}  {:<20} {:<28} RESUMED",
        "ID", "RECEIVED (UTC)", "EVENT", "KEY"
    );
    for e in &events {
        let resumed: Vec<String> = e.resumed.iter().map(|id| id.to_string()).collect();
        println!(
            "{:<36}  {:<19}  {:<20} {:<28} {}",
            e.id,
            e.received_at.format("%Y-%m-%d %H:%M:%S"),
            e.event,
            e.key,
            if resumed.is_empty() {
                "-".to_owned()
            } else {
                resumed.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
