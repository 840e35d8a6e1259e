//! The dashboard: HTML pages under `/ui`, rendered on the server from
//! Handlebars templates compiled into the binary, with one stylesheet and one
//! small script (live updates) embedded too. Every page reads without
//! JavaScript; every form that changes something carries a CSRF token.
//!
//! What it shows comes from the store, where secrets were masked before
//! anything was written, and from the scenario files (templates, never
//! values). It works the same on every store backend: all it reads goes
//! through the `Store` trait.

mod access;
mod connections;
mod execution;
mod executions;
mod inbox;
mod report;
mod scenarios;
mod view;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use handlebars::Handlebars;
use serde_json::{json, Value};

pub(crate) use access::same;
pub(super) use access::Visitor;
pub(crate) use connections::Connecting;

use super::Shared;

/// The templates, compiled once when the daemon starts, and the key that
/// signs sessions and CSRF tokens.
pub(crate) struct Ui {
    templates: Handlebars<'static>,
    keys: access::Keys,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("templates/layout.hbs")),
    ("login", include_str!("templates/login.hbs")),
    ("message", include_str!("templates/message.hbs")),
    ("scenarios", include_str!("templates/scenarios.hbs")),
    ("scenario", include_str!("templates/scenario.hbs")),
    ("filters", include_str!("templates/filters.hbs")),
    ("executions", include_str!("templates/executions.hbs")),
    ("retried", include_str!("templates/retried.hbs")),
    ("execution", include_str!("templates/execution.hbs")),
    (
        "execution_body",
        include_str!("templates/execution_body.hbs"),
    ),
    ("decide", include_str!("templates/decide.hbs")),
    ("approvals", include_str!("templates/approvals.hbs")),
    ("waits", include_str!("templates/waits.hbs")),
    ("report", include_str!("templates/report.hbs")),
    ("connections", include_str!("templates/connections.hbs")),
    (
        "reconnect_banner",
        include_str!("templates/reconnect_banner.hbs"),
    ),
];

const STYLE: &str = include_str!("assets/style.css");
const LIVE_JS: &str = include_str!("assets/live.js");

impl Ui {
    pub fn new(admin_token: Option<&str>) -> Ui {
        let mut templates = Handlebars::new();
        for (name, text) in TEMPLATES {
            templates
                .register_template_string(name, *text)
                .unwrap_or_else(|e| panic!("the embedded template {name} is invalid: {e}"));
        }
        Ui {
            templates,
            keys: access::Keys::new(admin_token),
        }
    }

    /// A whole page: `template` rendered with `data` (plus the visitor's
    /// CSRF token), inside the layout.
    pub(super) fn page(
        &self,
        visitor: &Visitor,
        nav: &str,
        title: &str,
        template: &str,
        mut data: Value,
    ) -> Response {
        self.page_with(StatusCode::OK, visitor, nav, title, template, &mut data)
    }

    pub(super) fn page_with(
        &self,
        status: StatusCode,
        visitor: &Visitor,
        nav: &str,
        title: &str,
        template: &str,
        data: &mut Value,
    ) -> Response {
        if let Value::Object(map) = data {
            map.insert("csrf".to_owned(), json!(visitor.csrf));
        }
        let content = match self.templates.render(template, data) {
            Ok(html) => html,
            Err(e) => return broken(template, e),
        };
        let live = data.get("live").and_then(Value::as_bool).unwrap_or(false);
        let frame = json!({
            "title": title,
            "nav": nav,
            "content": content,
            "csrf": visitor.csrf,
            "signed_in": visitor.signed_in,
            "live": live,
        });
        match self.templates.render("layout", &frame) {
            Ok(html) => html_response(status, html),
            Err(e) => broken("layout", e),
        }
    }

    /// A fragment (no layout): what live updates swap in.
    pub(super) fn fragment(&self, template: &str, data: &Value) -> Response {
        match self.templates.render(template, data) {
            Ok(html) => html_response(StatusCode::OK, html),
            Err(e) => broken(template, e),
        }
    }

    /// A page that only says something (an error, a refusal).
    pub(super) fn message(
        &self,
        visitor: &Visitor,
        status: StatusCode,
        heading: &str,
        message: &str,
    ) -> Response {
        let kind = if status.is_success() { "ok" } else { "error" };
        let mut data = json!({ "heading": heading, "message": message, "kind": kind });
        self.page_with(status, visitor, "", heading, "message", &mut data)
    }
}

fn broken(template: &str, e: handlebars::RenderError) -> Response {
    tracing::error!(template, error = %e, "a dashboard page cannot be rendered");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "this page cannot be rendered; the daemon's log says why",
    )
        .into_response()
}

/// Headers every page carries: nothing cached, nothing framed, scripts
/// only from this daemon.
pub(super) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    let set = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Says how long the daemon spent on a page (`Server-Timing: app;dur=MS`),
/// which browsers' developer tools show and the dashboard benchmark reads.
async fn server_timing(request: axum::extract::Request, next: middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// `/ui` and everything under it; `/` redirects there.
pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let pages = Router::new()
        .route("/ui", get(scenarios::list))
        .route("/ui/scenarios", get(scenarios::list))
        .route("/ui/scenarios/{name}", get(scenarios::show))
        .route("/ui/executions", get(executions::list))
        .route("/ui/executions/retry", post(executions::retry_matching))
        .route("/ui/executions/{id}", get(execution::show))
        .route("/ui/executions/{id}/live", get(execution::live))
        .route("/ui/executions/{id}/retry", post(execution::retry))
        .route("/ui/executions/{id}/replay", post(execution::replay))
        .route("/ui/executions/{id}/decide", post(inbox::decide))
        .route("/ui/approvals", get(inbox::approvals))
        .route("/ui/waits", get(inbox::waits))
        .route("/ui/report", get(report::show))
        .route("/ui/report.csv", get(report::csv))
        .route("/ui/connections", get(connections::list))
        .route("/ui/connections/{name}/connect", post(connections::connect))
        .route("/ui/connections/{name}/forget", post(connections::forget))
        .route("/ui/logout", post(access::logout))
        .route_layer(middleware::from_fn_with_state(shared, access::session))
        .route_layer(middleware::from_fn(server_timing));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/login", get(access::login_page).post(access::login))
        // Outside the session layer: see `connections.rs`.
        .route(
            "/ui/connections/{name}/callback",
            get(connections::callback),
        )
        .route(
            "/ui/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/ui/assets/live.js",
            get(|| async { asset("text/javascript; charset=utf-8", LIVE_JS) }),
        )
        .merge(pages)
}
