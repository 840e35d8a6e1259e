//! Connections that a person connects (OAuth2 authorization code with PKCE)
//! against a real authorization server on loopback (oxide-auth's, see
//! `oauth_server.rs`): `scenarist connect` through the server's consent
//! page, the tokens sealed in the store, refreshed before expiry and once on
//! a 401, a rotated refresh token kept across processes, `invalid_grant`
//! stopping executions `incomplete` until a reconnect, the key's checks and
//! rekey, client credentials; and no token or secret anywhere it could leak.

use std::time::Duration;

use crate::connections_util::Setup;
use crate::oauth_server::{AuthServer, CLIENT_ID, CLIENT_SECRET, OWNER};
use crate::util::{Output, Scenarist};

fn step_output(out: &Output) -> serde_json::Value {
    out.json()["steps"]["me"]["output"].clone()
}

#[tokio::test]
async fn connect_signs_in_through_the_consent_page_with_pkce_and_seals_the_tokens() {
    let setup = Setup::new(3600, "60s").await;
    let before = setup.list().await;
    assert_eq!(before[0]["status"], "not_connected", "{before}");
    let not_yet = setup.run().await;
    assert_ne!(not_yet.code, 0);
    assert_eq!(not_yet.json()["status"], "incomplete", "{}", not_yet.stdout);
    assert!(
        not_yet.stdout.contains("connection `crm` needs to be reconnected: it was never connected: run `scenarist connect crm`"),
        "{}",
        not_yet.stdout
    );

    let printed = setup.connect().await;
    // The server grants the client's scopes, in an order of its own.
    let granted = printed
        .split("`crm` connected (scopes: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("{printed}"));
    let mut scopes: Vec<&str> = granted.split(' ').collect();
    scopes.sort();
    assert_eq!(scopes, ["read", "write"], "{printed}");
    assert!(
        printed.contains("1 execution(s) waiting for it go on"),
        "{printed}"
    );
    assert_eq!(setup.server.requests("authorization_code"), 1);

    let listed = setup.list().await;
    assert_eq!(listed[0]["status"], "connected", "{listed}");
    assert_eq!(listed[0]["grant"], "authorization_code");
    assert!(listed[0]["expires_at"].is_string(), "{listed}");

    let out = setup.run().await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(step_output(&out)["body"]["owner"], OWNER);
    // The token was fresh: no refresh, and none of it anywhere.
    assert_eq!(setup.server.requests("refresh_token"), 0);
    let every_output = format!(
        "{printed}{listed}{}{}{}",
        out.stdout,
        out.stderr,
        setup.stored()
    );
    assert_eq!(setup.leaked(&every_output), Vec::<String>::new());

    // The execution that stopped before the connection was there goes on once.
    let resumed = setup.scenarist(&["resume"]).run().await;
    assert_eq!(resumed.code, 0, "{resumed:?}");
    let history = setup
        .scenarist(&["executions", "list", "--output", "json"])
        .run()
        .await;
    let statuses: Vec<String> = history
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["succeeded", "succeeded"], "{}", history.stdout);
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_on_a_401_and_a_rotated_refresh_token_outlives_the_process(
) {
    // Tokens live 8s and are renewed 5s before: a token is used for 3s.
    let setup = Setup::new(8, "5s").await;
    setup.connect().await;
    let first = setup.run().await;
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(setup.server.requests("refresh_token"), 0);

    tokio::time::sleep(Duration::from_millis(3200)).await;
    // Another process: the store's row says the token is due, so it is
    // refreshed (the server rotates the refresh token and drops the old).
    let second = setup.run().await;
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(setup.server.requests("refresh_token"), 1);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    // A third process refreshes with the rotated refresh token, which only
    // works if the second one kept it before using its access token.
    let third = setup.run().await;
    assert_eq!(third.code, 0, "{third:?}");
    assert_eq!(setup.server.requests("refresh_token"), 2);
    let listed = setup.list().await;
    assert_eq!(listed[0]["refreshes"], 2, "{listed}");

    // A 401 for a token that has not expired: refreshed once, sent once more.
    setup.server.revoke_access_tokens();
    let after_401 = setup.run().await;
    assert_eq!(after_401.code, 0, "{after_401:?}");
    assert_eq!(step_output(&after_401)["body"]["owner"], OWNER);
    assert_eq!(setup.server.requests("refresh_token"), 3);
    let all = format!(
        "{}{}{}{}",
        first.stdout,
        second.stdout,
        after_401.stdout,
        setup.stored()
    );
    assert_eq!(setup.leaked(&all), Vec::<String>::new());
}

#[tokio::test]
async fn a_refused_refresh_stops_executions_incomplete_until_a_reconnect_resumes_each_once() {
    let setup = Setup::new(1, "0s").await;
    setup.connect().await;
    setup.server.revoke_refresh_tokens(true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut stopped = Vec::new();
    for _ in 0..2 {
        let out = setup.run().await;
        assert_ne!(out.code, 0);
        let json = out.json();
        assert_eq!(json["status"], "incomplete", "{}", out.stdout);
        let error = json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.starts_with("connection `crm` needs to be reconnected: the token endpoint refused the refresh (400, invalid_grant: the refresh token was revoked)"),
            "{error}"
        );
        // `on_failure` hears of it, though the execution is only incomplete.
        assert_eq!(
            json["steps"]["tell"]["output"]["heard"],
            error.as_str(),
            "{}",
            out.stdout
        );
        stopped.push(json["execution_id"].as_str().unwrap().to_owned());
    }
    // The first refusal marked it; the second execution did not ask again.
    assert_eq!(setup.server.requests("refresh_token"), 1);
    let listed = setup.list().await;
    assert_eq!(listed[0]["status"], "needs_reconnect", "{listed}");
    assert!(listed[0]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid_grant"));

    setup.server.revoke_refresh_tokens(false);
    let printed = setup.connect().await;
    assert!(
        printed.contains("2 execution(s) waiting for it go on"),
        "{printed}"
    );
    let resumed = setup.scenarist(&["resume"]).run().await;
    assert_eq!(resumed.code, 0, "{resumed:?}");
    for id in &stopped {
        let shown = setup
            .scenarist(&["executions", "show", id, "--output", "json"])
            .run()
            .await;
        let json = shown.json();
        assert_eq!(json["status"], "succeeded", "{}", shown.stdout);
        // The step that stopped ran again, once; `on_failure` ran once, at the stop.
        let succeeded = |path: &str| {
            json["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["path"] == path && s["status"] == "succeeded")
                .count()
        };
        assert_eq!(succeeded("me"), 1, "{}", shown.stdout);
        assert_eq!(succeeded("on_failure/tell"), 1, "{}", shown.stdout);
    }
    let again = setup.scenarist(&["resume"]).run().await;
    assert_eq!(again.code, 0);
    assert_eq!(setup.list().await[0]["status"], "connected");
}

#[tokio::test]
async fn a_missing_key_or_a_wrong_key_changes_nothing_and_rekey_moves_every_credential() {
    let setup = Setup::new(3600, "60s").await;
    setup.connect().await;
    let dir = setup.scenarios().display().to_string();
    let row_before = setup.row();

    let missing = Scenarist::new()
        .args([
            "credentials",
            "list",
            "--dir",
            &dir,
            "--store",
            &setup.store(),
        ])
        .run()
        .await;
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("this store holds the sealed credentials of `crm`, and no key was given: set SCENARIST_SECRET_KEY"),
        "{missing:?}"
    );

    let other = setup.dir.path().join("other-key");
    let made = Scenarist::new()
        .args(["credentials", "keygen", "--out"])
        .arg_path(&other)
        .run()
        .await;
    assert_eq!(made.code, 0);
    let wrong = Scenarist::new()
        .args([
            "credentials",
            "list",
            "--dir",
            &dir,
            "--store",
            &setup.store(),
            "--secret-key-file",
        ])
        .arg_path(&other)
        .run()
        .await;
    assert_ne!(wrong.code, 0);
    assert!(wrong.stderr.contains("were sealed with key"), "{wrong:?}");
    assert!(wrong.stderr.contains("nothing was changed"), "{wrong:?}");
    // The daemon refuses to start with the wrong key, too.
    let serve = Scenarist::new()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            &dir,
            "--store",
            &setup.store(),
            "--secret-key-file",
        ])
        .arg_path(&other)
        .run()
        .await;
    assert_eq!(serve.code, 2, "{serve:?}");
    assert!(serve.stderr.contains("were sealed with key"), "{serve:?}");
    assert_eq!(setup.row(), row_before, "a refused key wrote nothing");

    let rekeyed = setup
        .scenarist(&[
            "credentials",
            "rekey",
            "--new-key-file",
            &other.display().to_string(),
        ])
        .run()
        .await;
    assert_eq!(rekeyed.code, 0, "{rekeyed:?}");
    assert!(
        rekeyed
            .stdout
            .contains("1 credential(s) re-sealed under key"),
        "{rekeyed:?}"
    );
    let old_key = setup
        .scenarist(&["credentials", "list", "--dir", &dir])
        .run()
        .await;
    assert_ne!(old_key.code, 0, "the old key no longer opens them");
    let file = setup.scenarios().join("whoami.yaml");
    let with_new = Scenarist::new()
        .args([
            "run",
            &file.display().to_string(),
            "--output",
            "json",
            "--store",
            &setup.store(),
            "--secret-key-file",
        ])
        .arg_path(&other)
        .env("CRM_CLIENT_ID", CLIENT_ID)
        .env("CRM_CLIENT_SECRET", CLIENT_SECRET)
        .run()
        .await;
    assert_eq!(with_new.code, 0, "{with_new:?}");
    assert_eq!(step_output(&with_new)["body"]["owner"], OWNER);
}

