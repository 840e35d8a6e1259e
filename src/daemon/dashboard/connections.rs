//! The Connections page: every connection that signs in with OAuth2, its
//! status in the store (`connected`, `needs_reconnect` with the provider's
//! reason, `not_connected`), and the buttons that connect (the redirect flow
//! through this daemon), reconnect and disconnect it. Admin only (the
//! session layer), every form with its CSRF token. The provider sends the
//! browser back to `/ui/connections/NAME/callback`, outside the session
//! layer: the session's cookie is `SameSite=Strict`, which a redirect from
//! the provider's site does not carry; the sign-in is bound instead to the
//! browser that started it by a cookie of its own (`SameSite=Lax`, the
//! random binding kept with the `state`), and each `state` is used once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use base64::Engine as _;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::refused_csrf;
use super::scenarios::unavailable;
use super::view::time;
use super::Visitor;
use crate::daemon::scenarios::Served;
use crate::daemon::Shared;
use crate::engine::Authorization;
use crate::model::OAuth2Grant;
use crate::plan::SignIn;
use crate::store::CredentialRow;

/// How long a started sign-in waits for the provider's answer.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(600);

/// The cookie that binds a sign-in to the browser that started it.
const BINDING_COOKIE: &str = "scenarist_connect";

/// A sign-in started here, by `state`.
struct Pending {
    name: String,
    authorization: Authorization,
    binding: String,
    started: Instant,
}

/// The sign-ins under way in this daemon.
#[derive(Default)]
pub(crate) struct Connecting {
    by_state: Mutex<HashMap<String, Pending>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ListQuery {
    connected: Option<String>,
    forgot: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Every sign-in of the scenarios served, by name, with a plan that uses it.
fn sign_ins(shared: &Shared) -> Vec<(Arc<Served>, SignIn)> {
    let scenarios = shared.scenarios();
    let mut found: Vec<(Arc<Served>, SignIn)> = Vec::new();
    for served in scenarios.by_name.values() {
        for sign_in in served.plan.sign_ins() {
            if !found
                .iter()
                .any(|(_, s)| s.oauth.name == sign_in.oauth.name)
            {
                found.push((Arc::clone(served), sign_in));
            }
        }
    }
    found.sort_by(|a, b| a.1.oauth.name.cmp(&b.1.oauth.name));
    found
}

fn status(sign_in: &SignIn, row: Option<&CredentialRow>) -> &'static str {
    match row {
        _ if !sign_in.oauth.grant.stored() => "per process",
        None => "not_connected",
        Some(r) => r.status.as_str(),
    }
}

/// The connections that need a person, for the banner: `(name, reason)`.
pub(super) async fn needing_reconnect(shared: &Shared) -> Vec<Value> {
    let rows = shared.store.credentials().await.unwrap_or_default();
    rows.iter()
        .filter(|r| r.status == crate::store::CredentialStatus::NeedsReconnect)
        .map(|r| json!({ "name": r.connection, "reason": r.reason }))
        .collect()
}

pub(super) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Query(query): Query<ListQuery>,
) -> Response {
    let rows = match shared.store.credentials().await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&shared, &visitor, e),
    };
    let keyed = shared.config.secret_key.is_some();
    let connections: Vec<Value> = sign_ins(&shared)
        .iter()
        .map(|(served, sign_in)| {
            let row = rows.iter().find(|r| r.connection == sign_in.oauth.name);
            let status = status(sign_in, row);
            let code = sign_in.oauth.grant == OAuth2Grant::AuthorizationCode;
            json!({
                "name": sign_in.oauth.name,
                "scenario": served.plan.name,
                "grant": sign_in.oauth.grant.as_str(),
                "status": status,
                "needs_reconnect": status == "needs_reconnect",
                "scopes": row.map(|r| r.scopes.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| sign_in.oauth.scopes.join(" ")),
                "expires": row.and_then(|r| r.expires_at).map(time),
                "refreshed": row.and_then(|r| r.refreshed_at).map(time),
                "reason": row.and_then(|r| r.reason.clone()),
                "can_connect": keyed && code,
                "connect_label": if row.is_some() { "Reconnect" } else { "Connect" },
                "can_forget": keyed && row.is_some(),
                "csrf": visitor.csrf,
            })
        })
        .collect();
    let flash = match (&query.connected, &query.forgot) {
        (Some(name), _) => Some(format!("`{name}` is connected.")),
        (_, Some(name)) => Some(format!("`{name}`'s tokens are forgotten.")),
        _ => None,
    };
    shared.ui.page(
        &visitor,
        "connections",
        "Connections",
        "connections",
        json!({
            "connections": connections,
            "keyed": keyed,
            "flash": flash,
            "reconnect": needing_reconnect(&shared).await,
        }),
    )
}

