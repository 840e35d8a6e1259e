//! Security schemes to a connection's `auth:`, with the env values it
//! reads. Preferred: a bearer token, an API key, OAuth2 (client credentials,
//! then authorization code), Basic; OpenID Connect and cookies cannot be
//! mapped and say so.

use serde_json::{json, Value};

/// Lower is preferred.
pub fn preference(scheme: &Value, swagger: bool) -> u8 {
    let kind = scheme
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let http = scheme
        .get("scheme")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (kind, http.to_ascii_lowercase().as_str()) {
        ("http", "bearer") => 0,
        ("apiKey", _) if scheme.get("in").and_then(Value::as_str) != Some("cookie") => 1,
        ("oauth2", _) => 2,
        ("http", "basic") | ("basic", _) => 3,
        _ if swagger => 4,
        _ => 5,
    }
}

/// The auth of the first scheme that maps, its env names (`(name, secret)`),
/// and what could not be mapped.
pub fn map(
    schemes: &[(String, &Value)],
    env_prefix: &str,
    swagger: bool,
) -> (Option<Value>, Vec<(String, bool)>, Vec<String>) {
    let mut notes = Vec::new();
    for (name, scheme) in schemes {
        let var = |suffix: &str| format!("{env_prefix}_{suffix}");
        let template = |suffix: &str| format!("{{{{ env.{env_prefix}_{suffix} }}}}");
        let kind = scheme
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let http = scheme
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        match (kind, http.as_str()) {
            ("http", "bearer") => {
                return (
                    Some(json!({ "bearer": { "token": template("TOKEN") } })),
                    vec![(var("TOKEN"), true)],
                    notes,
                )
            }
            ("apiKey", _) => {
                let key = scheme
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("api_key");
                let place = scheme.get("in").and_then(Value::as_str).unwrap_or("header");
                if place == "cookie" {
                    notes.push(format!(
                        "security scheme `{name}`: an API key in a cookie cannot be mapped"
                    ));
                    continue;
                }
                return (
                    Some(json!({ "api_key": { place: key, "value": template("API_KEY") } })),
                    vec![(var("API_KEY"), true)],
                    notes,
                );
            }
            ("oauth2", _) => {
                let flows = if swagger {
                    let flow = scheme
                        .get("flow")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let flow = match flow {
                        "application" => "clientCredentials",
                        "accessCode" => "authorizationCode",
                        other => other,
                    };
                    json!({ flow: scheme })
                } else {
                    scheme.get("flows").cloned().unwrap_or(json!({}))
                };
                let client = |grant: &str, flow: &Value| {
                    let mut oauth = json!({
                        "grant": grant,
                        "token_url": flow.get("tokenUrl").cloned().unwrap_or(json!("")),
                        "client_id": template("CLIENT_ID"),
                        "client_secret": template("CLIENT_SECRET"),
                    });
                    if let Some(url) = flow.get("authorizationUrl") {
                        oauth["authorization_url"] = url.clone();
                    }
                    json!({ "oauth2": oauth })
                };
                let env = vec![(var("CLIENT_ID"), false), (var("CLIENT_SECRET"), true)];
                if let Some(flow) = flows.get("clientCredentials") {
                    return (Some(client("client_credentials", flow)), env, notes);
                }
                if let Some(flow) = flows.get("authorizationCode") {
                    return (Some(client("authorization_code", flow)), env, notes);
                }
                notes.push(format!("security scheme `{name}`: only the client-credentials and authorization-code OAuth2 flows are mapped"));
            }
            ("http", "basic") | ("basic", _) => {
                return (
                    Some(
                        json!({ "basic": { "user": template("USER"), "password": template("PASSWORD") } }),
                    ),
                    vec![(var("USER"), false), (var("PASSWORD"), true)],
                    notes,
                )
            }
            _ => notes.push(format!(
                "security scheme `{name}` ({kind}) cannot be mapped; add `auth:` by hand"
            )),
        }
    }
    (None, Vec::new(), notes)
}
