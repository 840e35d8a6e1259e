//! The outbound guard, through the real daemon: a URL that comes from a
//! webhook body must not reach the machine's own network when the daemon
//! serves beyond loopback, nor cloud metadata ever; `--allow-network` and a
//! connection's `allow_private` open what the operator chooses.

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon_util::{serve, serve_on, ServeOptions, Served};
use crate::util::Scenarist;

const TOKEN: &str = "admin-token-for-outbound-tests";

/// `fetch` GETs the URL the webhook body names (with retries, which a
/// refusal must not use); `internal` calls a connection that allows private
/// addresses.
const FETCH: &str = r#"name: fetch
trigger:
  webhook: { path: fetch, respond: after_run }
steps:
  - id: get
    http: { method: GET, url: "{{ trigger.body.url }}" }
    retry: { attempts: 3, backoff: fixed, initial: 10ms }
"#;

fn internal(base: &str) -> String {
    format!(
        r#"name: internal
connections:
  crm: {{ base_url: "{base}", allow_private: true }}
trigger:
  webhook: {{ path: internal, respond: after_run }}
steps:
  - id: get
    http: {{ method: GET, connection: crm, path: /ok }}
"#
    )
}

struct Guarded {
    dir: tempfile::TempDir,
    downstream: MockServer,
}

async fn setup() -> Guarded {
    let downstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "ok": true })))
        .mount(&downstream)
        .await;
    let port = downstream.address().port();
    let redirect = |from: &str, to: String| {
        Mock::given(method("GET"))
            .and(path(from.to_owned()))
            .respond_with(ResponseTemplate::new(302).insert_header("location", to.as_str()))
    };
    redirect("/to-private", "http://10.255.255.1/admin".to_owned())
        .mount(&downstream)
        .await;
    redirect(
        "/to-metadata",
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    )
    .mount(&downstream)
    .await;
    redirect("/to-file", "file:///etc/passwd".to_owned())
        .mount(&downstream)
        .await;
    for hop in 0..7 {
        redirect(
            &format!("/hop{hop}"),
            format!("http://127.0.0.1:{port}/hop{}", hop + 1),
        )
        .mount(&downstream)
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    std::fs::write(scenarios.join("fetch.yaml"), FETCH).unwrap();
    std::fs::write(scenarios.join("internal.yaml"), internal(&downstream.uri())).unwrap();
    Guarded { dir, downstream }
}

impl Guarded {
    async fn start(&self, listen: &str, args: &[&str]) -> Served {
        self.start_with(listen, args, &[]).await
    }

    async fn start_with(&self, listen: &str, args: &[&str], env: &[(&str, String)]) -> Served {
        let store = format!(
            "sqlite://{}",
            self.dir
                .path()
                .join(format!("store-{}.db", args.len()))
                .display()
        );
        let options = ServeOptions {
            dir: &self.dir.path().join("scenarios"),
            store: &store,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: [("SCENARIST_ADMIN_TOKEN", TOKEN.to_owned())]
                .iter()
                .chain(env)
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            log: self.dir.path().join("daemon.log"),
        };
        if listen.starts_with("127.") {
            serve(&options).await
        } else {
            serve_on(&options, listen).await
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}{path}",
            self.downstream.address().port()
        )
    }

    /// How many requests the downstream server got for `path`.
    async fn hits(&self, at: &str) -> usize {
        let requests = self
            .downstream
            .received_requests()
            .await
            .unwrap_or_default();
        requests.iter().filter(|r| r.url.path() == at).count()
    }
}

