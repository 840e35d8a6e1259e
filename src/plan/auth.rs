//! A connection's `auth:` compiled into an [`AuthPlan`]: one mapping for a
//! scenario's connections and an app's, each compiling the values its own way.

use std::sync::Arc;

use super::{AuthPlan, Expr, OAuth2Plan};
use crate::model::Auth;

/// How long before its expiry an OAuth2 token is minted again, unless `refresh_before` says.
const DEFAULT_REFRESH_BEFORE: std::time::Duration = std::time::Duration::from_secs(60);

impl AuthPlan {
    /// `value(text, field)` compiles one credential (and reports its problems);
    /// `origin` names the connection in messages and keys its tokens.
    pub(crate) fn compile(
        auth: &Auth,
        origin: String,
        mut value: impl FnMut(&str, &str) -> Expr,
    ) -> AuthPlan {
        match auth {
            Auth::Bearer { token } => AuthPlan::Bearer(value(token, "token")),
            Auth::Basic { user, password } => {
                AuthPlan::Basic(value(user, "user"), value(password, "password"))
            }
            Auth::ApiKey {
                name,
                value: key,
                place,
            } => AuthPlan::ApiKey {
                name: name.clone(),
                value: value(key, "value"),
                place: *place,
            },
            Auth::OAuth2(o) => AuthPlan::OAuth2(Arc::new(OAuth2Plan {
                name: origin
                    .strip_prefix("connections.")
                    .or_else(|| origin.strip_prefix("app "))
                    .unwrap_or(&origin)
                    .to_owned(),
                origin,
                grant: o.grant,
                token_url: value(&o.token_url, "token_url"),
                authorization_url: o
                    .authorization_url
                    .as_ref()
                    .map(|u| value(u, "authorization_url")),
                client_id: value(&o.client_id, "client_id"),
                client_secret: o.client_secret.as_ref().map(|s| value(s, "client_secret")),
                refresh_token: o.refresh_token.as_ref().map(|t| value(t, "refresh_token")),
                scopes: o.scopes.clone(),
                audience: o.audience.clone(),
                client_auth: o.client_auth,
                params: o
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                refresh_before: o
                    .refresh_before
                    .map(|d| d.as_std())
                    .unwrap_or(DEFAULT_REFRESH_BEFORE),
                refresh_on: o.refresh_on.clone().unwrap_or_else(|| vec![401]),
                header: o
                    .header
                    .clone()
                    .unwrap_or_else(|| "Authorization".to_owned()),
                prefix: o.prefix.clone().unwrap_or_else(|| "Bearer ".to_owned()),
            })),
        }
    }
}
