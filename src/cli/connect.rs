//! `scenarist connect NAME`: a person signs in to a connection's provider
//! (OAuth2 authorization code, PKCE S256, `state`). The authorization URL is
//! printed; the answer comes back to a loopback redirect
//! (`http://127.0.0.1:PORT/callback`, the address to register with the
//! provider); the code is exchanged there and then, and the tokens are
//! sealed into the store before the browser is told it worked. Executions
//! that stopped for want of the connection go on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use clap::Args;
use handlebars::Context;
use scenarist::credentials::{self, SecretKey};
use scenarist::engine::{Authorization, Engine, Redactor};
use scenarist::plan::SignIn;
use scenarist::store::Store;
use tokio::sync::oneshot;

use super::store_arg::{runtime, StoreArg};
use super::{EXIT_FAILED, EXIT_INVALID};

#[derive(Args)]
pub struct ConnectArgs {
    /// The connection (`scenarist credentials list` names them).
    name: String,
    /// Directory of scenarios (default: scenarios/).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The port of the loopback redirect, http://127.0.0.1:PORT/callback
    /// (register that address with the provider; 0: any free port).
    #[arg(long, default_value_t = 8976)]
    port: u16,
    /// How long to wait for the sign-in.
    #[arg(long, default_value = "5m", value_parser = super::serve::parse_duration)]
    timeout: scenarist::model::Duration,
    #[command(flatten)]
    store: StoreArg,
}

/// Everything the callback needs to finish the sign-in.
struct Pending {
    engine: Engine,
    store: Arc<dyn Store>,
    key: SecretKey,
    sign_in: SignIn,
    ctx: Context,
    redactor: Redactor,
    authorization: Authorization,
    done: Mutex<Option<oneshot::Sender<Result<String, String>>>>,
}

pub fn connect(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let (plan, sign_in) = match super::credentials::sign_in_named(args.dir.clone(), &args.name) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let name = &args.name;
    if sign_in.oauth.grant != scenarist::model::OAuth2Grant::AuthorizationCode {
        eprintln!(
            "error: `{name}` signs in with `grant: {}`: nobody needs to sign in (only `authorization_code` connections are connected)",
            sign_in.oauth.grant.as_str()
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let env = std::env::vars().collect();
    let (ctx, redactor) = match scenarist::engine::env_context(&plan, &env) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: `{name}` (used by `{}`): {e}", plan.name);
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let key = args.store.key.required("`connect`")?;
    let runner = args.store.runner()?;
    let store = runner.store().clone();
    let engine = runner.engine().clone();
    runtime()?.block_on(async move {
        credentials::check(store.as_ref(), Some(&key)).await?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on 127.0.0.1:{}: {e} (choose another --port)",
                    args.port
                )
            })?;
        let redirect = format!("http://{}/callback", listener.local_addr()?);
        let authorization = match Authorization::start(&sign_in.oauth, &ctx, &redirect) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {}", e.masked(&redactor));
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        };
        println!(
            "Open this address in a browser and sign in to `{name}`:\n\n  {}\n",
            authorization.url
        );
        println!(
            "Waiting for the sign-in at {redirect} (for {}) ...",
            args.timeout
        );
        let (done, finished) = oneshot::channel();
        let pending = Arc::new(Pending {
            engine,
            store,
            key,
            sign_in,
            ctx,
            redactor,
            authorization,
            done: Mutex::new(Some(done)),
        });
        let app = axum::Router::new()
            .route("/callback", axum::routing::get(callback))
            .with_state(pending);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        let outcome = tokio::time::timeout(args.timeout.as_std(), finished).await;
        // Lets the browser have its page before the server goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop.send(());
        let _ = server.await;
        match outcome {
            Ok(Ok(Ok(message))) => {
                println!("✔ {message}");
                Ok(ExitCode::SUCCESS)
            }
            Ok(Ok(Err(message))) => {
                eprintln!("✘ {message}");
                Ok(ExitCode::from(EXIT_FAILED))
            }
            Ok(Err(_)) => Ok(ExitCode::from(EXIT_FAILED)),
            Err(_) => {
                eprintln!(
                    "✘ no sign-in came back within {}; nothing was changed",
                    args.timeout
                );
                Ok(ExitCode::from(EXIT_FAILED))
            }
        }
    })
}

async fn callback(
    State(pending): State<Arc<Pending>>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    use axum::http::StatusCode;
    let name = &pending.sign_in.oauth.name;
    if query.get("state") != Some(&pending.authorization.state) {
        return (
            StatusCode::BAD_REQUEST,
            page("Not this sign-in", "This answer does not carry the sign-in scenarist is waiting for (its state does not match). Start again with scenarist connect."),
        );
    }
    let finish = |result: Result<String, String>| {
        if let Some(done) = pending.done.lock().expect("done lock").take() {
            let _ = done.send(result);
        }
    };
    if let Some(error) = query.get("error") {
        let said = match query.get("error_description") {
            Some(d) => format!("{error}: {d}"),
            None => error.clone(),
        };
        let message = format!("the provider did not connect `{name}`: {said}");
        finish(Err(message.clone()));
        return (StatusCode::OK, page("Not connected", &message));
    }
    let Some(code) = query.get("code") else {
        return (
            StatusCode::BAD_REQUEST,
            page("Not connected", "The answer carries no code."),
        );
    };
    let granted = pending
        .engine
        .exchange_code(
            &pending.sign_in.oauth,
            &pending.sign_in.allowance,
            &pending.ctx,
            &pending.authorization,
            code,
        )
        .await;
    let result = match granted {
        Err(e) => Err(format!(
            "`{name}` was not connected: {}",
            e.masked(&pending.redactor)
        )),
        Ok(granted) => {
            let grant = pending.sign_in.oauth.grant.as_str();
            match credentials::connected(
                pending.store.as_ref(),
                &pending.key,
                name,
                grant,
                &granted,
            )
            .await
            {
                Err(e) => Err(format!("`{name}` was not connected: the store: {e}")),
                Ok(woken) => Ok(format!(
                    "`{name}` connected{}{}{}",
                    if granted.scopes.is_empty() {
                        String::new()
                    } else {
                        format!(" (scopes: {})", granted.scopes)
                    },
                    granted
                        .expires_at
                        .map(|at| format!(
                            "; the access token expires at {}",
                            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ))
                        .unwrap_or_default(),
                    if woken > 0 {
                        format!("; {woken} execution(s) waiting for it go on")
                    } else {
                        String::new()
                    },
                )),
            }
        }
    };
    let shown = match &result {
        Ok(m) => page("Connected", &format!("{m}. You can close this tab.")),
        Err(m) => page("Not connected", m),
    };
    finish(result);
    (StatusCode::OK, shown)
}

fn page(title: &str, message: &str) -> Html<String> {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>scenarist: {t}</title><h1>{t}</h1><p>{m}</p>",
        t = escape(title),
        m = escape(message)
    ))
}
