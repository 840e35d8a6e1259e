//! `scenarist test`: runs the scenario tests (`NAME.test.yaml`) found in the
//! given files and folders; exit 0 when every case passes, 1 when one fails,
//! 2 for an invalid test file or scenario.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use scenarist::testing;

use super::store_arg::runtime;
use super::{EXIT_FAILED, EXIT_INVALID};

#[derive(Args)]
pub struct TestArgs {
    /// Test files or folders searched for `*.test.yaml` (default: scenarios/).
    paths: Vec<PathBuf>,
    /// Only the cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    #[arg(long, value_enum, default_value_t = TestFormat::Text)]
    format: TestFormat,
    /// Print a test case built from this stored execution (its trigger, its
    /// answers as mocks, what it did as expectations) instead of running tests.
    #[arg(long, value_name = "EXECUTION_ID")]
    record: Option<String>,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TestFormat {
    Text,
    Json,
    Junit,
}

pub fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    if let Some(id) = &args.record {
        let runner = args.store.runner()?;
        let text = runtime()?.block_on(async {
            let id = runner.resolve(id).await?;
            testing::record(runner.store().clone(), id)
                .await
                .map_err(anyhow::Error::msg)
        })?;
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let paths = super::default_paths(args.paths);
    let files = match testing::find_test_files(&paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    if files.is_empty() {
        eprintln!(
            "error: no test files (NAME.test.yaml) in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let mut prepared = Vec::new();
    let mut invalid = 0;
    for file in &files {
        match testing::prepare(file, super::apps_dir().as_deref()) {
            Ok(p) => prepared.push(p),
            Err(problems) => {
                invalid += 1;
                for (diagnostic, source) in problems {
                    eprintln!("{}\n", diagnostic.render(source.as_deref()));
                }
            }
        }
    }
    if invalid > 0 {
        eprintln!(
            "{invalid} invalid test file{}: nothing was run",
            if invalid == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let results = runtime()?.block_on(async {
        let mut results = Vec::new();
        for file in &prepared {
            results.push(testing::run_file(file, args.filter.as_deref()).await);
        }
        results
    });
    let report = match args.format {
        TestFormat::Text => testing::text(&results),
        TestFormat::Json => testing::json(&results),
        TestFormat::Junit => testing::junit(&results),
    };
    print!("{report}");
    if args.format == TestFormat::Json {
        println!();
    }
    let failed = results.iter().flat_map(|f| &f.cases).any(|c| !c.passed());
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
