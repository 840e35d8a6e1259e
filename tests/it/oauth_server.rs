//! An OAuth2 authorization server the project did not write, for the tests:
//! oxide-auth's flows (authorization code with PKCE required, refresh with
//! rotation, client credentials) and its registrar and token map, behind a
//! small axum front on 127.0.0.1. The wiring here only translates HTTP,
//! shows a consent page, counts token requests, and lets a test revoke
//! refresh tokens (to see `invalid_grant`). Loopback redirects are accepted
//! on any port, as RFC 8252 (7.3) asks of servers for native clients.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use oxide_auth::endpoint::ClientCredentialsFlow;
use oxide_auth::endpoint::{
    AccessTokenFlow, AuthorizationFlow, OwnerConsent, RefreshFlow, Solicitation,
};
use oxide_auth::frontends::simple::endpoint::{FnSolicitor, Generic, Vacant};
use oxide_auth::frontends::simple::extensions::{AddonList, Extended, Pkce};
use oxide_auth::frontends::simple::request::{Body, Request, Response as OxResponse, Status};
use oxide_auth::primitives::authorizer::AuthMap;
use oxide_auth::primitives::generator::RandomGenerator;
use oxide_auth::primitives::issuer::{Issuer, TokenMap};
use oxide_auth::primitives::registrar::{
    BoundClient, Client, ClientMap, ClientUrl, ExactUrl, PasswordPolicy, PreGrant, RegisteredUrl,
    Registrar, RegistrarError,
};
use oxide_auth::primitives::scope::Scope;

pub const CLIENT_ID: &str = "scenarist-app";
pub const CLIENT_SECRET: &str = "cs-7d41f09be2a6";
/// Who signs in on the consent page.
pub const OWNER: &str = "ops@example.com";

/// Client secrets compared as they are (the default policy's Argon2 takes
/// seconds in a debug build; what is under test is the client, not this).
struct PlainPolicy;

impl PasswordPolicy for PlainPolicy {
    fn store(&self, _client_id: &str, passphrase: &[u8]) -> Vec<u8> {
        passphrase.to_vec()
    }

    fn check(
        &self,
        _client_id: &str,
        passphrase: &[u8],
        stored: &[u8],
    ) -> Result<(), RegistrarError> {
        if passphrase == stored {
            Ok(())
        } else {
            Err(RegistrarError::Unspecified)
        }
    }
}

/// A registrar that takes any loopback redirect (RFC 8252 7.3).
struct Loopback(ClientMap);

impl Registrar for Loopback {
    fn bound_redirect<'a>(&self, bound: ClientUrl<'a>) -> Result<BoundClient<'a>, RegistrarError> {
        let asked = bound.redirect_uri.clone();
        let mut found = self.0.bound_redirect(ClientUrl {
            client_id: bound.client_id,
            redirect_uri: None,
        })?;
        if let Some(url) = asked {
            let parsed = url.to_url();
            if parsed.host_str() != Some("127.0.0.1") {
                return Err(RegistrarError::Unspecified);
            }
            found.redirect_uri = Cow::Owned(RegisteredUrl::Exact(url.into_owned()));
        }
        Ok(found)
    }

    fn negotiate(
        &self,
        client: BoundClient,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        self.0.negotiate(client, scope)
    }

    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        self.0.check(client_id, passphrase)
    }
}

struct Inner {
    registrar: Loopback,
    authorizer: AuthMap<RandomGenerator>,
    issuer: TokenMap<RandomGenerator>,
    /// Token requests, by grant type.
    counts: HashMap<String, usize>,
    /// Refresh tokens the server no longer takes (`invalid_grant`).
    revoke_refresh: bool,
    /// Every access and refresh token handed out.
    issued: Vec<String>,
}

/// A running server.
#[derive(Clone)]
pub struct AuthServer {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    /// Requests to `/api/me` answered 200.
    pub served: Arc<std::sync::atomic::AtomicUsize>,
}

