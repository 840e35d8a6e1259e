//! `scenarist triggers`: the poll triggers of a folder, where each stands in
//! the store (`list`), starting one again (`reset`) and polling one now (`poll`).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use scenarist::catalog::Entry;
use scenarist::plan::PollStart;
use scenarist::runner::watch::{PollOptions, PollOutcome};
use serde_json::{json, Value};

use super::run::OutputFormat;
use super::store_arg::{runtime, StoreArg};
use super::{EXIT_FAILED, EXIT_INVALID};

#[derive(Args)]
pub struct TriggersArgs {
    #[command(subcommand)]
    command: Option<TriggersCommand>,
    #[command(flatten)]
    list: ListArgs,
}

#[derive(Subcommand)]
enum TriggersCommand {
    /// Every poll trigger: last poll, items found, cursor, next poll, last error.
    List(ListArgs),
    /// Start a watch again: its next poll starts from `--start`.
    Reset {
        scenario: String,
        /// `now` (remember what is there, run nothing), `all`, or an RFC 3339 time
        /// (default: the trigger's `start`).
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Poll now (even during a back-off); the new items are queued for the daemon.
    Poll {
        scenario: String,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Args)]
struct ListArgs {
    /// Directory of scenarios (default: scenarios/).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArg,
}

pub fn triggers(args: TriggersArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => list(args.list),
        Some(TriggersCommand::List(list_args)) => list(list_args),
        Some(TriggersCommand::Reset {
            scenario,
            start,
            dir,
            store,
        }) => {
            let entry = match poll_scenario(dir, &scenario) {
                Ok(entry) => entry,
                Err(code) => return Ok(code),
            };
            let poll = entry.plan.poll.as_ref().expect("a poll trigger");
            let start = match start.as_deref().map(PollStart::parse).transpose() {
                Ok(start) => start.unwrap_or(poll.start),
                Err(e) => {
                    eprintln!("error: --start: {e}");
                    return Ok(ExitCode::from(EXIT_INVALID));
                }
            };
            if matches!(start, PollStart::At(_)) && poll.date.is_none() {
                eprintln!("error: --start: a start time picks items by their date, and `{scenario}`'s poll has no `date`");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            let store = store.open()?;
            runtime()?.block_on(store.reset_watch(&scenario, &start.describe()))?;
            println!(
                "✔ `{scenario}` starts again from {} at its next poll",
                start.describe()
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(TriggersCommand::Poll {
            scenario,
            dir,
            store,
        }) => {
            let entry = match poll_scenario(dir, &scenario) {
                Ok(entry) => entry,
                Err(code) => return Ok(code),
            };
            let runner = store.runner()?;
            let plan = &entry.plan;
            let outcome = runtime()?.block_on(async {
                runner
                    .store()
                    .save_version(&plan.name, &plan.version, &plan.bundle)
                    .await?;
                let options = PollOptions {
                    force: true,
                    lease: std::time::Duration::from_secs(300),
                };
                anyhow::Ok(runner.poll(plan, |_| None, options).await?)
            })?;
            match outcome {
                PollOutcome::Committed {
                    queued,
                    items,
                    started,
                } => {
                    if let Some(start) = started {
                        println!("✔ the watch started from {}", start.describe());
                    }
                    println!(
                        "✔ {items} new item(s): {} execution(s) queued; the daemon runs them",
                        queued.len()
                    );
                    for id in queued {
                        println!("  {id}");
                    }
                }
                PollOutcome::Nothing => println!("✔ nothing new"),
                PollOutcome::Skipped => {
                    println!("another process is polling `{scenario}` now; nothing done")
                }
                PollOutcome::Failed { error, retry_at } => {
                    eprintln!(
                        "error: the poll failed (the cursor stays; the daemon tries again after {}): {error}",
                        retry_at.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                    return Ok(ExitCode::from(EXIT_FAILED));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The scenario of the folder with a poll trigger named `name`.
fn poll_scenario(dir: Option<PathBuf>, name: &str) -> Result<Entry, ExitCode> {
    let catalog = folder(dir)?;
    let names: Vec<String> = catalog
        .entries
        .iter()
        .map(|e| e.plan.name.clone())
        .collect();
    let Some(entry) = catalog.entries.into_iter().find(|e| e.plan.name == name) else {
        let hint = scenarist::diagnostic::did_you_mean(name, names.iter().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        eprintln!("error: no valid scenario is named `{name}`{hint}");
        return Err(ExitCode::from(EXIT_INVALID));
    };
    if entry.plan.poll.is_none() {
        eprintln!(
            "error: `{name}` is triggered by {}, not by a poll",
            entry.plan.scenario.trigger.kind()
        );
        return Err(ExitCode::from(EXIT_INVALID));
    }
    Ok(entry)
}

/// The scenarios of `dir` (default `scenarios/`); a folder that is not there is an error.
pub(super) fn folder(dir: Option<PathBuf>) -> Result<scenarist::catalog::Catalog, ExitCode> {
    let paths = super::default_paths(dir.into_iter().collect());
    if let Some(missing) = paths.iter().find(|p| !p.is_dir()) {
        eprintln!(
            "error: {} is not a folder of scenarios (give one with --dir)",
            missing.display()
        );
        return Err(ExitCode::from(EXIT_INVALID));
    }
    Ok(super::catalog(&paths))
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let catalog = match folder(args.dir) {
        Ok(catalog) => catalog,
        Err(code) => return Ok(code),
    };
    let store = args.store.open()?;
    let rows = runtime()?.block_on(store.watches())?;
    let now = Utc::now();
    let mut shown = Vec::new();
    for entry in &catalog.entries {
        let Some(poll) = &entry.plan.poll else {
            continue;
        };
        let row = rows.iter().find(|r| r.scenario == entry.plan.name);
        let next = scenarist::runner::watch::next_poll(poll, row, now);
        shown.push(json!({
            "scenario": entry.plan.name,
            "trigger": entry.plan.scenario.trigger.describe(),
            "last_poll": row.and_then(|r| r.last_poll_at).map(|t| t.to_rfc3339()),
            "last_items": row.map(|r| r.last_items),
            "items": row.map(|r| r.items),
            "cursor": row.map(|r| r.cursor.clone()),
            "next_poll": next.map(|t| t.to_rfc3339()),
            "failures": row.map(|r| r.failures).unwrap_or(0),
            "last_error": row.and_then(|r| r.last_error.clone()),
            "started": row.is_some_and(|r| !r.fingerprint.is_empty()),
        }));
    }
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    if shown.is_empty() {
        eprintln!("no scenario here has a poll trigger");
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let time = |v: &Value| {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".to_owned())
    };
    let mut table = vec![[
        "SCENARIO".to_owned(),
        "TRIGGER".to_owned(),
        "LAST POLL (UTC)".to_owned(),
        "ITEMS (LAST/ALL)".to_owned(),
        "CURSOR".to_owned(),
        "NEXT POLL (UTC)".to_owned(),
        "LAST ERROR".to_owned(),
    ]];
    for s in &shown {
        table.push([
            text(&s["scenario"]),
            text(&s["trigger"]),
            time(&s["last_poll"]),
            format!("{}/{}", text(&s["last_items"]), text(&s["items"])),
            match &s["cursor"] {
                Value::Object(c) if !c.is_empty() => Value::Object(c.clone()).to_string(),
                _ if s["started"] == true => "{}".to_owned(),
                _ => "not started".to_owned(),
            },
            time(&s["next_poll"]),
            match &s["last_error"] {
                Value::String(e) => format!("{} (failed {} in a row)", e, s["failures"]),
                _ => "-".to_owned(),
            },
        ]);
    }
    super::print_columns(&table);
    Ok(ExitCode::SUCCESS)
}
