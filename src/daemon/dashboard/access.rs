//! Who may use the dashboard, and proof that a form came from it.
//!
//! With `SCENARIST_ADMIN_TOKEN` set, the login page asks for the token once
//! and answers with a signed session cookie (HttpOnly, SameSite=Strict).
//! The signing key is derived from the token, so every daemon sharing a
//! store and a token accepts the same sessions, and changing the token
//! signs everyone out. Without a token (loopback only), a session is issued
//! on the first visit, signed by a key made at start: it only carries the
//! CSRF token. Each form sends the CSRF token (an HMAC of the session), and
//! a POST is refused unless it matches, or when its `Origin` is foreign.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::super::Shared;

const COOKIE: &str = "scenarist_session";
/// How long a session lasts before the token is asked for again.
const SESSION_SECS: i64 = 12 * 3600;

/// The signing key of sessions and CSRF tokens.
pub(super) struct Keys {
    key: [u8; 32],
    /// Whether a token is needed (and so a login).
    login: bool,
    token: Option<String>,
}

impl Keys {
    pub fn new(admin_token: Option<&str>) -> Keys {
        let key: [u8; 32] = match admin_token {
            Some(token) => Sha256::new()
                .chain_update(b"scenarist dashboard session\0")
                .chain_update(token.as_bytes())
                .finalize()
                .into(),
            None => rand::random(),
        };
        Keys {
            key,
            login: admin_token.is_some(),
            token: admin_token.map(str::to_owned),
        }
    }

    fn mac(&self, parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"|");
        }
        hex(&mac.finalize().into_bytes())
    }

    /// A new session cookie value: `ISSUED.NONCE.MAC`.
    fn issue(&self) -> String {
        let issued = Utc::now().timestamp().to_string();
        let nonce = hex(&rand::random::<[u8; 16]>());
        let mac = self.mac(&["session", &issued, &nonce]);
        format!("{issued}.{nonce}.{mac}")
    }

    /// Whether a cookie value is a session this key signed, still valid.
    fn valid(&self, value: &str) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some(issued), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(at) = issued.parse::<i64>() else {
            return false;
        };
        let age = Utc::now().timestamp() - at;
        (-60..SESSION_SECS).contains(&age)
            && same(
                mac.as_bytes(),
                self.mac(&["session", issued, nonce]).as_bytes(),
            )
    }

    fn csrf(&self, session: &str) -> String {
        self.mac(&["csrf", session])[..32].to_owned()
    }

    fn token_matches(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_some_and(|t| same(given.as_bytes(), t.as_bytes()))
    }
}

/// Compares in time that depends only on the lengths.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The person using the dashboard, as far as a request tells.
#[derive(Debug, Clone, Default)]
pub(crate) struct Visitor {
    /// The token every form must send back.
    pub csrf: String,
    /// Signed in with the admin token (there is something to sign out of).
    pub signed_in: bool,
}

impl Visitor {
    /// Whether a form's CSRF token is this visitor's.
    pub fn sent(&self, csrf: &str) -> bool {
        !self.csrf.is_empty() && same(csrf.as_bytes(), self.csrf.as_bytes())
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn set_cookie(value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .expect("a cookie of hex digits and dots")
}

/// A POST whose `Origin` names another site is refused whatever it carries.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin != "null" && origin_host != host
}

/// The session layer of every page: finds (or, without a token, issues) the
/// session, sends strangers to the login page, and refuses POSTs from
/// other sites.
pub(super) async fn session(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let keys = &shared.ui.keys;
    let found = cookie(request.headers()).filter(|c| keys.valid(c));
    let is_post = request.method() == Method::POST;
    if is_post && foreign_origin(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            "refused: this form was sent from another site",
        )
            .into_response();
    }
    let (session, fresh) = match found {
        Some(session) => (session, false),
        None if keys.login => {
            if is_post {
                return (StatusCode::FORBIDDEN, "refused: sign in again").into_response();
            }
            let next = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/ui".to_owned());
            return Redirect::to(&format!("/ui/login?next={}", urlencoding::encode(&next)))
                .into_response();
        }
        // A POST without a session cannot carry its CSRF token.
        None if is_post => {
            return (
                StatusCode::FORBIDDEN,
                "refused: reload the page and send the form again",
            )
                .into_response()
        }
        None => (keys.issue(), true),
    };
    request.extensions_mut().insert(Visitor {
        csrf: keys.csrf(&session),
        signed_in: keys.login,
    });
    let mut response = next.run(request).await;
    if fresh {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(&session, SESSION_SECS));
    }
    response
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct LoginQuery {
    next: Option<String>,
    refused: Option<bool>,
}

/// Only a path of the dashboard itself: never a redirect to elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/ui".to_owned(),
    }
}

pub(super) async fn login_page(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    if !shared.ui.keys.login {
        return Redirect::to("/ui").into_response();
    }
    let mut data = json!({
        "next": safe_next(query.next.as_deref()),
        "refused": query.refused.unwrap_or(false),
    });
    shared.ui.page_with(
        StatusCode::OK,
        &Visitor::default(),
        "",
        "Sign in",
        "login",
        &mut data,
    )
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

/// A wrong token is refused with 401 and the same words whatever was wrong.
pub(super) async fn login(
    State(shared): State<Arc<Shared>>,
    connected: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let keys = &shared.ui.keys;
    if !keys.login {
        return Redirect::to("/ui").into_response();
    }
    let ip = connected.map(|c| c.0 .0.ip());
    if let Some(wait) = ip.and_then(|ip| shared.throttle.wait(ip)) {
        return crate::daemon::throttled(wait);
    }
    if foreign_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "refused: this form was sent from another site",
        )
            .into_response();
    }
    let next = safe_next(form.next.as_deref());
    if !keys.token_matches(&form.token) {
        if let Some(ip) = ip {
            shared.throttle.failed(ip);
        }
        tracing::warn!("dashboard sign-in refused: wrong token");
        let mut data = json!({ "next": next, "refused": true });
        return shared.ui.page_with(
            StatusCode::UNAUTHORIZED,
            &Visitor::default(),
            "",
            "Sign in",
            "login",
            &mut data,
        );
    }
    let mut response = Redirect::to(&next).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&keys.issue(), SESSION_SECS));
    response
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn logout(
    Extension(visitor): Extension<Visitor>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !visitor.sent(&form.csrf) {
        return refused_csrf();
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie("", 0));
    response
}

/// What a form without the right CSRF token gets.
pub(super) fn refused_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        "refused: this form's CSRF token is missing or wrong; reload the page and send it again",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_signed_by_the_token_and_csrf_tokens_by_the_session() {
        let keys = Keys::new(Some("t0ken"));
        let session = keys.issue();
        assert!(keys.valid(&session));
        assert!(
            Keys::new(Some("t0ken")).valid(&session),
            "another daemon, same token"
        );
        assert!(
            !Keys::new(Some("other")).valid(&session),
            "a changed token signs out"
        );
        let mut forged = session.clone();
        forged.replace_range(0..1, "9");
        assert!(!keys.valid(&forged));
        assert!(!keys.valid("1.2"));
        assert_ne!(keys.csrf(&session), keys.csrf(&keys.issue()));
        assert!(keys.token_matches("t0ken") && !keys.token_matches("t0ke"));
        assert!(!Keys::new(None).token_matches(""));
    }

    #[test]
    fn only_dashboard_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/ui/executions?key=a")),
            "/ui/executions?key=a"
        );
        for bad in ["https://evil.example", "//evil.example", "/ui\\..", "/api"] {
            assert_eq!(safe_next(Some(bad)), "/ui", "{bad}");
        }
    }
}
