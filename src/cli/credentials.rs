//! `scenarist credentials`: the connections of a folder that keep tokens in
//! the store (`list`), a sign-in tried now (`test`), tokens forgotten
//! (`forget`), every credential moved to a new key (`rekey`), and a new key
//! (`keygen`). Every command but `keygen` first checks that the key given
//! opens the store's credentials, and changes nothing when it does not.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use scenarist::credentials::{self, SecretKey};
use scenarist::plan::{Plan, SignIn};
use scenarist::store::CredentialRow;
use serde_json::json;

use super::run::OutputFormat;
use super::store_arg::{runtime, StoreArg};
use super::{EXIT_FAILED, EXIT_INVALID};

#[derive(Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    command: CredentialsCommand,
}

#[derive(Subcommand)]
enum CredentialsCommand {
    /// Every connection that signs in with OAuth2: grant, status, scopes, expiry, last refresh.
    List {
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Sign in now as a request would (refreshing the token if it is due).
    Test {
        name: String,
        #[arg(long)]
        dir: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Delete a connection's tokens; it must be connected again.
    Forget {
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Re-seal every credential under a new key, all or nothing (the old key
    /// is the one given as usual).
    Rekey {
        /// The file holding the new key.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Make a new key (32 random bytes, base64).
    Keygen {
        /// Write it to this file (readable by its owner only) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub fn credentials(args: CredentialsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CredentialsCommand::List { dir, output, store } => list(dir, output, store),
        CredentialsCommand::Test { name, dir, store } => test(&name, dir, store),
        CredentialsCommand::Forget { name, store } => {
            let key = store.key.required("`credentials forget`")?;
            let opened = store.open()?;
            let gone = runtime()?.block_on(async {
                credentials::check(opened.as_ref(), Some(&key)).await?;
                anyhow::Ok(opened.forget_credential(&name).await?)
            })?;
            if gone {
                println!("✔ `{name}`'s tokens are forgotten; it must be connected again");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: the store keeps no tokens for `{name}`");
                Ok(ExitCode::from(EXIT_FAILED))
            }
        }
        CredentialsCommand::Rekey {
            new_key_file,
            store,
        } => {
            let old = store.key.required("`credentials rekey`")?;
            let new = SecretKey::from_file(&new_key_file)?;
            let opened = store.open()?;
            let moved = runtime()?.block_on(credentials::rekey(opened.as_ref(), &old, &new))?;
            println!(
                "✔ {moved} credential(s) re-sealed under key {}; give that key from now on (SCENARIST_SECRET_KEY or --secret-key-file)",
                new.id()
            );
            Ok(ExitCode::SUCCESS)
        }
        CredentialsCommand::Keygen { out } => {
            let key = SecretKey::generate();
            match out {
                None => println!("{}", key.encoded()),
                Some(path) => {
                    write_private(&path, &key.encoded())?;
                    eprintln!("✔ key {} written to {}", key.id(), path.display());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    writeln!(file, "{text}")?;
    Ok(())
}

/// Every sign-in of the folder's valid scenarios, by name, with a plan that uses it.
pub(super) fn sign_ins(dir: Option<PathBuf>) -> Result<Vec<(Arc<Plan>, SignIn)>, ExitCode> {
    let catalog = super::triggers::folder(dir)?;
    let mut found: Vec<(Arc<Plan>, SignIn)> = Vec::new();
    for entry in catalog.entries {
        let plan = Arc::new(entry.plan);
        for sign_in in plan.sign_ins() {
            if !found
                .iter()
                .any(|(_, s)| s.oauth.name == sign_in.oauth.name)
            {
                found.push((Arc::clone(&plan), sign_in));
            }
        }
    }
    found.sort_by(|a, b| a.1.oauth.name.cmp(&b.1.oauth.name));
    Ok(found)
}

/// The sign-in named `name`, or a message naming the ones there are.
pub(super) fn sign_in_named(
    dir: Option<PathBuf>,
    name: &str,
) -> Result<(Arc<Plan>, SignIn), ExitCode> {
    let all = sign_ins(dir)?;
    let names: Vec<String> = all.iter().map(|(_, s)| s.oauth.name.clone()).collect();
    match all.into_iter().find(|(_, s)| s.oauth.name == name) {
        Some(found) => Ok(found),
        None => {
            let known = if names.is_empty() {
                "no scenario here uses a connection that signs in with OAuth2".to_owned()
            } else {
                format!("the connections that sign in are: {}", names.join(", "))
            };
            let hint = scenarist::diagnostic::did_you_mean(name, names.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            eprintln!("error: no connection named `{name}` signs in with OAuth2 ({known}){hint}");
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".to_owned())
}

/// A connection's status as `list` and the dashboard show it.
pub fn status(sign_in: &SignIn, row: Option<&CredentialRow>) -> &'static str {
    match row {
        _ if !sign_in.oauth.grant.stored() => "per process",
        None => "not_connected",
        Some(r) => r.status.as_str(),
    }
}

fn list(dir: Option<PathBuf>, output: OutputFormat, store: StoreArg) -> anyhow::Result<ExitCode> {
    let all = match sign_ins(dir) {
        Ok(all) => all,
        Err(code) => return Ok(code),
    };
    let key = store.key.key()?;
    let opened = store.open()?;
    let rows = runtime()?.block_on(async {
        credentials::check(opened.as_ref(), key.as_ref()).await?;
        anyhow::Ok(opened.credentials().await?)
    })?;
    let mut listed = Vec::new();
    for (_, sign_in) in &all {
        let row = rows.iter().find(|r| r.connection == sign_in.oauth.name);
        listed.push(json!({
            "name": sign_in.oauth.name,
            "grant": sign_in.oauth.grant.as_str(),
            "status": status(sign_in, row),
            "scopes": row.map(|r| r.scopes.clone()).unwrap_or_else(|| sign_in.oauth.scopes.join(" ")),
            "expires_at": row.and_then(|r| r.expires_at),
            "refreshed_at": row.and_then(|r| r.refreshed_at),
            "refreshes": row.map_or(0, |r| r.refreshes),
            "reason": row.and_then(|r| r.reason.clone()),
        }));
    }
    for row in rows
        .iter()
        .filter(|r| !all.iter().any(|(_, s)| s.oauth.name == r.connection))
    {
        listed.push(json!({
            "name": row.connection, "grant": row.grant, "status": row.status.as_str(),
            "scopes": row.scopes, "expires_at": row.expires_at, "refreshed_at": row.refreshed_at,
            "refreshes": row.refreshes, "reason": row.reason, "unused": true,
        }));
    }
    if output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        println!("no scenario here uses a connection that signs in with OAuth2");
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value, k: &str| match &v[k] {
        serde_json::Value::String(s) if !s.is_empty() => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(_) => "-".to_owned(),
        other => other.to_string(),
    };
    let mut table = vec![[
        "CONNECTION".to_owned(),
        "GRANT".to_owned(),
        "STATUS".to_owned(),
        "SCOPES".to_owned(),
        "EXPIRES".to_owned(),
        "REFRESHED".to_owned(),
        "NOTE".to_owned(),
    ]];
    for v in &listed {
        let expires: Option<DateTime<Utc>> = serde_json::from_value(v["expires_at"].clone())
            .ok()
            .flatten();
        let refreshed: Option<DateTime<Utc>> = serde_json::from_value(v["refreshed_at"].clone())
            .ok()
            .flatten();
        let note = match (&v["reason"], v.get("unused")) {
            (serde_json::Value::String(reason), _) => reason.clone(),
            (_, Some(_)) => "no scenario here uses it".to_owned(),
            _ => String::new(),
        };
        table.push([
            text(v, "name"),
            text(v, "grant"),
            text(v, "status"),
            text(v, "scopes"),
            time(expires),
            time(refreshed),
            note,
        ]);
    }
    super::print_columns(&table);
    Ok(ExitCode::SUCCESS)
}

fn test(name: &str, dir: Option<PathBuf>, store: StoreArg) -> anyhow::Result<ExitCode> {
    let (plan, sign_in) = match sign_in_named(dir, name) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let env = std::env::vars().collect();
    let (ctx, redactor) = match scenarist::engine::env_context(&plan, &env) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: `{name}` (used by `{}`): {e}", plan.name);
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let key = store.key.key()?;
    let runner = store.runner()?;
    let signed = runtime()?.block_on(async {
        credentials::check(runner.store().as_ref(), key.as_ref()).await?;
        anyhow::Ok(runner.engine().sign_in_now(&sign_in, &ctx).await)
    })?;
    match signed {
        Ok(()) => {
            println!("✔ `{name}` signs in");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("✘ `{name}`: {}", e.masked(&redactor));
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}
