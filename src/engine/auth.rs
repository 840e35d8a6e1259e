//! A connection's `auth:` on a request: the credential put where it goes,
//! and its header or query parameter named so that every description of the
//! request (dry runs, step inputs, errors) shows `***` instead.

use handlebars::Context;

use super::http::text;
use crate::plan::{AuthPlan, EvalError};

/// Puts a connection's credentials on the request, unless a header (or a
/// query parameter) of that name is already set.
pub(super) fn apply(
    auth: &AuthPlan,
    ctx: &Context,
    url: &mut reqwest::Url,
    headers: &mut Vec<(String, String)>,
    masked: &mut Vec<String>,
) -> Result<(), EvalError> {
    use base64::Engine as _;
    let mut header = |name: &str, value: String, masked: &mut Vec<String>| {
        masked.push(name.to_ascii_lowercase());
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            headers.push((name.to_owned(), value));
        }
    };
    match auth {
        AuthPlan::Bearer(token) => {
            let token = text(token.eval_ref(ctx)?.as_ref());
            header("Authorization", format!("Bearer {token}"), masked);
        }
        AuthPlan::Basic(user, password) => {
            let pair = format!(
                "{}:{}",
                text(user.eval_ref(ctx)?.as_ref()),
                text(password.eval_ref(ctx)?.as_ref())
            );
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            header("Authorization", format!("Basic {encoded}"), masked);
        }
        // Minted asynchronously before the request is sent (`oauth.rs`).
        AuthPlan::OAuth2(_) => {}
        AuthPlan::ApiKey { name, value, place } => {
            let value = text(value.eval_ref(ctx)?.as_ref());
            match place {
                crate::model::KeyPlace::Header => header(name, value, masked),
                crate::model::KeyPlace::Query => {
                    masked.push(name.to_ascii_lowercase());
                    if !url.query_pairs().any(|(k, _)| k == name.as_str()) {
                        url.query_pairs_mut().append_pair(name, &value);
                    }
                }
            }
        }
    }
    Ok(())
}
