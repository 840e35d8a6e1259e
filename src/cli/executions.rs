//! History and recovery: `executions list|show|retry`, `resume`, `replay`, `prune`.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use scenarist::engine::{ExecutionStatus, StepRecord};
use scenarist::model::Duration;
use scenarist::runner::Runner;
use scenarist::store::{ExecutionFilter, ExecutionSummary, PruneRule};

use super::run::{exit_code, print_result, OutputFormat};
use super::store_arg::{runtime, StoreArg};
use super::trace::Trace;
use super::EXIT_FAILED;

#[derive(Subcommand)]
pub enum ExecutionsCommand {
    /// A table of recent executions, newest first.
    List(ListArgs),
    /// Every step of one execution with its input, output, error, attempts and timing.
    Show {
        /// The execution id (a unique prefix is enough).
        id: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Resume one incomplete execution now, from the step that stopped it.
    Retry {
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    scenario: Option<String>,
    /// queued, running, succeeded, failed, filtered, incomplete, waiting or rejected.
    #[arg(long, value_parser = parse_status)]
    status: Option<ExecutionStatus>,
    /// Only executions started within this long, e.g. `7d`, `12h`.
    #[arg(long, value_parser = parse_duration)]
    since: Option<Duration>,
    /// Only executions with this business key value (`settings.keys`), e.g. a lead's email.
    #[arg(long)]
    key: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArg,
}

fn parse_status(text: &str) -> Result<ExecutionStatus, String> {
    text.parse().map_err(|_| {
        format!(
            "unknown status `{text}` (queued, running, succeeded, failed, filtered, incomplete, waiting, rejected)"
        )
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<Duration>().map_err(|e| e.to_string())
}

pub fn executions(command: ExecutionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ExecutionsCommand::List(args) => list(args),
        ExecutionsCommand::Show { id, output, store } => show(&id, output, &store),
        ExecutionsCommand::Retry { id, store } => {
            let runner = store.runner()?;
            runtime()?.block_on(async {
                let id = runner.resolve(&id).await?;
                let trace = Trace::new();
                trace.line(&format!("▶ resuming execution {id}"));
                let execution = runner.resume(id, &trace).await?;
                Ok(exit_code(execution.status))
            })
        }
    }
}

fn since(duration: Option<Duration>) -> Option<DateTime<Utc>> {
    duration.and_then(|d| d.before(Utc::now()))
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let filter = ExecutionFilter {
        scenario: args.scenario,
        status: args.status,
        since: match args.since {
            None => None,
            Some(d) => Some(since(Some(d)).context("--since is too long a period")?),
        },
        key: args.key,
        limit: Some(args.limit),
        ..ExecutionFilter::default()
    };
    let rows = runtime()?.block_on(store.list(&filter))?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("no executions match");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<24} {:<10} {:<19}  {:>9}  {:<16} KEYS",
        "ID", "SCENARIO", "STATUS", "STARTED (UTC)", "DURATION", "FAILING STEP"
    );
    for row in rows {
        let line = format!(
            "{:<36}  {:<24} {:<10} {:<19}  {:>9}  {:<16} {}",
            row.id,
            row.scenario,
            row.status,
            row.started_at.format("%Y-%m-%d %H:%M:%S"),
            row.duration_ms()
                .map(|ms| format!("{ms}ms"))
                .unwrap_or_else(|| "-".to_owned()),
            row.error_step.as_deref().unwrap_or(""),
            row.keys
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!("{}", line.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn show(id: &str, output: OutputFormat, store: &StoreArg) -> anyhow::Result<ExitCode> {
    let runner = store.runner()?;
    let stored = runtime()?.block_on(async {
        let id = runner.resolve(id).await?;
        runner.load(id).await
    })?;
    if output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&stored)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &stored.summary;
    println!("execution {}", s.id);
    println!(
        "  scenario   {} (version {})",
        s.scenario,
        short(&s.version)
    );
    println!("  status     {}", s.status);
    println!("  attempt    {}", s.attempt);
    println!("  started    {}", s.started_at.to_rfc3339());
    if let Some(end) = s.finished_at {
        println!(
            "  finished   {} ({}ms)",
            end.to_rfc3339(),
            s.duration_ms().unwrap_or(0)
        );
    }
    if let Some(next) = s.next_retry_at {
        println!("  next retry {}", next.to_rfc3339());
    }
    if let Some(of) = s.replay_of {
        println!("  replay of  {of}");
    }
    if let Some(error) = &s.error {
        println!(
            "  error      {}: {error}",
            s.error_step.as_deref().unwrap_or("-")
        );
    }
    println!("  trigger    {}", compact(&stored.trigger["body"]));
    println!("steps");
    for step in &stored.steps {
        print_step(step);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_step(step: &StepRecord) {
    println!(
        "  {} [{}] {} · {} attempt(s) · {}ms · started {}",
        step.path,
        step.kind,
        step.status,
        step.attempts,
        step.duration_ms,
        step.started_at.format("%H:%M:%S%.3f")
    );
    if let Some(detail) = &step.detail {
        println!("      {detail}");
    }
    if let Some(input) = &step.input {
        println!("      input  {}", compact(input));
    }
    println!("      output {}", compact(&step.output));
    if let Some(error) = &step.error {
        println!("      error  {error}");
    }
}

fn compact(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 400 {
        format!(
            "{}… ({} bytes)",
            text.chars().take(400).collect::<String>(),
            text.len()
        )
    } else {
        text
    }
}

fn short(version: &str) -> &str {
    &version[..12.min(version.len())]
}

/// `scenarist resume`: every execution a dead process left running, and
/// every incomplete one whose retry time has come.
pub fn resume(store: StoreArg) -> anyhow::Result<ExitCode> {
    let runner = store.runner()?;
    runtime()?.block_on(async {
        let due = runner.due().await?;
        if due.is_empty() {
            eprintln!("nothing to resume");
            return Ok(ExitCode::SUCCESS);
        }
        let mut worst = ExitCode::SUCCESS;
        for summary in due {
            if let Some(code) = resume_one(&runner, &summary).await {
                worst = code;
            }
        }
        Ok(worst)
    })
}

/// Resumes one execution; `Some(code)` when it did not end well.
async fn resume_one(runner: &Runner, summary: &ExecutionSummary) -> Option<ExitCode> {
    let trace = Trace::new();
    trace.line(&format!(
        "▶ resuming {} · execution {} · was {}",
        summary.scenario, summary.id, summary.status
    ));
    match runner.resume(summary.id, &trace).await {
        Ok(execution) if execution.status.is_success() => None,
        Ok(_) => Some(ExitCode::from(EXIT_FAILED)),
        Err(e) => {
            eprintln!("error: execution {}: {e}", summary.id);
            Some(ExitCode::from(EXIT_FAILED))
        }
    }
}

/// `scenarist replay ID`: a new execution with the same trigger.
pub fn replay(id: String, output: OutputFormat, store: StoreArg) -> anyhow::Result<ExitCode> {
    let runner = store.runner()?;
    runtime()?.block_on(async {
        let id = runner.resolve(&id).await?;
        let trace = Trace::new();
        trace.line(&format!("▶ replaying execution {id} as a new execution"));
        let execution = runner.replay(id, &trace).await?;
        eprintln!("new execution {}", execution.execution_id);
        print_result(&execution, output)?;
        Ok(exit_code(execution.status))
    })
}

#[derive(Args)]
pub struct PruneArgs {
    /// Delete finished executions started longer ago than this, e.g. `30d`.
    #[arg(long, value_parser = parse_duration)]
    older_than: Duration,
    /// Scenario files whose `settings.history` overrides `--older-than` (default: scenarios/).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Delete correlated events received longer ago than this (`wait_for` no longer sees them).
    #[arg(long, value_parser = parse_duration, default_value = "30d")]
    event_retention: Duration,
    #[command(flatten)]
    store: StoreArg,
}

/// `scenarist prune --older-than 30d`: deletes old finished executions; the
/// running and incomplete ones stay, whatever their age.
pub fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let before = since(Some(args.older_than)).context("--older-than is too long")?;
    let mut per_scenario = Vec::new();
    let dir = args.dir.unwrap_or_else(|| "scenarios".into());
    if dir.is_dir() {
        let catalog = super::catalog(&[dir]);
        for entry in &catalog.entries {
            if let Some(history) = entry.plan.scenario.settings.history {
                if let Some(cut) = since(Some(history)) {
                    per_scenario.push((entry.plan.name.clone(), cut));
                }
            }
        }
    }
    let rule = PruneRule {
        before,
        per_scenario,
    };
    let events_before =
        since(Some(args.event_retention)).context("--event-retention is too long")?;
    let (deleted, events) = runtime()?.block_on(async {
        let deleted = store.prune(&rule).await?;
        let events = store.prune_events(events_before).await?;
        Ok::<_, scenarist::store::StoreError>((deleted, events))
    })?;
    println!("deleted {deleted} execution(s) and {events} event(s)");
    Ok(ExitCode::SUCCESS)
}
