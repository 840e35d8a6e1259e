//! The command line: the only place that parses arguments, prints, and picks
//! exit codes. Exit codes are a policy: 0 success (or filtered), 1 the scenario
//! ran and failed (or a validation found problems), 2 usage, input or an invalid scenario.

mod apps;
mod connect;
mod credentials;
mod demo;
mod events;
mod executions;
mod import;
mod input;
mod list;
mod report;
mod review;
mod run;
mod serve;
mod store_arg;
mod test;
mod trace;
mod triggers;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Declarative scenario runner: referral-operations flows from plain YAML files.
#[derive(Parser)]
#[command(name = "scenarist", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The folder of app files, instead of `apps/` inside and beside the
    /// scenarios' folder.
    #[arg(long, global = true, value_name = "DIR")]
    apps: Option<PathBuf>,
}

/// `--apps DIR`, read once at start.
static APPS_DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// The `--apps` folder, when given.
pub fn apps_dir() -> Option<PathBuf> {
    APPS_DIR.get().cloned().flatten()
}

/// Reads scenario files and folders with the apps `--apps` names (or the
/// ones near each file).
pub fn catalog(paths: &[PathBuf]) -> scenarist::catalog::Catalog {
    scenarist::catalog::Catalog::load_with_apps(paths, apps_dir())
}

