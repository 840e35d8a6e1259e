//! What the targets share: the context templates, JSONPath and conditions are
//! evaluated against, shaped like an execution's (`trigger`, `vars`, `env`,
//! `steps`).

use handlebars::Context;
use serde_json::{json, Value};

/// Splits an input at its first NUL byte: the text to compile, then an
/// optional JSON document. The seeds are written this way.
pub fn split(text: &str) -> (&str, Option<&str>) {
    match text.split_once('\0') {
        Some((head, tail)) => (head, Some(tail)),
        None => (text, None),
    }
}

/// An execution's context; `body` (JSON, when it parses) replaces the trigger's body.
pub fn context(body: Option<&str>) -> Context {
    let body = body
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .unwrap_or_else(|| {
            json!({
                "email": " Ada@Example.com ", "first_name": "Ada", "amount": "750",
                "deal": { "id": "d-1", "stage": "closed_won", "amount": 1200, "contact_email": "ada@example.com" },
                "items": [1, 2.5, "3", null, true, { "k": "v" }, []],
                "when": "2026-03-29", "ts": 1774747800, "flag": false, "n": null, "empty": ""
            })
        });
    Context::from(json!({
        "trigger": {
            "body": body,
            "headers": { "content-type": "application/json", "x-request-id": "r-1" },
            "query": { "source": "form", "page": "2" },
            "received_at": "2026-03-29T01:30:00.000Z"
        },
        "vars": { "min_deal_amount": 500, "reward_share": 0.1, "segments": ["smb", "enterprise"] },
        "env": { "REFERRAL_API": "http://127.0.0.1:8080", "REFERRAL_TOKEN": "t0ken" },
        "steps": {
            "find_referral": { "status": 200, "body": { "data": { "status": "pending", "users": [{ "id": 7 }] } } },
            "reward": { "amount": 120 }
        },
        "item": { "id": 3, "name": "x" },
        "index": 0
    }))
}
