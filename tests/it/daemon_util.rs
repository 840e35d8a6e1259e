//! Starts the real `scenarist serve` on an ephemeral loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

pub struct Served {
    pub child: tokio::process::Child,
    pub url: String,
    pub stderr: PathBuf,
    /// Everything the daemon printed on stdout after its address.
    pub stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

pub struct ServeOptions<'a> {
    pub dir: &'a Path,
    pub store: &'a str,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the daemon's log goes (appended across restarts).
    pub log: PathBuf,
}

pub async fn serve(options: &ServeOptions<'_>) -> Served {
    serve_on(options, "127.0.0.1:0").await
}

/// Listens on `listen` (`0.0.0.0:0`: beyond loopback, so the outbound guard
/// refuses private addresses); the tests still talk to it over loopback.
pub async fn serve_on(options: &ServeOptions<'_>, listen: &str) -> Served {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&options.log)
        .expect("log file");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_scenarist"));
    command
        .args(["serve", "--listen", listen, "--dir"])
        .arg(options.dir)
        .args(["--store", options.store])
        .args(&options.args)
        .env_remove("SCENARIST_ADMIN_TOKEN")
        .env("SCENARIST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    for (k, v) in &options.env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn scenarist serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the daemon printed its address within 30s")
        .expect("stdout")
        .unwrap_or_else(|| {
            panic!(
                "the daemon exited:\n{}",
                std::fs::read_to_string(&options.log).unwrap_or_default()
            )
        });
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .replace("://0.0.0.0:", "://127.0.0.1:");
    // Keep draining stdout so the daemon never blocks on it.
    let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let kept = stdout.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut kept = kept.lock().unwrap();
            kept.push_str(&line);
            kept.push('\n');
        }
    });
    Served {
        child,
        url,
        stderr: options.log.clone(),
        stdout,
    }
}

impl Served {
    /// SIGTERM, then wait for a graceful exit.
    pub async fn stop(mut self) -> i32 {
        if let Some(pid) = self.child.id() {
            // SAFETY: a signal to a child this test started, by its pid.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the daemon stopped within 30s")
            .expect("wait");
        status.code().unwrap_or(-1)
    }

    /// SIGKILL: a crash.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Polls `check` until it holds, for at most `seconds`.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// `GET /api/executions?limit=1000&{query}` of the daemon at `url`.
pub async fn executions(url: &str, query: &str) -> Vec<serde_json::Value> {
    reqwest::Client::new()
        .get(format!("{url}/api/executions?limit=1000&{query}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
