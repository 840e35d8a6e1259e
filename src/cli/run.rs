//! `scenarist run FILE`: one execution, traced live.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use scenarist::engine::{ExecutionStatus, RunRequest, TriggerData};
use scenarist::runner::RunnerError;

use super::store_arg::{runtime, StoreArg};
use super::{input, trace::Trace, validate, EXIT_FAILED, EXIT_INVALID};

#[derive(Args)]
pub struct RunArgs {
    /// The scenario file.
    file: PathBuf,
    /// The trigger body: a JSON (or YAML) file, or `-` for stdin. Default: `{}`.
    #[arg(long, value_name = "FILE|-")]
    input: Option<String>,
    /// Override a declared var: `--var threshold=500` (JSON values are typed).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = input::parse_var)]
    vars: Vec<(String, serde_json::Value)>,
    /// Send GET/HEAD requests only; show every other request instead of sending it.
    #[arg(long)]
    dry_run: bool,
    /// `json` prints the execution document on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(entry) = validate::load_one(&args.file) else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let plan = entry.plan;
    let body = match &args.input {
        Some(source) => match input::read_input(source) {
            Ok(body) => body,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        },
        None => serde_json::json!({}),
    };
    let execution_id = uuid::Uuid::now_v7();
    // A poll's execution reads its item: the input stands for it.
    let extra = match &plan.poll {
        Some(poll) if poll.batch => {
            scenarist::runner::watch::trigger_extra(None, Some(vec![body.clone()]))
        }
        Some(_) => scenarist::runner::watch::trigger_extra(Some(body.clone()), None),
        None => serde_json::Map::new(),
    };
    let request = RunRequest {
        trigger: TriggerData {
            body,
            extra,
            ..TriggerData::default()
        },
        vars: args.vars.into_iter().collect(),
        dry_run: args.dry_run,
        execution_id: Some(execution_id),
        ..RunRequest::default()
    };
    // A dry run is a preview: it keeps nothing.
    let store = if args.dry_run {
        StoreArg {
            url: "memory".to_owned(),
            key: args.store.key.clone(),
        }
    } else {
        args.store.clone()
    };
    let runtime = runtime()?;
    let runner = store.runner()?;
    let trace = Trace::new();
    trace.header(
        &plan.name,
        &execution_id.to_string(),
        plan.scenario.trigger.kind(),
        args.dry_run,
    );
    let started = runner.start(&plan, request, &trace, None);
    let execution = match runtime.block_on(started) {
        Ok(execution) => execution,
        Err(RunnerError::Run(e @ scenarist::engine::RunError::Journal(_))) => {
            eprintln!("error: {e}\nthe execution stays `running` in the store: `scenarist resume` continues it");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        Err(e @ RunnerError::Run(_)) => {
            eprintln!("error: {e}\nnothing ran");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        Err(e) => return Err(e.into()),
    };
    print_result(&execution, args.output)?;
    Ok(exit_code(execution.status))
}

pub fn print_result(
    execution: &scenarist::engine::Execution,
    output: OutputFormat,
) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(execution)?),
        OutputFormat::Text => {
            if let Some(response) = &execution.response {
                println!("{}", serde_json::to_string_pretty(response)?);
            }
        }
    }
    Ok(())
}

pub fn exit_code(status: ExecutionStatus) -> ExitCode {
    match status {
        // Parked or said no by a person: the scenario did what it should.
        ExecutionStatus::Succeeded
        | ExecutionStatus::Filtered
        | ExecutionStatus::Waiting
        | ExecutionStatus::Rejected => ExitCode::SUCCESS,
        ExecutionStatus::Failed
        | ExecutionStatus::Incomplete
        | ExecutionStatus::Running
        | ExecutionStatus::Queued => ExitCode::from(EXIT_FAILED),
    }
}