/// Runs `fetch` with `url`; the execution as stored.
async fn fetch(daemon: &Served, hook: &str, url: &str) -> Value {
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{}/hooks/{hook}", daemon.url))
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = answer["execution_id"].as_str().expect("an execution id");
    client
        .get(format!("{}/api/executions/{id}", daemon.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The execution failed at the guard, on the first attempt, saying why.
fn assert_refused(execution: &Value, words: &[&str]) {
    assert_eq!(execution["status"], "failed", "{execution:#}");
    let message = execution["error"].as_str().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "`{message}` should say `{word}`");
    }
    let step = &execution["steps"][0];
    assert_eq!(step["attempts"], 1, "a refusal is not retried: {step:#}");
}

#[tokio::test]
async fn beyond_loopback_private_and_metadata_addresses_are_refused_in_every_form() {
    let guarded = setup().await;
    let daemon = guarded.start("0.0.0.0:0", &[]).await;
    let port = guarded.downstream.address().port();

    let direct = fetch(&daemon, "fetch", &guarded.url("/ok")).await;
    assert_refused(
        &direct,
        &[
            "refused to connect to 127.0.0.1",
            "private address",
            "--allow-network",
        ],
    );
    let mapped = fetch(
        &daemon,
        "fetch",
        &format!("http://[::ffff:127.0.0.1]:{port}/ok"),
    )
    .await;
    assert_refused(&mapped, &["127.0.0.1", "loopback"]);
    // A name whose DNS answer is loopback: checked after resolving.
    let named = fetch(&daemon, "fetch", &format!("http://localhost:{port}/ok")).await;
    assert_refused(&named, &["refused to connect to localhost", "loopback"]);
    let metadata = fetch(&daemon, "fetch", "http://169.254.169.254/latest/meta-data/").await;
    assert_refused(&metadata, &["169.254.169.254", "always refused"]);
    assert_eq!(
        guarded.hits("/ok").await,
        0,
        "nothing reached the private server"
    );

    // A connection that allows private addresses reaches its internal server.
    let internal = fetch(&daemon, "internal", "").await;
    assert_eq!(internal["status"], "succeeded", "{internal:#}");
    assert_eq!(guarded.hits("/ok").await, 1);
    daemon.stop().await;
}

#[tokio::test]
async fn allowed_ranges_open_the_way_and_redirects_are_checked_at_every_hop() {
    let guarded = setup().await;
    let daemon = guarded
        .start("0.0.0.0:0", &["--allow-network", "127.0.0.1/32,::1"])
        .await;
    let ok = fetch(&daemon, "fetch", &guarded.url("/ok")).await;
    assert_eq!(ok["status"], "succeeded", "{ok:#}");
    assert_eq!(guarded.hits("/ok").await, 1);

    let private = fetch(&daemon, "fetch", &guarded.url("/to-private")).await;
    assert_refused(&private, &["10.255.255.1", "private address"]);
    let metadata = fetch(&daemon, "fetch", &guarded.url("/to-metadata")).await;
    assert_refused(&metadata, &["169.254.169.254", "always refused"]);
    // A redirect to another scheme is not followed: the 302 is the answer.
    let file = fetch(&daemon, "fetch", &guarded.url("/to-file")).await;
    assert_eq!(file["status"], "failed", "{file:#}");
    assert!(
        file["error"].as_str().unwrap().contains("answered 302"),
        "{file:#}"
    );
    // Five redirects are followed, the sixth is refused.
    let long = fetch(&daemon, "fetch", &guarded.url("/hop0")).await;
    assert_refused(&long, &["more than 5 redirects"]);
    assert_eq!(guarded.hits("/hop5").await, 1);
    assert_eq!(guarded.hits("/hop6").await, 0);
    daemon.stop().await;
}

#[tokio::test]
async fn on_loopback_local_servers_work_and_metadata_is_still_refused() {
    let guarded = setup().await;
    let daemon = guarded.start("127.0.0.1:0", &[]).await;
    let ok = fetch(&daemon, "fetch", &guarded.url("/ok")).await;
    assert_eq!(ok["status"], "succeeded", "{ok:#}");
    let metadata = fetch(&daemon, "fetch", "http://[::ffff:169.254.169.254]/latest").await;
    assert_refused(&metadata, &["169.254.169.254", "always refused"]);
    daemon.stop().await;

    // `scenarist run` too: the metadata address is refused before any connection.
    let scenario = guarded.dir.path().join("scenarios/fetch.yaml");
    let out = Scenarist::new()
        .args(["run"])
        .arg_path(&scenario)
        .args(["--input", "-"])
        .stdin(r#"{"url":"http://169.254.169.254/latest"}"#)
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("always refused"), "{all}");
}

#[tokio::test]
async fn a_bad_allowed_range_is_a_positioned_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\nconnections:\n  crm: { base_url: \"http://crm\", allow_network: [10.0.0.0/33] }\nsteps:\n  - id: get\n    http: { method: GET, connection: crm, path: /x }\n",
    )
    .unwrap();
    let out = Scenarist::new()
        .args(["validate"])
        .arg_path(&file)
        .run()
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("connections.crm.allow_network[0]")
            && out.stderr.contains("not an address or a CIDR range"),
        "{}",
        out.stderr
    );
    let flag = Scenarist::new()
        .args(["serve", "--allow-network", "nowhere", "--dir"])
        .arg_path(dir.path())
        .run()
        .await;
    assert_eq!(flag.code, 2, "{}", flag.stderr);
    assert!(
        flag.stderr.contains("not an address or a CIDR range"),
        "{}",
        flag.stderr
    );
}

#[tokio::test]
async fn behind_a_proxy_the_target_is_checked_before_the_proxy_sees_it() {
    let guarded = setup().await;
    // A stand-in forward proxy on loopback: it answers every request itself.
    let proxy = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "proxied": true })))
        .mount(&proxy)
        .await;
    let daemon = guarded
        .start_with(
            "0.0.0.0:0",
            &[],
            &[("HTTP_PROXY", proxy.uri()), ("NO_PROXY", String::new())],
        )
        .await;
    let port = guarded.downstream.address().port();
    let named = fetch(&daemon, "fetch", &format!("http://localhost:{port}/ok")).await;
    assert_refused(&named, &["refused to connect to localhost", "loopback"]);
    let literal = fetch(&daemon, "fetch", "http://10.1.2.3/admin").await;
    assert_refused(&literal, &["10.1.2.3", "private address"]);
    assert!(
        proxy.received_requests().await.unwrap().is_empty(),
        "the proxy saw nothing refused"
    );
    // A public target goes through the proxy (which answers it; nothing leaves the machine).
    let public = fetch(&daemon, "fetch", "http://93.184.216.34/page").await;
    assert_eq!(public["status"], "succeeded", "{public:#}");
    assert_eq!(proxy.received_requests().await.unwrap().len(), 1);
    daemon.stop().await;
}
