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
//!
//! Like the real systems, they send webhooks to the URLs given to
//! [`StandIns::subscribe`] (see `webhooks.rs`). Endpoints under
//! `/referral/sim/` are the stand-in's own controls (e.g. someone signing up
//! through a link), not part of the imitated API; they need no token.
//!
//! Endpoints:
//! - referral (Bearer [`REFERRAL_TOKEN`]): `POST /api/v2/users`,
//!   `GET /api/v2/users/{identifier}`, `PUT /api/v2/users/qualification`;
//!   no token: `POST /sim/join {email, first_name, referrer_email, ...}`
//! - crm (Bearer [`CRM_TOKEN`]): `POST /contacts`, `GET /contacts?email=`,
//!   `GET|PATCH /contacts/{id}`, `POST /deals`, `GET|PATCH /deals/{id}`,
//!   `POST /leads`
//! - payments (Bearer [`PAYMENTS_TOKEN`]): `GET|POST /v1/payments`
//! - chat: `POST /{CHAT_HOOK}`

mod crm;
mod payments;
mod referral;
mod rewards;
mod state;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::{Request, State as AxumState};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;

pub use crm::{Contact, Deal};
pub use referral::{Participant, ParticipantStatus, Reward};
pub use state::{State, Summary};
pub use webhooks::{DeliveriesTimeout, Delivery};

pub const REFERRAL_TOKEN: &str = "demo-referral-token-7Qx2";
pub const CRM_TOKEN: &str = "demo-crm-token-9Kd4";
pub const PAYMENTS_TOKEN: &str = "demo-payments-token-3Zp8";
/// The chat tool's incoming-webhook URLs carry a secret path segment.
pub const CHAT_HOOK: &str = "T0-demo-chat-hook";

/// The running stand-ins. Dropping it stops the server.
pub struct StandIns {
    pub addr: SocketAddr,
    hub: Hub,
    server: tokio::task::JoinHandle<()>,
}

/// What the server and the webhook tasks share.
#[derive(Clone)]
struct Hub {
    state: Arc<Mutex<State>>,
    client: reqwest::Client,
    /// The number of finished webhook deliveries.
    finished: Arc<watch::Sender<usize>>,
    runtime: tokio::runtime::Handle,
}

impl Hub {
    /// Runs `f` on the state, then sends the webhooks it emitted, once the
    /// lock is released.
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let (value, outbox) = {
            let mut state = self.state.lock().expect("stand-in state");
            let value = f(&mut state);
            (value, std::mem::take(&mut state.outbox))
        };
        if !outbox.is_empty() {
            // One task per batch keeps the order of one change's events.
            let hub = self.clone();
            self.runtime.spawn(async move {
                for out in outbox {
                    let delivery = webhooks::deliver(&hub.client, out).await;
                    let finished = {
                        let mut state = hub.state.lock().expect("stand-in state");
                        state.deliveries.push(delivery);
                        state.deliveries.len()
                    };
                    hub.finished.send_replace(finished);
                }
            });
        }
        value
    }
}

impl StandIns {
    /// Binds 127.0.0.1 on an ephemeral port and serves until dropped.
    pub async fn start() -> std::io::Result<StandIns> {
        let client = reqwest::Client::builder()
            .timeout(webhooks::TIMEOUT)
            .user_agent("scenarist-standins")
            .build()
            .map_err(std::io::Error::other)?;
        let hub = Hub {
            state: Arc::new(Mutex::new(State::default())),
            client,
            finished: Arc::new(watch::Sender::new(0)),
            runtime: tokio::runtime::Handle::current(),
        };
        let app = Router::new().fallback(handle).with_state(hub.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandIns { addr, hub, server })
    }

    pub fn url(&self, system: &str) -> String {
        format!("http://{}/{system}", self.addr)
    }

