//! Review before reward: `approvals`, `approve`, `reject`.

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use scenarist::runner::Decision;

use super::run::{exit_code, OutputFormat};
use super::store_arg::{runtime, StoreArg};
use super::trace::Trace;

#[derive(Args)]
pub struct DecideArgs {
    /// The execution id (a unique prefix is enough).
    id: String,
    /// Who decides (must be one of the step's `approvers` when it lists any).
    #[arg(long, env = "USER", default_value = "cli")]
    by: String,
    #[arg(long)]
    comment: Option<String>,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Args)]
pub struct ApprovalsArgs {
    #[arg(long)]
    scenario: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArg,
}

/// Keeps the decision, then lets the execution go on in this process.
pub fn decide(args: DecideArgs, approve: bool) -> anyhow::Result<ExitCode> {
    let runner = args.store.runner()?;
    runtime()?.block_on(async {
        let id = runner.resolve(&args.id).await?;
        let decision = Decision {
            approve,
            by: args.by,
            comment: args.comment,
        };
        let output = runner.decide(id, decision).await?;
        let verb = if approve { "approved" } else { "rejected" };
        println!(
            "✔ execution {id} {verb} by {}",
            output["by"].as_str().unwrap_or_default()
        );
        let trace = Trace::new();
        match runner.resume(id, &trace).await {
            Ok(execution) => {
                println!("execution {id} is now {}", execution.status);
                Ok(exit_code(execution.status))
            }
            // Another process (the daemon) took it over first: it goes on there.
            Err(scenarist::runner::RunnerError::Taken(_)) => {
                println!("execution {id} goes on in another process (the daemon)");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!(
                    "the decision is kept; execution {id} goes on where it can run (the daemon, or `scenarist resume`): {e}"
                );
                Ok(ExitCode::from(super::EXIT_FAILED))
            }
        }
    })
}

pub fn approvals(args: ApprovalsArgs) -> anyhow::Result<ExitCode> {
    let runner = args.store.runner()?;
    let pending = runtime()?.block_on(runner.approvals(args.scenario))?;
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&pending)?);
        return Ok(ExitCode::SUCCESS);
    }
    if pending.is_empty() {
        eprintln!("nothing waits for a review");
        return Ok(ExitCode::SUCCESS);
    }
    let now = Utc::now();
    println!(
        "{:<36}  {:<24} {:>8}  {:<16}  MESSAGE",
        "ID", "SCENARIO", "WAITING", "DEADLINE (UTC)"
    );
    for p in &pending {
        println!(
            "{:<36}  {:<24} {:>8}  {:<16}  {}",
            p.execution.id,
            p.execution.scenario,
            waited(now - p.waiting_since),
            p.deadline.format("%Y-%m-%d %H:%M"),
            p.message
        );
    }
    println!("\ndecide with: scenarist approve ID [--comment TEXT]  or  scenarist reject ID [--comment TEXT]");
    Ok(ExitCode::SUCCESS)
}

/// `3d 4h`, `2h 5m`, `40s`: how long something has waited, for a person.
pub(super) fn waited(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn waiting_times_read_like_a_person_would_say_them() {
        let w = |s| super::waited(chrono::Duration::seconds(s));
        assert_eq!(w(40), "40s");
        assert_eq!(w(125), "2m");
        assert_eq!(w(7500), "2h 5m");
        assert_eq!(w(3 * 86400 + 4 * 3600), "3d 4h");
    }
}
