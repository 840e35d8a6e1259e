//! One HTTP request, compiled: an http step's, an app action's or a poll's
//! (its target, query, headers, body and expected statuses), the
//! connection's `auth:` and OAuth2 sign-in, and what the connection lets
//! it reach beyond the outbound guard.

use std::time::Duration;

use serde_json::Value;

use super::Expr;
use crate::model::HttpMethod;

/// The header that carries idempotency keys unless a connection says otherwise.
pub const DEFAULT_IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Default per-request timeout of http steps.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct HttpPlan {
    pub method: HttpMethod,
    /// The connection's base URL, joined with `path` at run time.
    pub base_url: Option<Expr>,
    /// `url`, or `path` when there is a base URL.
    pub target: Expr,
    /// The env variable whose value begins `url` (`{{ env.API }}/users`):
    /// the request's address relative to it is kept with the step's input,
    /// as for a connection's base URL, so a recorded test case expects the
    /// same request whatever the base is where the test runs.
    pub base_env: Option<String>,
    /// Connection entries first, then the step's (which win).
    pub query: Vec<(String, Expr)>,
    pub headers: Vec<(String, Expr)>,
    pub body: HttpBody,
    /// Success statuses; `None` means any 2xx.
    pub expect: Option<Vec<u16>>,
    pub request_timeout: Duration,
    /// The header that carries the step's idempotency key; `None`: not sent.
    pub idempotency_header: Option<String>,
    /// What the connection allows beyond the outbound guard's rules.
    pub allowance: NetworkAllowance,
    /// The connection's pace, shared by every call to the same origin at
    /// the same rate.
    pub rate_limit: Option<crate::model::RateLimit>,
    /// Set for a `uses:` step: the app's input, checked before anything is sent.
    pub app: Option<AppCall>,
    /// The connection's `auth:`, applied unless a header (or query
    /// parameter) of the same name is set; its values are always masked.
    pub auth: Option<AuthPlan>,
}

/// A connection's `auth:`, compiled (templates over `env`).
#[derive(Debug, Clone)]
pub enum AuthPlan {
    Bearer(Expr),
    Basic(Expr, Expr),
    ApiKey {
        name: String,
        value: Expr,
        place: crate::model::KeyPlace,
    },
    OAuth2(std::sync::Arc<OAuth2Plan>),
}

/// `oauth2:`, compiled: templates over `env`.
#[derive(Debug)]
pub struct OAuth2Plan {
    /// Where it is written (`connections.crm`, `app referral-factory`): with
    /// the rendered token URL and client id, what a cached token is kept under.
    pub origin: String,
    /// What its tokens are kept under in the store (`crm`, `referral-factory`):
    /// the name `scenarist connect` takes.
    pub name: String,
    pub grant: crate::model::OAuth2Grant,
    pub token_url: Expr,
    pub authorization_url: Option<Expr>,
    pub client_id: Expr,
    pub client_secret: Option<Expr>,
    /// The seed of a `refresh_token` grant.
    pub refresh_token: Option<Expr>,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub client_auth: crate::model::ClientAuth,
    pub params: Vec<(String, String)>,
    pub refresh_before: Duration,
    /// The statuses after which the token is refreshed and the request sent once more.
    pub refresh_on: Vec<u16>,
    /// The header that carries the token, and what goes before it.
    pub header: String,
    pub prefix: String,
}

/// What a `uses:` step adds to an http step: `with` is rendered, given the
/// schema's defaults, checked against the action's schema, then readable by
/// the action's templates as `input`; `output` is read over `response`.
#[derive(Debug)]
pub struct AppCall {
    /// `referral-factory.qualify`.
    pub name: String,
    pub with: Expr,
    pub defaults: Vec<(String, Value)>,
    pub validator: std::sync::Arc<jsonschema::Validator>,
    pub output: Option<Expr>,
}

/// What one connection allows beyond the outbound guard's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NetworkAllowance {
    /// `allow_private: true`: loopback and private ranges are fine.
    pub private: bool,
    /// `allow_network: [CIDR]`: these are fine, even metadata addresses.
    pub networks: Vec<ipnet::IpNet>,
}

/// A CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (`10.1.2.3`).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("`{text}` is not an address or a CIDR range (e.g. 10.0.0.0/8)"))
}

#[derive(Debug, Clone)]
pub enum HttpBody {
    None,
    Json(Expr),
    Form(Vec<(String, Expr)>),
    Text(Expr),
}
