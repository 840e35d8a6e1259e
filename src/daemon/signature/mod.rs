//! Webhook credentials, checked over the raw body exactly as received and
//! before anything is parsed or stored.
//!
//! Pure functions of the request's headers, its body, the secrets and the
//! time, so the fuzz target and the unit tests drive the same code the
//! daemon does. Every comparison of a secret or a signature is in constant
//! time; a refusal never repeats a secret or the expected signature.

use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::SignatureScheme;

mod hubspot;

type HmacSha256 = Hmac<Sha256>;

/// The request as its sender addressed it, for schemes that sign the
/// method and URL too (HubSpot's v3).
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    pub method: &'a str,
    /// The full URL the sender called: `https://host/hooks/path?query`.
    pub url: &'a str,
}

/// What a webhook's `auth` checks, with its secrets already rendered.
#[derive(Debug, Clone, Copy)]
pub enum Check<'a> {
    /// A hex HMAC-SHA256 of the body in `header`, after `prefix`.
    Hmac { header: &'a str, prefix: &'a str },
    /// A shared token in `header` (an optional `Bearer ` is ignored).
    Token { header: &'a str },
    /// A sender's scheme; `tolerance` is the replay window in seconds.
    Signed {
        scheme: SignatureScheme,
        tolerance: u64,
        target: Target<'a>,
    },
}

/// Why a request is refused (401). Safe to send back: no secret, no expected
/// signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("missing `{0}` header")]
    MissingHeader(String),
    #[error("`{header}` is malformed: {why}")]
    Malformed { header: String, why: String },
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("wrong `{0}`")]
    WrongToken(String),
    #[error(
        "the signature's timestamp is {age} s {direction} (tolerance {tolerance} s): refused as a replay",
        direction = if *.ahead { "in the future" } else { "old" }
    )]
    Stale {
        age: u64,
        ahead: bool,
        tolerance: u64,
    },
    #[error("the webhook secret cannot be used: {0}")]
    UnusableSecret(String),
}

/// Checks the request; `now` is the Unix time in seconds.
pub fn verify(
    check: Check<'_>,
    secrets: &[String],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    match check {
        Check::Token { header } => {
            let given = header_text(headers, &[header])?;
            let given = given.strip_prefix("Bearer ").unwrap_or(given);
            // Every secret is compared, so the time does not tell which one matched.
            let matched = secrets.iter().fold(false, |found, secret| {
                found | constant_time_eq(given.as_bytes(), secret.as_bytes())
            });
            matched
                .then_some(())
                .ok_or_else(|| Refusal::WrongToken(header.to_owned()))
        }
        Check::Hmac { header, prefix } => {
            let candidate = hex_after(headers, header, prefix)?;
            match_any(secrets, &[body], &[candidate], raw_key)
        }
        Check::Signed {
            scheme,
            tolerance,
            target,
        } => match scheme {
            SignatureScheme::Stripe => stripe(secrets, headers, body, now, tolerance),
            SignatureScheme::StandardWebhooks => {
                standard_webhooks(secrets, headers, body, now, tolerance)
            }
            SignatureScheme::Github => {
                let candidate = hex_after(headers, "x-hub-signature-256", "sha256=")?;
                match_any(secrets, &[body], &[candidate], raw_key)
            }
            SignatureScheme::Slack => {
                let stamp_header = "x-slack-request-timestamp";
                let stamp = header_text(headers, &[stamp_header])?;
                let at = timestamp(stamp_header, stamp)?;
                let candidate = hex_after(headers, "x-slack-signature", "v0=")?;
                let signed = format!("v0:{stamp}:");
                match_any(secrets, &[signed.as_bytes(), body], &[candidate], raw_key)?;
                fresh(at, now, tolerance)
            }
            SignatureScheme::Hubspot => {
                hubspot::verify(secrets, target, headers, body, now, tolerance)
            }
        },
    }
}

/// The sender's id of this delivery, the default dedupe key: a sender retries
/// with the same id, and a captured request replayed within the window
/// repeats it.
pub fn delivery_id(
    scheme: SignatureScheme,
    headers: &HeaderMap,
    body: &serde_json::Value,
) -> Option<String> {
    let header = |names: &[&str]| header_text(headers, names).ok().map(str::to_owned);
    let field = |name: &str| body.get(name)?.as_str().map(str::to_owned);
    match scheme {
        SignatureScheme::StandardWebhooks => header(&["webhook-id", "svix-id"]),
        SignatureScheme::Github => header(&["x-github-delivery"]),
        // Stripe and Slack's Events API put the event's id in the body.
        SignatureScheme::Stripe => field("id"),
        SignatureScheme::Slack => field("event_id"),
        // HubSpot batches events in an array, each with its own `eventId`.
        SignatureScheme::Hubspot => None,
    }
    .filter(|id| !id.is_empty())
}

/// The headers that carry a signature, never handed to the scenario.
pub fn signature_headers(scheme: SignatureScheme) -> &'static [&'static str] {
    match scheme {
        SignatureScheme::Stripe => &["stripe-signature"],
        SignatureScheme::StandardWebhooks => &["webhook-signature", "svix-signature"],
        SignatureScheme::Github => &["x-hub-signature-256", "x-hub-signature"],
        SignatureScheme::Slack => &["x-slack-signature"],
        SignatureScheme::Hubspot => &[hubspot::SIGNATURE, "x-hubspot-signature"],
    }
}

