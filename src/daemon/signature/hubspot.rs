//! HubSpot's v3 request signature: `X-HubSpot-Signature-v3`, the base64
//! HMAC-SHA256 under the app's client secret of the method, the full URL
//! HubSpot called, the body and `X-HubSpot-Request-Timestamp` (milliseconds),
//! concatenated. Following "Validating requests from HubSpot"
//! (developers.hubspot.com/docs/api/webhooks/validating-requests): the URL's
//! percent-encoded characters of HubSpot's list are decoded first, and
//! a timestamp older than five minutes is refused.

use axum::http::HeaderMap;
use base64::Engine;

use super::{fresh, header_text, malformed, match_any, raw_key, Refusal, Target};

pub(super) const SIGNATURE: &str = "x-hubspot-signature-v3";
pub(super) const TIMESTAMP: &str = "x-hubspot-request-timestamp";

pub(super) fn verify(
    secrets: &[String],
    target: Target<'_>,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance: u64,
) -> Result<(), Refusal> {
    let stamp = header_text(headers, &[TIMESTAMP])?.trim();
    let millis: i64 = stamp.parse().map_err(|_| {
        malformed(
            TIMESTAMP,
            "the timestamp is not a whole number of milliseconds",
        )
    })?;
    let given = header_text(headers, &[SIGNATURE])?;
    let candidate = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .map_err(|_| malformed(SIGNATURE, "not base64"))?;
    let url = decoded_url(target.url);
    let parts: [&[u8]; 4] = [
        target.method.as_bytes(),
        url.as_bytes(),
        body,
        stamp.as_bytes(),
    ];
    match_any(secrets, &parts, &[candidate], raw_key)?;
    fresh(millis.div_euclid(1000), now, tolerance)
}

/// The URL with the percent-encodings HubSpot decodes before signing
/// turned back into their characters; every other one is kept as sent.
fn decoded_url(url: &str) -> String {
    const DECODED: &[(&str, char)] = &[
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3);
        match code.and_then(|c| DECODED.iter().find(|(hex, _)| hex.eq_ignore_ascii_case(c))) {
            Some((_, ch)) => {
                out.push(*ch);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::decoded_url;

    #[test]
    fn only_the_listed_encodings_are_decoded() {
        assert_eq!(
            decoded_url("https://h.example/hooks/deals?a=%3A%2f%40%20%25x&b=%"),
            "https://h.example/hooks/deals?a=:/@%20%25x&b=%"
        );
    }
}
