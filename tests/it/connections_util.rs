//! The connection tests' setting: a folder with one scenario whose `crm`
//! connection signs in at the test's authorization server, a key file, a
//! store, and the person's side of `scenarist connect` (the consent page).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::oauth_server::{AuthServer, CLIENT_ID, CLIENT_SECRET};
use crate::util::{Output, Scenarist};

/// A folder with one scenario reading `/api/me` through the `crm` connection.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub server: AuthServer,
    pub key: PathBuf,
    /// Where the store is (default: an SQLite file in `dir`).
    pub store_url: Option<String>,
}

impl Setup {
    pub async fn new(lifetime_s: i64, refresh_before: &str) -> Setup {
        Setup::with(lifetime_s, refresh_before, None, "").await
    }

    /// As [`Setup::new`], on the store `store_url`, the scenario with
    /// `trigger` (e.g. `trigger: { webhook: { path: whoami } }`).
    pub async fn with(
        lifetime_s: i64,
        refresh_before: &str,
        store_url: Option<String>,
        trigger: &str,
    ) -> Setup {
        let server = AuthServer::start(lifetime_s).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scenarios")).unwrap();
        let url = &server.url;
        std::fs::write(
            dir.path().join("scenarios/whoami.yaml"),
            format!(
                r#"name: whoami
{trigger}
env:
  - CRM_CLIENT_ID
  - {{ name: CRM_CLIENT_SECRET, secret: true }}
connections:
  crm:
    base_url: "{url}"
    allow_private: true
    auth:
      oauth2:
        grant: authorization_code
        authorization_url: "{url}/authorize"
        token_url: "{url}/token"
        client_id: "{{{{ env.CRM_CLIENT_ID }}}}"
        client_secret: "{{{{ env.CRM_CLIENT_SECRET }}}}"
        scopes: [read, write]
        refresh_before: {refresh_before}
steps:
  - id: me
    http: {{ connection: crm, path: /api/me }}
on_failure:
  - id: tell
    set: {{ heard: "{{{{ error.message }}}}" }}
"#
            ),
        )
        .unwrap();
        let key = dir.path().join("key");
        let made = Scenarist::new()
            .args(["credentials", "keygen", "--out"])
            .arg_path(&key)
            .run()
            .await;
        assert_eq!(made.code, 0, "{made:?}");
        Setup {
            dir,
            server,
            key,
            store_url,
        }
    }

    pub fn store(&self) -> String {
        match &self.store_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.dir.path().join("store.db").display()),
        }
    }

    /// `scenarist serve` on this folder, store and key (daemon `n`).
    pub async fn serve(&self, n: usize) -> crate::daemon_util::Served {
        crate::daemon_util::serve(&crate::daemon_util::ServeOptions {
            dir: &self.scenarios(),
            store: &self.store(),
            args: vec![
                "--secret-key-file".into(),
                self.key.display().to_string(),
                "--lease".into(),
                "2s".into(),
            ],
            env: vec![
                ("CRM_CLIENT_ID".into(), CLIENT_ID.into()),
                ("CRM_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            ],
            log: self.dir.path().join(format!("daemon-{n}.log")),
        })
        .await
    }

    pub fn scenarios(&self) -> PathBuf {
        self.dir.path().join("scenarios")
    }

    /// The binary with the folder, the store, the key and the client's env.
    pub fn scenarist(&self, args: &[&str]) -> Scenarist {
        Scenarist::new()
            .args(args)
            .args(["--store", &self.store(), "--secret-key-file"])
            .arg_path(&self.key)
            .env("CRM_CLIENT_ID", CLIENT_ID)
            .env("CRM_CLIENT_SECRET", CLIENT_SECRET)
    }

    pub async fn run(&self) -> Output {
        let file = self.scenarios().join("whoami.yaml");
        self.scenarist(&["run", &file.display().to_string(), "--output", "json"])
            .run()
            .await
    }

    pub async fn list(&self) -> serde_json::Value {
        let dir = self.scenarios().display().to_string();
        let out = self
            .scenarist(&["credentials", "list", "--dir", &dir, "--output", "json"])
            .run()
            .await;
        assert_eq!(out.code, 0, "{out:?}");
        out.json()
    }

    /// `scenarist connect crm`, signing in on the server's consent page.
    pub async fn connect(&self) -> String {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_scenarist"))
            .args(["connect", "crm", "--port", "0", "--timeout", "30s", "--dir"])
            .arg(self.scenarios())
            .args(["--store", &self.store(), "--secret-key-file"])
            .arg(&self.key)
            .env("CRM_CLIENT_ID", CLIENT_ID)
            .env("CRM_CLIENT_SECRET", CLIENT_SECRET)
            .env_remove("SCENARIST_SECRET_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = String::new();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("connect printed the authorization URL")
                .unwrap()
                .expect("a line");
            printed.push_str(&line);
            printed.push('\n');
            if let Some(url) = line
                .trim()
                .strip_prefix(&format!("{}/authorize?", self.server.url))
            {
                break format!("{}/authorize?{url}", self.server.url);
            }
        };
        let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["response_type"], "code");
        assert!(query["state"].len() >= 16);
        let browser = reqwest::Client::new();
        let consent = browser.get(&url).send().await.unwrap();
        assert_eq!(consent.status(), 200);
        let page = consent.text().await.unwrap();
        assert!(page.contains("Allow"), "{page}");
        // The person clicks Allow: the server sends the browser back to the
        // loopback callback, which answers once the tokens are kept.
        let back = browser
            .post(&url)
            .form(&[("allow", "yes")])
            .send()
            .await
            .unwrap();
        let landed = back.text().await.unwrap();
        assert!(landed.contains("Connected"), "{landed}");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .unwrap()
            .unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            printed.push_str(&line);
            printed.push('\n');
        }
        assert!(status.success(), "{printed}");
        printed
    }

    /// Every text a token or secret could leak into: the store's files.
    pub fn stored(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
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

    /// The credentials row of `crm`: its sealed text and generation.
    pub fn row(&self) -> (Vec<u8>, i64, String) {
        let db = rusqlite::Connection::open(self.dir.path().join("store.db")).unwrap();
        db.query_row(
            "SELECT sealed, generation, key_id FROM credentials WHERE connection = 'crm'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }

    /// The tokens and secrets found in `text`.
    pub fn leaked(&self, text: &str) -> Vec<String> {
        let key = std::fs::read_to_string(&self.key)
            .unwrap()
            .trim()
            .to_owned();
        let mut secrets = self.server.issued();
        secrets.push(CLIENT_SECRET.to_owned());
        secrets.push(key);
        secrets
            .into_iter()
            .filter(|s| text.contains(s.as_str()))
            .collect()
    }
}