/// `Stripe-Signature: t=1700000000,v1=hex[,v1=hex][,v0=...]` over `t.body`.
fn stripe(
    secrets: &[String],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: u64,
) -> Result<(), Refusal> {
    let header = "stripe-signature";
    let given = header_text(headers, &[header])?;
    let mut stamp = None;
    let mut candidates = Vec::new();
    for part in given.split(',').take(64) {
        match part.trim().split_once('=') {
            Some(("t", t)) if stamp.is_none() => stamp = Some(t),
            Some(("v1", hex)) => candidates
                .push(decode_hex(hex).ok_or_else(|| malformed(header, "`v1` is not hex"))?),
            _ => {}
        }
    }
    let stamp = stamp.ok_or_else(|| malformed(header, "no `t=` timestamp"))?;
    if candidates.is_empty() {
        return Err(malformed(header, "no `v1=` signature"));
    }
    let at = timestamp(header, stamp)?;
    let signed = format!("{stamp}.");
    match_any(secrets, &[signed.as_bytes(), body], &candidates, raw_key)?;
    fresh(at, now, tolerance)
}

/// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,base64 [v1,base64]`
/// over `id.timestamp.body`; Svix sends the same under `svix-*`.
fn standard_webhooks(
    secrets: &[String],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: u64,
) -> Result<(), Refusal> {
    let id = header_text(headers, &["webhook-id", "svix-id"])?;
    let stamp = header_text(headers, &["webhook-timestamp", "svix-timestamp"])?;
    let at = timestamp("webhook-timestamp", stamp)?;
    let header = "webhook-signature";
    let given = header_text(headers, &[header, "svix-signature"])?;
    let base64 = base64::engine::general_purpose::STANDARD;
    let candidates: Vec<Vec<u8>> = given
        .split(' ')
        .take(64)
        .filter_map(|part| part.strip_prefix("v1,"))
        .map(|b64| {
            base64
                .decode(b64)
                .map_err(|_| malformed(header, "a `v1` signature is not base64"))
        })
        .collect::<Result<_, _>>()?;
    if candidates.is_empty() {
        return Err(malformed(header, "no `v1,` signature"));
    }
    let signed = format!("{id}.{stamp}.");
    match_any(secrets, &[signed.as_bytes(), body], &candidates, |secret| {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        base64.decode(encoded).map_err(|_| {
            Refusal::UnusableSecret(
                "a standard_webhooks secret is `whsec_` followed by base64".to_owned(),
            )
        })
    })?;
    fresh(at, now, tolerance)
}

/// The bytes of a hex signature in `header`, after `prefix`.
fn hex_after(headers: &HeaderMap, header: &str, prefix: &str) -> Result<Vec<u8>, Refusal> {
    let given = header_text(headers, &[header])?;
    let hex = given
        .strip_prefix(prefix)
        .ok_or_else(|| malformed(header, &format!("it does not start with `{prefix}`")))?;
    decode_hex(hex.trim()).ok_or_else(|| malformed(header, "not hex"))
}

fn raw_key(secret: &str) -> Result<Vec<u8>, Refusal> {
    Ok(secret.as_bytes().to_vec())
}

/// Whether any candidate signature is the HMAC of `parts` under any secret.
/// Every pair is compared, so the time taken does not depend on which matched.
fn match_any(
    secrets: &[String],
    parts: &[&[u8]],
    candidates: &[Vec<u8>],
    key_of: impl Fn(&str) -> Result<Vec<u8>, Refusal>,
) -> Result<(), Refusal> {
    let mut matched = false;
    for secret in secrets {
        let key = key_of(secret)?;
        let mut mac = HmacSha256::new_from_slice(&key)
            .map_err(|_| Refusal::UnusableSecret("not a valid HMAC key".to_owned()))?;
        for part in parts {
            mac.update(part);
        }
        let expected = mac.finalize().into_bytes();
        for candidate in candidates {
            matched |= constant_time_eq(&expected, candidate);
        }
    }
    matched.then_some(()).ok_or(Refusal::Mismatch)
}

fn fresh(at: i64, now: i64, tolerance: u64) -> Result<(), Refusal> {
    let age = now.saturating_sub(at);
    if age.unsigned_abs() > tolerance {
        return Err(Refusal::Stale {
            age: age.unsigned_abs(),
            ahead: age < 0,
            tolerance,
        });
    }
    Ok(())
}

fn timestamp(header: &str, text: &str) -> Result<i64, Refusal> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| malformed(header, "the timestamp is not a whole number of seconds"))
}

/// The first of `names` present, as text.
fn header_text<'h>(headers: &'h HeaderMap, names: &[&str]) -> Result<&'h str, Refusal> {
    let value = names
        .iter()
        .find_map(|name| headers.get(*name))
        .ok_or_else(|| Refusal::MissingHeader(names[0].to_owned()))?;
    value
        .to_str()
        .map_err(|_| malformed(names[0], "not visible ASCII"))
}

fn malformed(header: &str, why: &str) -> Refusal {
    Refusal::Malformed {
        header: header.to_owned(),
        why: why.to_owned(),
    }
}

/// Equal length and equal bytes, in time that depends only on the length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
