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
    let mut stored = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("store.db")
        {
            stored.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    assert!(!stored.is_empty());
    assert!(
        leaked(&stored).is_empty(),
        "{:?} in the store",
        leaked(&stored)
    );
}
