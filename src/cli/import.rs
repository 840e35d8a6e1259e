//! `scenarist apps import openapi SPEC`: the file is read here, converted by
//! the library (`scenarist::import::openapi`), checked by loading it as an
//! app, and written (or printed) only when it loads.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use scenarist::import::openapi::{self, Options};

use super::{EXIT_FAILED, EXIT_INVALID};

#[derive(Args)]
pub struct OpenApiArgs {
    /// The description: a .json, .yaml or .yml file.
    spec: PathBuf,
    /// The app's name (default: from the description's title).
    #[arg(long)]
    name: Option<String>,
    /// Import the operations with this tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Import this operation, by operationId or action name (repeatable).
    #[arg(long = "operation", value_name = "ID")]
    operations: Vec<String>,
    /// Import the operations under this path prefix, e.g. /v1/customers (repeatable).
    #[arg(long = "path", value_name = "PREFIX")]
    paths: Vec<String>,
    /// Write the app here (default: print it).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn openapi(args: OpenApiArgs) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(&args.spec) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.spec.display());
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let source = args
        .spec
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // An app file is named after its app: `--out apps/stripe.yaml` names it `stripe`.
    let name = args.name.or_else(|| {
        args.out
            .as_ref()
            .and_then(|o| o.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
    });
    let options = Options {
        name,
        tags: args.tags,
        operations: args.operations,
        paths: args.paths,
        source,
    };
    let imported = match openapi::parse(&text).and_then(|root| openapi::import(&root, &options)) {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("error: {}: {e}", args.spec.display());
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let check_path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.yaml", imported.name)));
    if let Err(problems) = scenarist::load::app::load_app_str(&check_path, imported.yaml.clone())
        .map_err(|d| {
            d.iter()
                .map(|d| d.render(Some(&imported.yaml)))
                .collect::<Vec<_>>()
        })
        .and_then(|loaded| {
            scenarist::plan::app::compile_app(&loaded)
                .map(drop)
                .map_err(|d| d.iter().map(|d| d.render(Some(&imported.yaml))).collect())
        })
    {
        eprintln!(
            "error: the imported app does not validate (a bug of the importer):\n{}",
            problems.join("\n")
        );
        return Ok(ExitCode::from(EXIT_FAILED));
    }
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &imported.yaml)?;
            eprintln!(
                "✔ {} action(s) of `{}` written to {}",
                imported.actions,
                imported.name,
                path.display()
            );
        }
        None => print!("{}", imported.yaml),
    }
    Ok(ExitCode::SUCCESS)
}