fn random_text() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts the redirect flow: the provider's sign-in page, answered here.
pub(super) async fn connect(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !visitor.sent(&form.csrf) {
        return refused_csrf();
    }
    let refuse = |message: String| {
        shared
            .ui
            .message(&visitor, StatusCode::BAD_REQUEST, "Not connected", &message)
    };
    if shared.config.secret_key.is_none() {
        return refuse("This daemon was started without the key of the store's credentials (SCENARIST_SECRET_KEY or --secret-key-file): it cannot keep tokens.".to_owned());
    }
    let Some((served, sign_in)) = sign_ins(&shared)
        .into_iter()
        .find(|(_, s)| s.oauth.name == name)
    else {
        return refuse(format!(
            "No scenario served here uses a connection `{name}` that signs in."
        ));
    };
    let plan = &served.plan;
    if sign_in.oauth.grant != OAuth2Grant::AuthorizationCode {
        return refuse(format!(
            "`{name}` signs in with `grant: {}`: nobody needs to connect it.",
            sign_in.oauth.grant.as_str()
        ));
    }
    let (ctx, redactor) = match crate::engine::env_context(plan, shared.runner.env()) {
        Ok(found) => found,
        Err(e) => return refuse(format!("`{name}` (used by `{}`): {e}", plan.name)),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let redirect = format!(
        "http://{host}/ui/connections/{}/callback",
        urlencoding::encode(&name)
    );
    let authorization = match Authorization::start(&sign_in.oauth, &ctx, &redirect) {
        Ok(a) => a,
        Err(e) => return refuse(e.masked(&redactor)),
    };
    let binding = random_text();
    let url = authorization.url.clone();
    let pending_name = name.clone();
    {
        let mut pending = shared.connecting.by_state.lock().expect("connecting lock");
        pending.retain(|_, p| p.started.elapsed() < SIGN_IN_TIMEOUT);
        pending.insert(
            authorization.state.clone(),
            Pending {
                name,
                authorization,
                binding: binding.clone(),
                started: Instant::now(),
            },
        );
    }
    // A page that moves on by itself, not a redirect: the dashboard's CSP
    // allows forms to submit only to the dashboard (`form-action 'self'`),
    // which browsers apply to a form's redirects too.
    let shown = html_escape(&url);
    let mut response = super::html_response(
        StatusCode::OK,
        format!(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url={shown}\">\
             <title>Signing in · scenarist</title><link rel=stylesheet href=/ui/assets/style.css>\
             <main><p>Signing in to the provider of <strong>{}</strong>… \
             <a id=continue href=\"{shown}\">Continue</a></p></main>",
            html_escape(&pending_name)
        ),
    );
    let cookie = format!(
        "{BINDING_COOKIE}={binding}; Path=/ui/connections; HttpOnly; SameSite=Lax; Max-Age={}",
        SIGN_IN_TIMEOUT.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn binding_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == BINDING_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The provider's answer: the code exchanged, the tokens sealed, the
/// executions that waited for the connection freed.
pub(super) async fn callback(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let visitor = Visitor::default();
    let refuse = |status: StatusCode, message: &str| {
        shared
            .ui
            .message(&visitor, status, "Not connected", message)
    };
    // Each state is used once, whatever comes of it.
    let pending = query.state.as_deref().and_then(|s| {
        shared
            .connecting
            .by_state
            .lock()
            .expect("connecting lock")
            .remove(s)
    });
    let Some(pending) = pending.filter(|p| p.started.elapsed() < SIGN_IN_TIMEOUT) else {
        return refuse(StatusCode::BAD_REQUEST, "This sign-in is not one this daemon started, or it is over: start again from Connections.");
    };
    let bound = binding_cookie(&headers)
        .is_some_and(|b| crate::daemon::dashboard::same(b.as_bytes(), pending.binding.as_bytes()));
    if !bound || pending.name != name {
        return refuse(
            StatusCode::FORBIDDEN,
            "This sign-in was started in another browser: start again from Connections.",
        );
    }
    if let Some(error) = &query.error {
        let said = match &query.error_description {
            Some(d) => format!("{error}: {d}"),
            None => error.clone(),
        };
        return refuse(
            StatusCode::OK,
            &format!("The provider did not connect `{name}`: {said}"),
        );
    }
    let Some(code) = query.code.as_deref() else {
        return refuse(StatusCode::BAD_REQUEST, "The answer carries no code.");
    };
    let (Some(key), Some((served, sign_in))) = (
        shared.config.secret_key.as_ref(),
        sign_ins(&shared)
            .into_iter()
            .find(|(_, s)| s.oauth.name == name),
    ) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "This connection is no longer served here.",
        );
    };
    let plan = &served.plan;
    let (ctx, redactor) = match crate::engine::env_context(plan, shared.runner.env()) {
        Ok(found) => found,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let engine = shared.runner.engine();
    let granted = engine
        .exchange_code(
            &sign_in.oauth,
            &sign_in.allowance,
            &ctx,
            &pending.authorization,
            code,
        )
        .await;
    let granted = match granted {
        Ok(g) => g,
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, &e.masked(&redactor)),
    };
    let grant = sign_in.oauth.grant.as_str();
    match crate::credentials::connected(shared.store.as_ref(), key, &name, grant, &granted).await {
        Ok(woken) => {
            engine.forget_tokens(&name);
            tracing::info!(connection = %name, woken, "connection connected from the dashboard");
            if woken > 0 {
                shared.wake.notify_one();
            }
            let mut response = Redirect::to(&format!(
                "/ui/connections?connected={}",
                urlencoding::encode(&name)
            ))
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{BINDING_COOKIE}=; Path=/ui/connections; HttpOnly; SameSite=Lax; Max-Age=0"
            )) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The store did not keep the tokens: {e}"),
        ),
    }
}

/// Disconnect: the tokens are deleted; the connection must be connected again.
pub(super) async fn forget(
    State(shared): State<Arc<Shared>>,
    Extension(visitor): Extension<Visitor>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !visitor.sent(&form.csrf) {
        return refused_csrf();
    }
    match shared.store.forget_credential(&name).await {
        Ok(_) => {
            shared.runner.engine().forget_tokens(&name);
            Redirect::to(&format!(
                "/ui/connections?forgot={}",
                urlencoding::encode(&name)
            ))
            .into_response()
        }
        Err(e) => unavailable(&shared, &visitor, e),
    }
}
