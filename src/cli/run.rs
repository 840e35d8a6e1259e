//! `scenarist run FILE`: one execution, traced live.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use scenarist::engine::{Engine, ExecutionStatus, RunRequest, TriggerData};

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
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
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
    // Settings are resolved here, once: the engine never reads the environment.
    let env: HashMap<String, String> = plan
        .env
        .iter()
        .filter_map(|decl| {
            std::env::var(&decl.name)
                .ok()
                .map(|v| (decl.name.clone(), v))
        })
        .collect();
    let execution_id = uuid::Uuid::now_v7();
    let request = RunRequest {
        trigger: TriggerData {
            body,
            ..TriggerData::default()
        },
        env,
        vars: args.vars.into_iter().collect(),
        dry_run: args.dry_run,
        execution_id: Some(execution_id),
    };
    let trace = Trace::new();
    trace.header(
        &plan.name,
        &execution_id.to_string(),
        plan.scenario.trigger.kind(),
        args.dry_run,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let engine = Engine::new();
    let execution = match runtime.block_on(engine.execute(&plan, request, &trace)) {
        Ok(execution) => execution,
        Err(e) => {
            eprintln!("error: {e}\nnothing ran");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&execution)?),
        OutputFormat::Text => {
            if let Some(response) = &execution.response {
                println!("{}", serde_json::to_string_pretty(response)?);
            }
        }
    }
    Ok(match execution.status {
        ExecutionStatus::Succeeded | ExecutionStatus::Filtered => ExitCode::SUCCESS,
        ExecutionStatus::Failed | ExecutionStatus::Incomplete | ExecutionStatus::Running => {
            ExitCode::from(EXIT_FAILED)
        }
    })
}
