//! How a connection signs in: `auth:` on a scenario's connection or an app's.
//! The static kinds (a bearer token, a user and password, an API key), each
//! a template over `env`, whose values are masked wherever they would show.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Exactly one kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", try_from = "RawAuth")]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
    /// A key in a header, or in a query parameter.
    ApiKey {
        name: String,
        value: String,
        place: KeyPlace,
    },
    /// An OAuth2 access token, minted at the token endpoint and refreshed
    /// before it expires (and once on a 401).
    #[serde(rename = "oauth2")]
    OAuth2(Box<OAuth2>),
}

/// `oauth2:`: how the access token is got, and kept fresh.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    /// `client_credentials` (a service signs in as itself),
    /// `authorization_code` (a person signs in once, with `scenarist connect`
    /// or the dashboard; the tokens are kept, sealed, in the store) or
    /// `refresh_token` (a refresh token the provider gave, seeded from env).
    pub grant: OAuth2Grant,
    pub token_url: String,
    /// Where a person signs in (`authorization_code`).
    pub authorization_url: Option<String>,
    /// Usually `{{ env.SOME_CLIENT_ID }}`.
    pub client_id: String,
    /// Usually `{{ env.SOME_CLIENT_SECRET }}`. A public client (PKCE only) has none.
    pub client_secret: Option<String>,
    /// The refresh token the tokens start from (`refresh_token`), usually
    /// `{{ env.SOME_REFRESH_TOKEN }}`; once the provider rotates it, the
    /// store's newer one is used.
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    /// How the client proves itself at the token endpoint (default `client_secret_basic`).
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Extra form fields of the token request (and of the authorization URL).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// How long before its expiry a token is refreshed (default 60s).
    pub refresh_before: Option<super::Duration>,
    /// The statuses after which the token is refreshed and the request sent
    /// once more (default `[401]`).
    pub refresh_on: Option<Vec<u16>>,
    /// The header that carries the token (default `Authorization`).
    pub header: Option<String>,
    /// What goes before the token in it (default `"Bearer "`).
    pub prefix: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuth2Grant {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
}

impl OAuth2Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuth2Grant::ClientCredentials => "client_credentials",
            OAuth2Grant::AuthorizationCode => "authorization_code",
            OAuth2Grant::RefreshToken => "refresh_token",
        }
    }

    /// Whether its tokens are kept in the store's credentials (a person, or
    /// a rotated refresh token, cannot be asked again at each start).
    pub fn stored(self) -> bool {
        self != OAuth2Grant::ClientCredentials
    }
}

impl OAuth2 {
    /// What a grant needs beside the common fields.
    fn check(&self) -> Result<(), String> {
        let needs = |field: &str, what: &str| {
            format!(
                "`oauth2` with `grant: {}` needs `{field}`: {what}",
                self.grant.as_str()
            )
        };
        match self.grant {
            OAuth2Grant::ClientCredentials if self.client_secret.is_none() => {
                Err(needs("client_secret", "the client signs in with it"))
            }
            OAuth2Grant::AuthorizationCode if self.authorization_url.is_none() => Err(needs(
                "authorization_url",
                "where a person signs in (e.g. https://app.hubspot.com/oauth/authorize)",
            )),
            OAuth2Grant::RefreshToken if self.refresh_token.is_none() => Err(needs(
                "refresh_token",
                "the refresh token the tokens start from, e.g. \"{{ env.CRM_REFRESH_TOKEN }}\"",
            )),
            _ if self.header.as_deref().is_some_and(|h| !is_header_name(h)) => Err(format!(
                "`{}` is not a valid HTTP header name",
                self.header.as_deref().unwrap_or_default()
            )),
            _ if self
                .refresh_on
                .as_ref()
                .is_some_and(|s| s.iter().any(|s| !(400..600).contains(s))) =>
            {
                Err(
                    "`refresh_on` lists HTTP error statuses (400 to 599), e.g. [401, 403]"
                        .to_owned(),
                )
            }
            _ => Ok(()),
        }
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form.
    ClientSecretPost,
}

/// Where an API key goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyPlace {
    Header,
    Query,
}

impl Auth {
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::ApiKey { .. } => "api_key",
            Auth::OAuth2(_) => "oauth2",
        }
    }
}

/// The written form: one key naming the kind.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Auth", extend("minProperties" = 1, "maxProperties" = 1))]
struct RawAuth {
    bearer: Option<BearerAuth>,
    basic: Option<BasicAuth>,
    api_key: Option<ApiKeyAuth>,
    oauth2: Option<OAuth2>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BearerAuth {
    /// Usually `{{ env.SOME_TOKEN }}`.
    token: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BasicAuth {
    user: String,
    /// Usually `{{ env.SOME_PASSWORD }}`.
    password: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApiKeyAuth {
    /// The header that carries the key, e.g. `X-Api-Key`. Or `query`.
    header: Option<String>,
    /// The query parameter that carries the key, e.g. `api_key`. Or `header`.
    query: Option<String>,
    /// Usually `{{ env.SOME_KEY }}`.
    value: String,
}

impl TryFrom<RawAuth> for Auth {
    type Error = String;

    fn try_from(raw: RawAuth) -> Result<Self, Self::Error> {
        let mut found = Vec::new();
        if let Some(b) = raw.bearer {
            found.push(Auth::Bearer { token: b.token });
        }
        if let Some(b) = raw.basic {
            found.push(Auth::Basic {
                user: b.user,
                password: b.password,
            });
        }
        if let Some(k) = raw.api_key {
            let (name, place) = match (k.header, k.query) {
                (Some(h), None) => (h, KeyPlace::Header),
                (None, Some(q)) => (q, KeyPlace::Query),
                (Some(_), Some(_)) => {
                    return Err("`api_key` goes in a `header` or a `query` parameter, not both".to_owned())
                }
                (None, None) => {
                    return Err("`api_key` needs `header` (e.g. X-Api-Key) or `query` (e.g. api_key): where the key goes".to_owned())
                }
            };
            if name.trim().is_empty() {
                return Err("`api_key` needs a non-empty header or query parameter name".to_owned());
            }
            if place == KeyPlace::Header && !is_header_name(&name) {
                return Err(format!("`{name}` is not a valid HTTP header name"));
            }
            found.push(Auth::ApiKey {
                name,
                value: k.value,
                place,
            });
        }
        if let Some(o) = raw.oauth2 {
            o.check()?;
            found.push(Auth::OAuth2(Box::new(o)));
        }
        match found.len() {
            1 => Ok(found.pop().expect("one auth")),
            0 => Err("`auth` needs one of `bearer`, `basic`, `api_key` or `oauth2`".to_owned()),
            _ => Err(
                "`auth` takes one of `bearer`, `basic`, `api_key` or `oauth2`, not several"
                    .to_owned(),
            ),
        }
    }
}
