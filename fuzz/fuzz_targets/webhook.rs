//! The webhook handler's reading of untrusted request parts: the query
//! string, the headers and the JSON body, then what a scenario computes from
//! them before anything is stored (input schema, dedupe key, business keys).
//!
//! Input, written like an HTTP request: the query string on the first line,
//! `name: value` header lines, an empty line, then the body.
//!
//! The signature checks of every scheme (`daemon::signature`) read the same
//! parts first, as the handler does before it parses the body.
//!
//! To fuzz another part of the handler, add a function below and call it
//! from `fuzz_target!` with the same parts.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use handlebars::Context;
use libfuzzer_sys::fuzz_target;
use scenarist::fuzzing::{self, HeaderMap, HeaderName, HeaderValue};
use scenarist::plan::Plan;
use serde_json::{json, Value};

/// The parts of one request, as the router hands them to the handler.
struct Request<'a> {
    query: Option<&'a str>,
    headers: HeaderMap,
    body: &'a [u8],
}

fn parse(data: &[u8]) -> Request<'_> {
    let (head, body) = match find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &b""[..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let query = lines
        .next()
        .and_then(|line| std::str::from_utf8(line).ok())
        .filter(|q| !q.is_empty());
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        // Only what hyper would accept reaches the handler.
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    Request {
        query,
        headers,
        body,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A webhook scenario with what reads the request: token auth (whose header
/// is dropped), an input schema, a dedupe key and business keys.
const SCENARIO: &str = r#"
name: fuzz-webhook
env: [HOOK_TOKEN]
vars: { campaign: 4211 }
trigger:
  webhook:
    path: forms/signup
    auth: { token: { header: X-Token, secret: "{{ env.HOOK_TOKEN }}" } }
    dedupe: "{{ lower (trim trigger.body.email) }}-{{ trigger.query.source }}"
input:
  schema:
    type: object
    required: [email]
    properties:
      email: { type: string, format: email, maxLength: 200 }
      amount: { type: [number, string], pattern: "^[0-9]+$" }
      tags: { type: array, items: { type: string }, maxItems: 10 }
settings:
  keys: { lead: "{{ lower trigger.body.email }}", page: "{{ trigger.headers.x-page }}" }
steps:
  - id: noted
    set: { email: "{{ trigger.body.email }}" }
"#;

fn plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let loaded = scenarist::load::load_str(Path::new("fuzz-webhook.yaml"), SCENARIO.into())
            .expect("the fuzz scenario loads");
        scenarist::plan::compile(&loaded).expect("the fuzz scenario compiles")
    })
}

/// What `/hooks/<path>` reads from the request, in the handler's order.
fn handle(plan: &Plan, request: &Request<'_>) {
    let webhook = plan.webhook.as_ref().expect("a webhook scenario");
    let Ok(body) = fuzzing::webhook_body(request.body) else {
        return; // 400
    };
    if !plan.input_violations(&body).is_empty() {
        return; // 422
    }
    let trigger = json!({
        "body": body,
        "headers": fuzzing::webhook_headers(&request.headers, webhook.auth.as_ref()),
        "query": fuzzing::webhook_query(request.query),
        "received_at": "2026-03-29T01:30:00.000Z",
    });
    let ctx = Context::from(json!({
        "trigger": trigger,
        "env": { "HOOK_TOKEN": "t0ken" },
        "vars": Value::Object(plan.vars.clone()),
    }));
    if let Some(dedupe) = &webhook.dedupe {
        let _ = dedupe.eval_ref(&ctx);
    }
    let _ = plan.business_keys(&ctx);
}

/// Every signature scheme over the request, with a rotation of secrets
/// (one a valid `whsec_` base64 key, one not) and the seeds' time.
fn signatures(request: &Request<'_>) {
    use scenarist::daemon::signature::{delivery_id, verify, Check, Target};
    use scenarist::model::SignatureScheme;
    let secrets = [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        "plain-secret".to_owned(),
    ];
    let now = 1_614_265_330;
    for scheme in SignatureScheme::ALL {
        let check = Check::Signed {
            scheme,
            tolerance: 300,
            target: Target {
                method: "POST",
                url: request.query.unwrap_or("https://h.example/hooks/x?a=%3A%2"),
            },
        };
        let _ = verify(check, &secrets, &request.headers, request.body, now);
        let _ = delivery_id(scheme, &request.headers, &Value::Null);
    }
    let hmac = Check::Hmac {
        header: "x-signature",
        prefix: "sha256=",
    };
    let _ = verify(hmac, &secrets, &request.headers, request.body, now);
    let token = Check::Token { header: "x-token" };
    let _ = verify(token, &secrets, &request.headers, request.body, now);
}

fuzz_target!(|data: &[u8]| {
    let request = parse(data);
    signatures(&request);
    // Each parser on its own too, so none hides behind an earlier refusal.
    let _ = fuzzing::webhook_query(request.query);
    let _ = fuzzing::webhook_headers(&request.headers, None);
    handle(plan(), &request);
});
