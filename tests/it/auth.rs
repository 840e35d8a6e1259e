//! Connections that sign in with `auth:` (a bearer token, a user and
//! password, an API key in a header or in the query): what reaches the
//! server, and that no credential shows in a dry run, an error, the trace or
//! the stored history (the Basic header's base64 included).

use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::Scenarist;

const TOKEN: &str = "tok-6f1c2a9e8b";
const PASSWORD: &str = "pw-93be4417c0";
const KEY: &str = "key-51d0aa73e2";

fn scenario(url: &str) -> String {
    format!(
        r#"name: signed-in
env: [API_TOKEN, API_USER, API_PASSWORD, API_KEY]
connections:
  crm: {{ base_url: "{url}", auth: {{ bearer: {{ token: "{{{{ env.API_TOKEN }}}}" }} }} }}
  billing: {{ base_url: "{url}", auth: {{ basic: {{ user: "{{{{ env.API_USER }}}}", password: "{{{{ env.API_PASSWORD }}}}" }} }} }}
  keyed: {{ base_url: "{url}", auth: {{ api_key: {{ header: X-Api-Key, value: "{{{{ env.API_KEY }}}}" }} }} }}
  query: {{ base_url: "{url}", auth: {{ api_key: {{ query: api_key, value: "{{{{ env.API_KEY }}}}" }} }} }}
steps:
  - id: bearer
    http: {{ connection: crm, path: /bearer }}
  - id: basic
    http: {{ connection: billing, method: POST, path: /basic, json: {{ ok: true }} }}
  - id: header_key
    http: {{ connection: keyed, path: /header }}
  - id: query_key
    http: {{ connection: query, path: /query, query: {{ page: 1 }} }}
"#
    )
}

fn run(dir: &tempfile::TempDir, file: &std::path::Path, extra: &[&str]) -> Scenarist {
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    Scenarist::new()
        .args(["run"])
        .arg_path(file)
        .args(extra)
        .args(["--output", "json", "--store", &store])
        .env("API_TOKEN", TOKEN)
        .env("API_USER", "ops")
        .env("API_PASSWORD", PASSWORD)
        .env("API_KEY", KEY)
}

/// The SQLite store's files (database, log), as text, to search for secrets.
fn stored(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("store.db")
        {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    text
}

fn leaked(text: &str) -> Vec<&'static str> {
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("ops:{PASSWORD}"))
    };
    let basic: &'static str = Box::leak(basic.into_boxed_str());
    [TOKEN, PASSWORD, KEY, basic]
        .into_iter()
        .filter(|secret| text.contains(secret))
        .collect()
}

