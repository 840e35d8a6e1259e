//! `scenarist report`: what the referral program did, from the business
//! events the scenarios recorded and the executions that need a person.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Utc;
use clap::{Args, ValueEnum};
use scenarist::model::Duration;
use scenarist::report::{self, ReportRequest};

use super::store_arg::{runtime, StoreArg};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

#[derive(Args)]
pub struct ReportArgs {
    /// How far back from now, e.g. `30d`, `7d`, `12h`.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    since: Duration,
    /// Only what this scenario recorded.
    #[arg(long)]
    scenario: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// Also write the weekly series as an SVG bar chart to this file.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArg,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<Duration>().map_err(|e| e.to_string())
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    let until = Utc::now();
    let since = args
        .since
        .before(until)
        .context("--since reaches back before any date this tool knows: give a shorter period")?;
    let request = ReportRequest {
        since,
        until,
        scenario: args.scenario.clone(),
    };
    let scenario = args.scenario.as_deref();
    let (events, counts) = runtime()?.block_on(async {
        let events = store.business_events(since, until, scenario).await?;
        let counts = store.report_counts(since, until, scenario).await?;
        anyhow::Ok((events, counts))
    })?;
    let built = report::build(&request, &events, counts);
    if let Some(path) = &args.chart {
        std::fs::write(path, report::svg::chart(&built))
            .with_context(|| format!("cannot write the chart to {}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    let text = match args.format {
        ReportFormat::Table => report::render::table(&built),
        ReportFormat::Json => report::render::json(&built),
        ReportFormat::Csv => report::render::csv(&built),
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