#[tokio::test]
async fn client_credentials_sign_in_at_a_real_authorization_server() {
    let server = AuthServer::start(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let url = &server.url;
    let file = crate::util::scenario_file(
        &dir,
        "svc.yaml",
        &format!(
            r#"name: svc
env: [{{ name: SECRET, secret: true }}]
connections:
  api:
    base_url: "{url}"
    allow_private: true
    auth: {{ oauth2: {{ grant: client_credentials, token_url: "{url}/token", client_id: {CLIENT_ID}, client_secret: "{{{{ env.SECRET }}}}" }} }}
steps:
  - {{ id: me, http: {{ connection: api, path: /api/me }} }}
  - {{ id: again, http: {{ connection: api, path: /api/me }} }}
"#
        ),
    );
    let out = Scenarist::new()
        .args(["run", &file.display().to_string(), "--output", "json"])
        .env("SECRET", CLIENT_SECRET)
        .run()
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.json()["steps"]["again"]["output"]["body"]["owner"],
        CLIENT_ID
    );
    assert_eq!(
        server.requests("client_credentials"),
        1,
        "one token for both steps"
    );
    for token in server.issued() {
        assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token));
    }
}

#[tokio::test]
async fn a_refresh_token_grant_starts_from_its_seed_and_then_keeps_the_rotated_one() {
    let server = AuthServer::start(3600).await;
    let seed = server.refresh_token_for_the_client();
    let dir = tempfile::tempdir().unwrap();
    let url = &server.url;
    let file = crate::util::scenario_file(
        &dir,
        "seeded.yaml",
        &format!(
            r#"name: seeded
env: [{{ name: SECRET, secret: true }}, {{ name: SEED, secret: true }}]
connections:
  api:
    base_url: "{url}"
    allow_private: true
    auth:
      oauth2:
        grant: refresh_token
        token_url: "{url}/token"
        client_id: {CLIENT_ID}
        client_secret: "{{{{ env.SECRET }}}}"
        refresh_token: "{{{{ env.SEED }}}}"
steps:
  - {{ id: me, http: {{ connection: api, path: /api/me }} }}
"#
        ),
    );
    let key = dir.path().join("key");
    Scenarist::new()
        .args(["credentials", "keygen", "--out"])
        .arg_path(&key)
        .run()
        .await;
    let store = format!("sqlite://{}", dir.path().join("store.db").display());
    let run = || {
        Scenarist::new()
            .args([
                "run",
                &file.display().to_string(),
                "--output",
                "json",
                "--store",
                &store,
                "--secret-key-file",
            ])
            .arg_path(&key)
            .env("SECRET", CLIENT_SECRET)
            .env("SEED", seed.clone())
            .run()
    };
    let first = run().await;
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(step_output(&first)["body"]["owner"], OWNER);
    assert_eq!(server.requests("refresh_token"), 1);
    // The server rotated the seed away: the second process uses the access
    // token kept in the store, the third (after a 401) the rotated refresh token.
    let second = run().await;
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(
        server.requests("refresh_token"),
        1,
        "the kept access token, no refresh"
    );
    server.revoke_access_tokens();
    let third = run().await;
    assert_eq!(third.code, 0, "{third:?}");
    assert_eq!(server.requests("refresh_token"), 2);
    let mut stored = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("store.db") {
            stored.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    for token in server.issued() {
        for text in [
            &first.stdout,
            &second.stdout,
            &third.stdout,
            &third.stderr,
            &stored,
        ] {
            assert!(!text.contains(&token), "a token leaked");
        }
    }
}
