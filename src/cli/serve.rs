//! `scenarist serve`: the daemon, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use scenarist::daemon::{Config, Daemon};
use scenarist::model::Duration;

use super::store_arg::StoreArg;
use super::EXIT_INVALID;

#[derive(Args)]
pub struct ServeArgs {
    /// The folder of scenarios (read again when a file changes).
    #[arg(long, default_value = "scenarios")]
    dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Executions run at once (tasks waiting on the network, not threads).
    #[arg(long, default_value_t = scenarist::daemon::DEFAULT_WORKERS)]
    workers: usize,
    /// How long in-flight executions may take to finish at shutdown.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    grace: Duration,
    /// Webhooks answer 503 beyond this many queued executions.
    #[arg(long, default_value_t = 100_000)]
    max_queue: u64,
    /// Webhooks answer 503 (with Retry-After) when the queue holds more
    /// than this much work at the rate executions complete.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    max_backlog: Duration,
    /// How long a daemon sharing the store may stay silent before the
    /// executions it runs are taken over by another (PostgreSQL stores).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    lease: Duration,
    /// How long correlated events are kept for `wait_for` steps that start later.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    event_retention: Duration,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Addresses or CIDR ranges http steps may reach although they are
    /// private (refused when listening beyond loopback), comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_network)]
    allow_network: Vec<ipnet::IpNet>,
    #[command(flatten)]
    store: StoreArg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    scenarist::plan::parse_network(text)
}

pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<Duration>().map_err(|e| e.to_string())
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    super::init_logging(args.log_format == LogFormat::Json, "info");
    let store = args.store.open()?;
    let mut config = Config::new(args.dir, args.listen);
    config.workers = args.workers.max(1);
    config.grace = args.grace.as_std();
    config.max_queue = args.max_queue;
    config.max_backlog = args.max_backlog.as_std();
    config.event_retention = args.event_retention.as_std();
    config.allow_network = args.allow_network;
    config.proxies = super::store_arg::proxies();
    config.apps = super::apps_dir();
    if args.lease.as_std() < std::time::Duration::from_secs(1) {
        eprintln!("error: --lease must be at least 1s");
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    config.lease = args.lease.as_std();
    config.secret_key = args.store.key.key()?;
    config.admin_token = std::env::var("SCENARIST_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let env = std::env::vars().collect();
        let (daemon, problems) = match Daemon::start(config, Arc::clone(&store), env).await {
            Ok(started) => started,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        };
        if !problems.is_empty() {
            eprintln!(
                "{} invalid scenario file(s) skipped (see the log)",
                problems.len()
            );
        }
        // The address, on stdout, for scripts and tests that listen on port 0.
        println!("listening on http://{}", daemon.addr);
        wait_for_signal().await;
        tracing::info!("stopping: finishing in-flight executions");
        daemon.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