#[derive(Subcommand)]
enum Command {
    /// Check scenario files and report every problem with its location.
    Validate {
        /// Files or directories (default: scenarios/).
        paths: Vec<PathBuf>,
    },
    /// Run one scenario once, with the given input as its trigger.
    Run(run::RunArgs),
    /// Run the scenario tests (`NAME.test.yaml`): mocked HTTP, virtual time, offline.
    Test(test::TestArgs),
    /// Draw a scenario's flow as a Mermaid or Graphviz diagram, or as SVG.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Mermaid)]
        format: GraphFormatArg,
    },
    /// Print the JSON Schema of the scenario language (or of test files, or of app files).
    Schema {
        /// The schema of scenario test files (`NAME.test.yaml`).
        #[arg(long, conflicts_with = "app")]
        tests: bool,
        /// The schema of app files (`apps/NAME.yaml`).
        #[arg(long)]
        app: bool,
    },
    /// Play the whole referral flow offline against local stand-ins.
    Demo(demo::DemoArgs),
    /// The daemon: webhooks, schedules and workers over the durable store.
    Serve(serve::ServeArgs),
    /// Execution history: list, show, retry.
    #[command(subcommand)]
    Executions(executions::ExecutionsCommand),
    /// Continue every execution a dead process left running, every incomplete
    /// one whose retry time has come, every waiting one whose time is over,
    /// and every decided one nobody has taken up.
    Resume {
        #[command(flatten)]
        store: store_arg::StoreArg,
    },
    /// Start a new execution with the trigger of an earlier one.
    Replay {
        id: String,
        #[arg(long, value_enum, default_value_t = run::OutputFormat::Text)]
        output: run::OutputFormat,
        #[command(flatten)]
        store: store_arg::StoreArg,
    },
    /// Delete old finished executions.
    Prune(executions::PruneArgs),
    /// Executions waiting for a review, with their message and how long they wait.
    Approvals(review::ApprovalsArgs),
    /// Approve an execution waiting at an approval step; it goes on at once.
    Approve(review::DecideArgs),
    /// Reject an execution waiting at an approval step.
    Reject(review::DecideArgs),
    /// Send a correlated event: every execution waiting for it (`wait_for`) goes on.
    Emit(events::EmitArgs),
    /// Executions waiting for an event, with the event, key and deadline.
    Waits(events::ListArgs),
    /// Recent events, with the executions each resumed.
    Events(events::ListArgs),
    /// Enrolments, referrals, qualification rate and rewards, with a weekly series.
    Report(report::ReportArgs),
    /// The apps scenarios can use (`uses: APP.ACTION`), or one app's actions.
    Apps(apps::AppsArgs),
    /// Poll triggers: where each watch stands, `reset` to start one again, `poll` to poll now.
    Triggers(triggers::TriggersArgs),
    /// Sign in to a connection's provider (OAuth2 authorization code): the
    /// tokens are sealed into the store.
    Connect(connect::ConnectArgs),
    /// Connections that sign in: list, test, forget, rekey, keygen.
    Credentials(credentials::CredentialsArgs),
    /// One line per scenario: name, trigger, owner, step count.
    List {
        /// Directory of scenarios (default: scenarios/).
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormatArg {
    Mermaid,
    Dot,
    Svg,
}

/// Prints rows as aligned columns (the last one unpadded), to stdout.
pub fn print_columns<const N: usize>(rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N.saturating_sub(1))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            match widths.get(c) {
                Some(width) => line.push_str(&format!("{cell:<width$}  ")),
                None => line.push_str(cell),
            }
        }
        println!("{}", line.trim_end());
    }
}

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_INVALID: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_INVALID } else { 0 });
        }
    };
    let _ = APPS_DIR.set(cli.apps.clone());
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(false, "warn");
    }
    let result = match cli.command {
        Command::Validate { paths } => validate::validate(paths),
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::test(args),
        Command::Graph { file, format } => graph(file, format),
        Command::Schema { tests, app } => {
            match (tests, app) {
                (true, _) => print!("{}", scenarist::schema::test_schema_text()),
                (_, true) => print!("{}", scenarist::schema::app_schema_text()),
                _ => match apps_dir() {
                    None => print!("{}", scenarist::schema::scenario_schema_text()),
                    Some(dir) if !dir.is_dir() => {
                        eprintln!("error: --apps {}: not a folder", dir.display());
                        return ExitCode::from(EXIT_INVALID);
                    }
                    Some(dir) => {
                        let (apps, problems) =
                            scenarist::catalog::apps_for(std::path::Path::new("."), Some(&dir));
                        if !problems.is_empty() {
                            for file in &problems {
                                eprintln!(
                                    "error: {}: {} problem(s); `scenarist validate` shows them",
                                    file.file.display(),
                                    file.diagnostics.len()
                                );
                            }
                            return ExitCode::from(1);
                        }
                        print!("{}", scenarist::schema::scenario_schema_text_with(&apps));
                    }
                },
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { dir } => list::list(dir),
        Command::Apps(args) => apps::apps(args),
        Command::Demo(args) => demo::demo(args),
        Command::Serve(args) => serve::serve(args),
        Command::Executions(command) => executions::executions(command),
        Command::Resume { store } => executions::resume(store),
        Command::Replay { id, output, store } => executions::replay(id, output, store),
        Command::Prune(args) => executions::prune(args),
        Command::Approvals(args) => review::approvals(args),
        Command::Approve(args) => review::decide(args, true),
        Command::Reject(args) => review::decide(args, false),
        Command::Report(args) => report::report(args),
        Command::Emit(args) => events::emit(args),
        Command::Waits(args) => events::waits(args),
        Command::Events(args) => events::events(args),
        Command::Triggers(args) => triggers::triggers(args),
        Command::Connect(args) => connect::connect(args),
        Command::Credentials(args) => credentials::credentials(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

/// Logs go to stderr; `SCENARIST_LOG` takes a tracing filter (default
/// `warn`, `info` for the daemon).
fn init_logging(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCENARIST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn graph(file: PathBuf, format: GraphFormatArg) -> anyhow::Result<ExitCode> {
    let Some(entry) = validate::load_one(&file) else {
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let format = match format {
        GraphFormatArg::Mermaid => scenarist::graph::GraphFormat::Mermaid,
        GraphFormatArg::Dot => scenarist::graph::GraphFormat::Dot,
        GraphFormatArg::Svg => scenarist::graph::GraphFormat::Svg,
    };
    print!(
        "{}",
        scenarist::graph::render(&entry.loaded.scenario, format)
    );
    Ok(ExitCode::SUCCESS)
}

/// `scenarios/` when no path is given.
fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths
    }
}
