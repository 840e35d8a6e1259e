//! `scenarist apps`: the apps scenarios can use, and one app's actions with
//! their inputs (from each action's schema), method and path.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use scenarist::catalog::apps_for;
use scenarist::diagnostic::did_you_mean;
use scenarist::plan::app::AppPlan;
use serde_json::Value;

use super::EXIT_FAILED;

#[derive(Args)]
pub struct AppsArgs {
    #[command(subcommand)]
    command: Option<AppsCommand>,
    /// The scenarios' folder whose `apps/` (inside and beside it) are read.
    #[arg(long, global = true, default_value = "scenarios")]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum AppsCommand {
    /// One app's actions and their inputs, auth and limits.
    Show { name: String },
    /// Write an app file from another description of an API.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// From an OpenAPI 3.0/3.1 or Swagger 2.0 description, JSON or YAML.
    Openapi(super::import::OpenApiArgs),
}

pub fn apps(args: AppsArgs) -> anyhow::Result<ExitCode> {
    if let Some(AppsCommand::Import(ImportCommand::Openapi(import))) = args.command {
        return super::import::openapi(import);
    }
    let (apps, problems) = apps_for(&args.dir, super::apps_dir().as_deref());
    for file in &problems {
        for diagnostic in &file.diagnostics {
            eprintln!("{}\n", diagnostic.render(file.source.as_deref()));
        }
    }
    match &args.command {
        None => {
            let mut rows = vec![[
                "APP".to_owned(),
                "ACTIONS AND WATCHES".to_owned(),
                "FROM".to_owned(),
                "DESCRIPTION".to_owned(),
            ]];
            for app in apps.values() {
                rows.push([
                    app.name.clone(),
                    app.actions
                        .keys()
                        .chain(app.triggers.keys())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" "),
                    from(app),
                    app.description.clone().unwrap_or_default(),
                ]);
            }
            super::print_columns(&rows);
        }
        Some(AppsCommand::Show { name }) => {
            let Some(app) = apps.get(name) else {
                let hint = did_you_mean(name, apps.keys().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                eprintln!("error: no app `{name}`{hint}");
                return Ok(ExitCode::from(EXIT_FAILED));
            };
            show_app(app);
        }
        Some(AppsCommand::Import(_)) => unreachable!("handled above"),
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn from(app: &AppPlan) -> String {
    if app.builtin {
        "built-in".to_owned()
    } else {
        app.file.display().to_string()
    }
}

fn show_app(app: &AppPlan) {
    println!("{} ({})", app.name, from(app));
    if let Some(description) = &app.description {
        println!("{description}");
    }
    if !app.env.is_empty() {
        let env: Vec<String> = app
            .env
            .iter()
            .map(|e| {
                let secret = if e.secret { " (secret)" } else { "" };
                match &e.default {
                    Some(default) => format!("{}{secret} (optional, default {default})", e.name),
                    None => format!("{}{secret}", e.name),
                }
            })
            .collect();
        println!("env: {}", env.join(", "));
    }
    if let Some(rate) = app.rate_limit {
        println!("rate limit: {rate}");
    }
    if let Some(auth) = &app.auth {
        let kind = match auth {
            scenarist::plan::AuthPlan::Bearer(_) => "bearer token".to_owned(),
            scenarist::plan::AuthPlan::Basic(..) => "basic (user and password)".to_owned(),
            scenarist::plan::AuthPlan::OAuth2(o) => format!("OAuth2 ({})", o.grant.as_str()),
            scenarist::plan::AuthPlan::ApiKey { name, place, .. } => {
                format!(
                    "API key in the {} `{name}`",
                    match place {
                        scenarist::model::KeyPlace::Header => "header",
                        scenarist::model::KeyPlace::Query => "query parameter",
                    }
                )
            }
        };
        println!("auth: {kind}");
    }
    let watches = app
        .triggers
        .iter()
        .map(|(name, t)| (name, &t.action, Some(t)));
    let actions = app.actions.iter().map(|(name, a)| (name, a, None));
    for (name, action, watch) in actions.chain(watches) {
        println!();
        println!(
            "{}.{name}  {} {}{}",
            app.name,
            action.method.as_str(),
            action.path_text,
            match watch {
                Some(w) => format!(
                    "  (a watch: `trigger: {{ poll: {{ uses: {}.{name} }} }}`, items {}, id {})",
                    app.name, w.items, w.id
                ),
                None => String::new(),
            }
        );
        if let Some(description) = &action.description {
            println!("  {description}");
        }
        let required: Vec<&str> = action
            .schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let properties = action.schema.get("properties").and_then(Value::as_object);
        for (field, schema) in properties.into_iter().flatten() {
            let kind = match schema.get("type") {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Array(ts)) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" | "),
                _ => "any".to_owned(),
            };
            let mut notes = Vec::new();
            if required.contains(&field.as_str()) {
                notes.push("required".to_owned());
            }
            if let Some(default) = schema.get("default") {
                notes.push(format!("default {default}"));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            println!("  with.{field}: {kind}{notes}");
        }
    }
}