    /// The environment the example scenarios read, pointed at the stand-ins.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            // The built-in `referral-factory` app's names, which the examples use.
            ("REFERRAL_FACTORY_URL".into(), self.url("referral")),
            ("REFERRAL_FACTORY_TOKEN".into(), REFERRAL_TOKEN.into()),
            // The same under the names scenarios written before the app used
            // (`scenarist demo --dir` on such a folder).
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
    /// Webhooks the change emits are sent afterwards.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.hub.with_state(f)
    }

    pub fn summary(&self) -> Summary {
        self.with_state(|s| s.summary())
    }

    /// The rewards issued so far.
    pub fn rewards(&self) -> Vec<Reward> {
        self.with_state(|s| s.rewards.clone())
    }

    /// Sends every later `event` (e.g. `user.join`, `deal.updated`,
    /// `payment.succeeded`) to `url` too.
    pub fn subscribe(&self, event: &str, url: &str) {
        self.with_state(|s| {
            s.subscriptions
                .entry(event.to_owned())
                .or_default()
                .push(url.to_owned())
        });
    }

    /// Moves a CRM deal to `stage`, sending `deal.updated` if it changed.
    pub fn move_deal(&self, id: &str, stage: &str) -> Result<bool, String> {
        self.with_state(|s| s.move_deal(id, stage))
    }

    /// Records a payment in EUR cents, sending `payment.succeeded` or
    /// `payment.failed`; returns the payment.
    pub fn pay(&self, email: &str, amount: u64, succeeded: bool) -> Value {
        self.with_state(|s| s.record_payment(email, amount, "EUR", succeeded))
    }

    /// Sends the last payload of `event` again, to the URLs now subscribed
    /// (the duplicate webhook real systems send). False if none was sent.
    pub fn redeliver_last(&self, event: &str) -> bool {
        self.with_state(|s| match s.last_payload.get(event).cloned() {
            Some(payload) => {
                s.emit(event, payload);
                true
            }
            None => false,
        })
    }

    /// The finished webhook deliveries, in the order they finished.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.with_state(|s| s.deliveries.clone())
    }

    /// Waits until at least `n` webhook deliveries have finished (retries
    /// included) and returns them all; gives up after `timeout`.
    pub async fn wait_for_deliveries(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Delivery>, DeliveriesTimeout> {
        let mut finished = self.hub.finished.subscribe();
        let done = tokio::time::timeout(timeout, finished.wait_for(|&f| f >= n)).await;
        match done {
            Ok(Ok(_)) => Ok(self.deliveries()),
            _ => Err(DeliveriesTimeout {
                wanted: n,
                finished: self.deliveries().len(),
                waited: timeout,
            }),
        }
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

async fn handle(AxumState(hub): AxumState<Hub>, request: Request) -> Response {
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
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (status, body) = hub.with_state(|state| {
        state.requests += 1;
        if let Some(status) = state.take_injected_failure(&method, &path) {
            return (status, json!({"error": "injected failure"}));
        }
        route(state, &method, &segs, &query, &auth, &body)
    });
    reply(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

fn route(
    state: &mut State,
    method: &Method,
    segs: &[&str],
    query: &str,
    auth: &str,
    body: &Value,
) -> (u16, Value) {
    let bearer = |token: &str| auth == format!("Bearer {token}");
    let (get, post, put, patch) = (
        method == Method::GET,
        method == Method::POST,
        method == Method::PUT,
        method == Method::PATCH,
    );
    match segs {
        ["referral", "sim", "join"] if post => state.sim_join(body),
        ["referral", ..] if !bearer(REFERRAL_TOKEN) => (401, json!({"error": "invalid token"})),
        ["crm", ..] if !bearer(CRM_TOKEN) => (401, json!({"error": "invalid token"})),
        ["payments", ..] if !bearer(PAYMENTS_TOKEN) => (401, json!({"error": "invalid token"})),
        ["referral", "api", "v2", "users"] if post => state.enrol(body),
        ["referral", "api", "v2", "users", "qualification"] if put => state.qualify(body),
        ["referral", "api", "v2", "users"] if get => state.search_users(query),
        ["referral", "api", "v2", "users", identifier] if get => state.find(identifier),
        ["referral", "api", "v2", "users", identifier] if put => {
            state.update_user(identifier, body)
        }
        ["referral", "api", "v2", "rewards"] if get => state.list_rewards(query),
        ["referral", "api", "v2", "rewards", id, "issue"] if post => state.issue_reward(id),
        ["referral", "api", "v2", "rewards", id, "cancel"] if post => state.cancel_reward(id, body),
        ["crm", "contacts"] if post => state.create_contact(body),
        ["crm", "contacts"] if get => state.search_contacts(query),
        ["crm", "contacts", id] if get => state.get_contact(id),
        ["crm", "contacts", id] if patch => state.update_contact(id, body),
        ["crm", "deals"] if post => state.create_deal(body),
        ["crm", "deals", id] if get => state.get_deal(id),
        ["crm", "deals", id] if patch => state.update_deal(id, body),
        ["crm", "leads"] if post => state.create_lead(body),
        ["payments", "v1", "payments"] if get => state.list_payments(query),
        ["payments", "v1", "payments"] if post => state.create_payment(body),
        ["chat", hook] if post && *hook == CHAT_HOOK => state.chat(body),
        _ => (
            404,
            json!({"error": format!("no such endpoint: {method} /{}", segs.join("/"))}),
        ),
    }
}
