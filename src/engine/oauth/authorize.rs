//! The authorization-code grant's first half: the URL a person opens to
//! sign in (with PKCE S256 and a `state`), and the exchange of the code
//! that comes back for the first tokens. `scenarist connect` waits for the
//! code on a loopback redirect; the dashboard on its own callback route.

use base64::Engine as _;
use handlebars::Context;
use rand::RngCore;
use sha2::Digest;

use super::render;
use crate::engine::vault::Granted;
use crate::engine::{Engine, StepError};
use crate::plan::{NetworkAllowance, OAuth2Plan};

/// A sign-in under way.
#[derive(Clone)]
pub struct Authorization {
    /// What the person opens.
    pub url: String,
    /// Comes back with the code; anything else is refused.
    pub state: String,
    pub redirect_uri: String,
    /// The PKCE secret, sent only with the code.
    verifier: String,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("url", &self.url)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

fn random_text(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

impl Authorization {
    /// Starts a sign-in for `plan`, answered at `redirect_uri`.
    pub fn start(
        plan: &OAuth2Plan,
        ctx: &Context,
        redirect_uri: &str,
    ) -> Result<Authorization, StepError> {
        let Some(authorization_url) = &plan.authorization_url else {
            return Err(StepError::fatal(format!(
                "{}: `grant: {}` is not signed in by a person (only `authorization_code` is)",
                plan.origin,
                plan.grant.as_str()
            )));
        };
        let base = render(plan, authorization_url, ctx, "authorization URL")?;
        let mut url = reqwest::Url::parse(&base).map_err(|e| {
            StepError::fatal(format!(
                "{}: invalid authorization URL `{base}`: {e}",
                plan.origin
            ))
        })?;
        let client_id = render(plan, &plan.client_id, ctx, "client id")?;
        let verifier = random_text(32);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let state = random_text(16);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if !plan.scopes.is_empty() {
                query.append_pair("scope", &plan.scopes.join(" "));
            }
            if let Some(audience) = &plan.audience {
                query.append_pair("audience", audience);
            }
            for (k, v) in &plan.params {
                query.append_pair(k, v);
            }
        }
        Ok(Authorization {
            url: url.into(),
            state,
            redirect_uri: redirect_uri.to_owned(),
            verifier,
        })
    }
}

impl Engine {
    /// Exchanges the code the person's sign-in came back with for the first tokens.
    pub async fn exchange_code(
        &self,
        plan: &OAuth2Plan,
        allowance: &NetworkAllowance,
        ctx: &Context,
        authorization: &Authorization,
        code: &str,
    ) -> Result<Granted, StepError> {
        let client = plan.client(ctx)?;
        let form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            (
                "redirect_uri".to_owned(),
                authorization.redirect_uri.clone(),
            ),
            ("code_verifier".to_owned(), authorization.verifier.clone()),
        ];
        self.token_request(plan, allowance, &client, form)
            .await
            .map_err(|e| e.into_step(plan))
    }
}