impl AuthServer {
    /// Starts one whose access tokens live `lifetime_s` seconds.
    pub async fn start(lifetime_s: i64) -> AuthServer {
        let mut clients = ClientMap::new();
        clients.set_password_policy(PlainPolicy);
        clients.register_client(Client::confidential(
            CLIENT_ID,
            RegisteredUrl::Exact(ExactUrl::new("http://127.0.0.1/callback".to_owned()).unwrap()),
            "read write".parse().unwrap(),
            CLIENT_SECRET.as_bytes(),
        ));
        let mut issuer = TokenMap::new(RandomGenerator::new(16));
        issuer.valid_for(chrono::Duration::seconds(lifetime_s));
        let inner = Arc::new(Mutex::new(Inner {
            registrar: Loopback(clients),
            authorizer: AuthMap::new(RandomGenerator::new(16)),
            issuer,
            counts: HashMap::new(),
            revoke_refresh: false,
            issued: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = AuthServer {
            url,
            inner,
            served: Default::default(),
        };
        let app = axum::Router::new()
            .route(
                "/authorize",
                axum::routing::get(authorize).post(authorize_post),
            )
            .route("/token", axum::routing::post(token))
            .route("/api/me", axum::routing::get(me))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    /// Token requests made so far with `grant_type`.
    pub fn requests(&self, grant_type: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .counts
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }

    /// A refresh token for the client, as a provider's console hands one out
    /// (a grant issued straight by the token map).
    pub fn refresh_token_for_the_client(&self) -> String {
        let mut inner = self.inner.lock().unwrap();
        let grant = oxide_auth::primitives::grant::Grant {
            owner_id: OWNER.to_owned(),
            client_id: CLIENT_ID.to_owned(),
            scope: "read write".parse().unwrap(),
            redirect_uri: "http://127.0.0.1/callback".parse().unwrap(),
            until: chrono::Utc::now() + chrono::Duration::hours(1),
            extensions: Default::default(),
        };
        let issued = inner.issuer.issue(grant).unwrap();
        let refresh = issued
            .refresh
            .expect("the token map hands out refresh tokens");
        inner.issued.push(issued.token);
        inner.issued.push(refresh.clone());
        refresh
    }

    /// Tokens handed out from now on live `seconds`.
    pub fn set_lifetime(&self, seconds: i64) {
        self.inner
            .lock()
            .unwrap()
            .issuer
            .valid_for(chrono::Duration::seconds(seconds));
    }

    /// From now on every refresh is refused (`invalid_grant`), as after a revocation.
    pub fn revoke_refresh_tokens(&self, revoked: bool) {
        self.inner.lock().unwrap().revoke_refresh = revoked;
    }

    /// Every access and refresh token handed out so far.
    pub fn issued(&self) -> Vec<String> {
        self.inner.lock().unwrap().issued.clone()
    }

    /// The access tokens handed out so far stop working (a 401), as after
    /// a password change; the refresh tokens still work.
    pub fn revoke_access_tokens(&self) {
        let mut inner = self.inner.lock().unwrap();
        let issued = inner.issued.clone();
        for token in issued {
            if inner.issuer.recover_token(&token).ok().flatten().is_some() {
                inner.issuer.revoke(&token);
            }
        }
    }
}

fn request(query: Option<String>, form: HashMap<String, String>, headers: &HeaderMap) -> Request {
    let query = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    Request {
        query,
        urlbody: form,
        auth: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn respond(answer: OxResponse) -> Response {
    let status = match answer.status {
        Status::Ok => StatusCode::OK,
        Status::Redirect => StatusCode::FOUND,
        Status::BadRequest => StatusCode::BAD_REQUEST,
        Status::Unauthorized => StatusCode::UNAUTHORIZED,
    };
    let mut response = match answer.body {
        Some(Body::Json(json)) => {
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
        Some(Body::Text(text)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], text).into_response()
        }
        None => ().into_response(),
    };
    *response.status_mut() = status;
    if let Some(location) = answer.location {
        response
            .headers_mut()
            .insert(header::LOCATION, location.as_str().parse().unwrap());
    }
    if let Some(challenge) = answer.www_authenticate {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge.parse().unwrap());
    }
    response
}

fn failed(e: impl std::fmt::Debug) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")).into_response()
}

/// The consent page (GET), or the owner's answer (POST `allow=yes|no`).
fn authorization(server: &AuthServer, req: Request) -> Response {
    let mut inner = server.inner.lock().unwrap();
    let inner = &mut *inner;
    let query_text: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(req.query.iter())
        .finish();
    let solicitor = FnSolicitor(move |req: &mut Request, pre: Solicitation| {
        match req.urlbody.get("allow").map(String::as_str) {
            Some("yes") => OwnerConsent::Authorized(OWNER.to_owned()),
            Some(_) => OwnerConsent::Denied,
            None => OwnerConsent::InProgress(OxResponse {
                status: Status::Ok,
                location: None,
                www_authenticate: None,
                body: Some(Body::Text(format!(
                    "<!doctype html><title>Sign in</title><h1>Allow {} to read and write as {OWNER}?</h1>\
                     <form method=post action=\"/authorize?{query_text}\">\
                     <button id=allow name=allow value=yes>Allow</button>\
                     <button id=deny name=allow value=no>Deny</button></form>",
                    pre.pre_grant().client_id
                ))),
            }),
        }
    });
    let mut extensions = AddonList::new();
    extensions.push_code(Pkce::required());
    let endpoint = Generic {
        registrar: &inner.registrar,
        authorizer: &mut inner.authorizer,
        issuer: &mut inner.issuer,
        solicitor,
        scopes: Vacant,
        response: Vacant,
    };
    let mut endpoint = Extended::extend_with(endpoint, extensions);
    match AuthorizationFlow::prepare(&mut endpoint) {
        Ok(mut flow) => match flow.execute(req) {
            Ok(answer) => respond(answer),
            Err(e) => failed(e),
        },
        Err(e) => failed(e),
    }
}

async fn authorize(
    State(server): State<AuthServer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    authorization(&server, request(query, HashMap::new(), &headers))
}

async fn authorize_post(
    State(server): State<AuthServer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    authorization(&server, request(query, form, &headers))
}

async fn token(
    State(server): State<AuthServer>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let req = request(None, form, &headers);
    let mut inner = server.inner.lock().unwrap();
    let inner = &mut *inner;
    *inner.counts.entry(grant_type.clone()).or_default() += 1;
    if grant_type == "refresh_token" && inner.revoke_refresh {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"invalid_grant","error_description":"the refresh token was revoked"}"#,
        )
            .into_response();
    }
    let mut extensions = AddonList::new();
    extensions.push_code(Pkce::required());
    let endpoint = Generic {
        registrar: &inner.registrar,
        authorizer: &mut inner.authorizer,
        issuer: &mut inner.issuer,
        solicitor: Vacant,
        scopes: Vacant,
        response: Vacant,
    };
    let mut endpoint = Extended::extend_with(endpoint, extensions);
    let answer = match grant_type.as_str() {
        "authorization_code" => AccessTokenFlow::prepare(&mut endpoint).map(|mut f| f.execute(req)),
        "refresh_token" => RefreshFlow::prepare(&mut endpoint).map(|mut f| f.execute(req)),
        "client_credentials" => {
            let solicitor = FnSolicitor(|_: &mut Request, _: Solicitation| {
                OwnerConsent::Authorized(CLIENT_ID.to_owned())
            });
            let endpoint = Generic {
                registrar: &inner.registrar,
                authorizer: Vacant,
                issuer: &mut inner.issuer,
                solicitor,
                scopes: Vacant,
                response: Vacant,
            };
            let answer = match ClientCredentialsFlow::prepare(endpoint) {
                Ok(mut flow) => flow.execute(req),
                Err(e) => return failed(e),
            };
            return match answer {
                Ok(answer) => {
                    record(&mut inner.issued, &answer);
                    respond(answer)
                }
                Err(e) => failed(e),
            };
        }
        other => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                format!(r#"{{"error":"unsupported_grant_type","error_description":"{other}"}}"#),
            )
                .into_response()
        }
    };
    match answer {
        Ok(Ok(answer)) => {
            record(&mut inner.issued, &answer);
            respond(answer)
        }
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

fn record(issued: &mut Vec<String>, answer: &OxResponse) {
    if let Some(Body::Json(json)) = &answer.body {
        let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        for key in ["access_token", "refresh_token"] {
            if let Some(token) = value.get(key).and_then(|t| t.as_str()) {
                issued.push(token.to_owned());
            }
        }
    }
}

/// A protected resource: who the token belongs to, or 401.
async fn me(
    State(server): State<AuthServer>,
    headers: HeaderMap,
    Query(_q): Query<HashMap<String, String>>,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let inner = server.inner.lock().unwrap();
    match inner.issuer.recover_token(&token) {
        Ok(Some(grant)) if grant.until > chrono::Utc::now() => {
            server
                .served
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            axum::Json(serde_json::json!({ "owner": grant.owner_id })).into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "",
        )
            .into_response(),
    }
}
