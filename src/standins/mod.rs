//! Stand-ins: small, in-process imitations of the systems around a referral
//! engine, so the demo and the tests run offline with no account anywhere.
//!
//! They are NOT the real APIs. The referral engine is shaped like Referral
//! Factory's public API v2 (Bearer token, `POST /api/v2/users`,
//! `GET /api/v2/users/{identifier}`, `PUT /api/v2/users/qualification`); the
//! CRM, payments API and chat webhook are minimal. One HTTP server on
//! 127.0.0.1 serves them all under `/referral`, `/crm`, `/payments`, `/chat`.
//! A reward issued twice for one referral is counted as an error: that is the
//! mistake the scenarios must never make.

mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::to_bytes;
use axum::extract::{Request, State as AxumState};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

pub use state::{Participant, ParticipantStatus, Reward, State, Summary};

pub const REFERRAL_TOKEN: &str = "demo-referral-token-7Qx2";
pub const CRM_TOKEN: &str = "demo-crm-token-9Kd4";
pub const PAYMENTS_TOKEN: &str = "demo-payments-token-3Zp8";
/// The chat tool's incoming-webhook URLs carry a secret path segment.
pub const CHAT_HOOK: &str = "T0-demo-chat-hook";

/// The running stand-ins. Dropping it stops the server.
pub struct StandIns {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl StandIns {
    /// Binds 127.0.0.1 on an ephemeral port and serves until dropped.
    pub async fn start() -> std::io::Result<StandIns> {
        let state = Arc::new(Mutex::new(State::default()));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandIns {
            addr,
            state,
            server,
        })
    }

    pub fn url(&self, system: &str) -> String {
        format!("http://{}/{system}", self.addr)
    }

    /// The environment the example scenarios read, pointed at the stand-ins.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("REFERRAL_API".into(), self.url("referral")),
            ("REFERRAL_TOKEN".into(), REFERRAL_TOKEN.into()),
            ("CRM_API".into(), self.url("crm")),
            ("CRM_TOKEN".into(), CRM_TOKEN.into()),
            ("PAYMENTS_API".into(), self.url("payments")),
            ("PAYMENTS_TOKEN".into(), PAYMENTS_TOKEN.into()),
            (
                "CHAT_WEBHOOK_URL".into(),
                format!("{}/{CHAT_HOOK}", self.url("chat")),
            ),
        ]
    }

    /// Runs `f` on the stand-ins' state (to set a scene or read the outcome).
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("stand-in state"))
    }

    pub fn summary(&self) -> Summary {
        self.with_state(|s| s.summary())
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(AxumState(state): AxumState<Arc<Mutex<State>>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = match to_bytes(request.into_body(), 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "body too large"}),
            )
        }
    };
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("invalid JSON: {e}")}),
                )
            }
        }
    };
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            urlencoding::decode(s)
                .map(|c| c.into_owned())
                .unwrap_or_else(|_| s.to_owned())
        })
        .collect();
    let mut state = state.lock().expect("stand-in state");
    state.requests += 1;
    if let Some(status) = state.take_injected_failure(&method, &path) {
        return reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            json!({"error": "injected failure"}),
        );
    }
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (status, body) = match segs.as_slice() {
        ["referral", ..] if auth != format!("Bearer {REFERRAL_TOKEN}") => {
            (401, json!({"error": "invalid token"}))
        }
        ["crm", ..] if auth != format!("Bearer {CRM_TOKEN}") => {
            (401, json!({"error": "invalid token"}))
        }
        ["payments", ..] if auth != format!("Bearer {PAYMENTS_TOKEN}") => {
            (401, json!({"error": "invalid token"}))
        }
        ["referral", "api", "v2", "users"] if method == Method::POST => state.enrol(&body),
        ["referral", "api", "v2", "users", "qualification"] if method == Method::PUT => {
            state.qualify(&body)
        }
        ["referral", "api", "v2", "users", identifier] if method == Method::GET => {
            state.find(identifier)
        }
        ["crm", "contacts", id] if method == Method::PATCH => state.update_contact(id, &body),
        ["crm", "leads"] if method == Method::POST => state.create_lead(&body),
        ["payments", "v1", "payments"] if method == Method::GET => state.first_payments(&query),
        ["chat", hook] if method == Method::POST && *hook == CHAT_HOOK => state.chat(&body),
        _ => (
            404,
            json!({"error": format!("no such endpoint: {method} {path}")}),
        ),
    };
    reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}