#[tokio::test]
async fn each_kind_signs_its_requests_and_no_credential_shows_anywhere() {
    let server = MockServer::start().await;
    let ok = || ResponseTemplate::new(200).set_body_json(serde_json::json!({ "ok": true }));
    Mock::given(method("GET"))
        .and(path("/bearer"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ok())
        .expect(2)
        .mount(&server)
        .await;
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("ops:{PASSWORD}"))
    };
    Mock::given(method("POST"))
        .and(path("/basic"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/header"))
        .and(header("x-api-key", KEY))
        .respond_with(ok())
        .expect(2)
        .mount(&server)
        .await;
    // The key in the query is refused once: the error names the URL, masked.
    Mock::given(method("GET"))
        .and(path("/query"))
        .and(query_param("api_key", KEY))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signed-in.yaml");
    std::fs::write(&file, scenario(&server.uri())).unwrap();

    let out = run(&dir, &file, &[]).run().await;
    assert_eq!(
        out.code, 1,
        "the last step fails on the 500: {}",
        out.stderr
    );
    let doc: Value = out.json();
    for step in ["bearer", "basic", "header_key"] {
        assert_eq!(doc["steps"][step]["status"], "succeeded", "{step}: {doc}");
    }
    let error = doc["steps"]["query_key"]["error"].as_str().unwrap();
    assert!(
        error.contains("api_key=***") && error.contains("answered 500"),
        "{error}"
    );
    assert!(
        leaked(&out.stdout).is_empty() && leaked(&out.stderr).is_empty(),
        "{:?}\n{}\n{}",
        leaked(&out.stdout),
        out.stdout,
        out.stderr
    );

    // A dry run sends the GETs again and shows the POST it would send, masked.
    let dry = run(&dir, &file, &["--dry-run"]).run().await;
    let shown: Value = dry.json();
    assert_eq!(
        shown["steps"]["basic"]["output"]["request"]["headers"]["Authorization"], "***",
        "{shown}"
    );
    assert!(
        leaked(&dry.stdout).is_empty() && leaked(&dry.stderr).is_empty(),
        "{:?}",
        leaked(&dry.stdout)
    );

    // Nothing of them in the stored history.
    let stored = stored(dir.path());
    assert!(!stored.is_empty());
    assert!(
        leaked(&stored).is_empty(),
        "{:?} in the store",
        leaked(&stored)
    );
}

/// `oauth2` (client credentials) against a token endpoint on loopback: one
/// token for the steps that follow one another, a new one before the first
/// expires, and once more when the API answers 401; none of them shows.
#[tokio::test]
async fn an_oauth2_connection_mints_refreshes_before_expiry_and_once_on_a_401() {
    use wiremock::matchers::body_string_contains;
    let server = MockServer::start().await;
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("svc-client:{PASSWORD}"))
    };
    let token = |access: &str, lifetime: u64| {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({ "access_token": access, "token_type": "Bearer", "expires_in": lifetime }))
    };
    for (access, lifetime) in [("at-1-9c2e", 61), ("at-2-41f7", 3600), ("at-3-d08b", 3600)] {
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(header("authorization", format!("Basic {basic}").as_str()))
            .and(body_string_contains("grant_type=client_credentials"))
            .and(body_string_contains("scope=contacts.read+deals.write"))
            .respond_with(token(access, lifetime))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
    }
    let ok = || ResponseTemplate::new(200).set_body_json(serde_json::json!({ "ok": true }));
    let bearer = |t: &str| format!("Bearer {t}");
    Mock::given(path("/a"))
        .and(header("authorization", bearer("at-1-9c2e").as_str()))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/slow"))
        .and(header("authorization", bearer("at-1-9c2e").as_str()))
        .respond_with(ok().set_delay(std::time::Duration::from_millis(1300)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .and(header("authorization", bearer("at-2-41f7").as_str()))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    // The API stops taking the second token: one 401, a new token, one retry.
    Mock::given(path("/c"))
        .and(header("authorization", bearer("at-2-41f7").as_str()))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/c"))
        .and(header("authorization", bearer("at-3-d08b").as_str()))
        .respond_with(ok())
        .expect(1)
        .mount(&server)
        .await;
    let yaml = format!(
        r#"name: oauth
env: [CRM_CLIENT_ID, CRM_CLIENT_SECRET]
connections:
  crm:
    base_url: "{url}"
    auth:
      oauth2:
        grant: client_credentials
        token_url: "{url}/oauth/token"
        client_id: "{{{{ env.CRM_CLIENT_ID }}}}"
        client_secret: "{{{{ env.CRM_CLIENT_SECRET }}}}"
        scopes: [contacts.read, deals.write]
steps:
  - {{ id: a, http: {{ connection: crm, path: /a }} }}
  - {{ id: slow, http: {{ connection: crm, path: /slow }} }}
  - {{ id: b, http: {{ connection: crm, path: /b }} }}
  - {{ id: c, http: {{ connection: crm, path: /c }} }}
"#,
        url = server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oauth.yaml");
    std::fs::write(&file, yaml).unwrap();
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let out = Scenarist::new()
        .args(["run"])
        .arg_path(&file)
        .args(["--output", "json", "--store", &store])
        .env("CRM_CLIENT_ID", "svc-client")
        .env("CRM_CLIENT_SECRET", PASSWORD)
        .run()
        .await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let seen = out.stdout.clone() + &out.stderr + &stored(dir.path());
    for secret in [
        "at-1-9c2e",
        "at-2-41f7",
        "at-3-d08b",
        PASSWORD,
        basic.as_str(),
    ] {
        assert!(!seen.contains(secret), "{secret} shows");
    }
}

/// A token endpoint that refuses the client: the step fails and says why.
#[tokio::test]
async fn a_refused_sign_in_fails_the_step_with_the_servers_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({ "error": "invalid_client", "error_description": "unknown client" }),
        ))
        .mount(&server)
        .await;
    let yaml = format!(
        "name: refused\nenv: [SECRET]\nconnections:\n  crm:\n    base_url: \"{url}\"\n    auth: {{ oauth2: {{ grant: client_credentials, token_url: \"{url}/oauth/token\", client_id: svc, client_secret: \"{{{{ env.SECRET }}}}\", client_auth: client_secret_post }} }}\nsteps:\n  - {{ id: a, http: {{ connection: crm, path: /a }} }}\n",
        url = server.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refused.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = Scenarist::new()
        .args(["run"])
        .arg_path(&file)
        .args(["--output", "json", "--store", "memory"])
        .env("SECRET", PASSWORD)
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let error = out.json()["steps"]["a"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("connections.crm: the token endpoint refused to sign in (401, invalid_client: unknown client)"), "{error}");
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
}
