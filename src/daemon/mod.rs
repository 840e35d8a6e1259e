//! The daemon: webhooks, schedules and a worker pool over the durable store.
//!
//! Every event is committed to the store's queue before anyone is told it was
//! accepted; workers claim executions from that queue. So a crash loses
//! nothing that was acknowledged, and a restart picks up where it stopped:
//! queued executions run, executions of the dead process resume.

mod api;
mod backlog;
mod dashboard;
mod events;
pub mod filters;
mod health;
mod liveness;
pub mod metrics;
mod review;
mod scenarios;
mod schedule;
pub mod signature;
mod throttle;
pub(crate) mod watches;
pub(crate) mod webhook;
mod webhook_auth;
mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::engine::{Engine, Execution};
use crate::runner::Runner;
use crate::store::{Store, StoreError};

pub use scenarios::{Problem, Scenarios, Served};

/// Executions run at once by default. Workers are tasks that mostly wait
/// on the network, not threads: against an API that answers in 200 ms, 8
/// of them capped a daemon at 40 executions per second.
pub const DEFAULT_WORKERS: usize = 256;

/// How a daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    /// Executions run at once.
    pub workers: usize,
    /// Larger webhook bodies are refused with 413.
    pub max_body: usize,
    /// Beyond this many queued executions webhooks answer 503.
    pub max_queue: u64,
    /// Webhooks answer 503 when the queue holds more than this much work
    /// at the rate executions complete (`backlog.rs`).
    pub max_backlog: Duration,
    /// How long a webhook's dedupe key holds.
    pub dedupe_window: Duration,
    /// How long `respond: after_run` waits for the execution.
    pub respond_timeout: Duration,
    /// In-flight executions get this long to finish at shutdown.
    pub grace: Duration,
    /// Required as a Bearer token on `/api` when listening beyond loopback.
    pub admin_token: Option<String>,
    /// How often the folder is checked for edits.
    pub reload_every: Duration,
    /// Correlated events older than this are pruned (a `wait_for` that
    /// starts later no longer sees them).
    pub event_retention: Duration,
    /// The clock deadlines and delays are read from: the system's, or the
    /// demo's, which jumps ahead to show a 90-day wait ending.
    pub clock: fn() -> chrono::DateTime<chrono::Utc>,
    /// How long another daemon may stay silent before its running
    /// executions are taken over (stores that keep heartbeats).
    pub lease: Duration,
    /// Ranges http steps may reach even when private ones are refused
    /// (`--allow-network`).
    pub allow_network: Vec<ipnet::IpNet>,
    /// The operator's forward proxies (read from the environment by the CLI).
    pub proxies: crate::engine::Proxies,
    /// `--apps DIR`: the only folder of app files.
    pub apps: Option<PathBuf>,
    /// The key of the store's credentials (connected OAuth2 tokens).
    pub secret_key: Option<crate::credentials::SecretKey>,
}

impl Config {
    /// The outbound guard's rules: listening beyond loopback means the
    /// daemon serves others, so their scenarios must not reach into the
    /// machine's own network unless allowed.
    pub fn network_policy(&self, addr: SocketAddr) -> crate::engine::NetworkPolicy {
        crate::engine::NetworkPolicy {
            refuse_private: !addr.ip().is_loopback(),
            allowed: self.allow_network.clone(),
            proxies: self.proxies.clone(),
            reason: format!("the daemon listens on {addr}, beyond loopback"),
        }
    }

    pub fn new(dir: PathBuf, listen: SocketAddr) -> Config {
        Config {
            dir,
            listen,
            workers: DEFAULT_WORKERS,
            max_body: 1024 * 1024,
            max_queue: 100_000,
            max_backlog: Duration::from_secs(10),
            dedupe_window: Duration::from_secs(7 * 24 * 3600),
            respond_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(30),
            admin_token: None,
            reload_every: Duration::from_secs(1),
            event_retention: Duration::from_secs(30 * 24 * 3600),
            clock: chrono::Utc::now,
            lease: crate::runner::DEFAULT_LEASE,
            allow_network: Vec::new(),
            proxies: Default::default(),
            apps: None,
            secret_key: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: SocketAddr, message: String },
    #[error("--listen {0} is not a loopback address: set SCENARIST_ADMIN_TOKEN so that the admin API is not open to anyone who can reach it")]
    AdminTokenRequired(SocketAddr),
    #[error("{0} is not a folder of scenarios")]
    NoDir(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialError),
}

/// The daemon's engine: its network rules, rate limits and connected tokens in the store.
fn engine(config: &Config, addr: SocketAddr, store: &Arc<dyn Store>) -> Engine {
    let engine = Engine::new()
        .with_network(config.network_policy(addr))
        .with_pacer(Arc::new(crate::runner::pace::StorePacer::new(
            store.clone(),
        )));
    match &config.secret_key {
        Some(key) => engine.with_vault(Arc::new(crate::credentials::StoreVault::new(
            store.clone(),
            key.clone(),
        ))),
        None => engine,
    }
}

/// What every part of the daemon shares.
pub(crate) struct Shared {
    pub config: Config,
    pub runner: Runner,
    pub store: Arc<dyn Store>,
    pub scenarios: RwLock<Arc<Scenarios>>,
    pub metrics: metrics::Metrics,
    /// Rung when work is queued.
    pub wake: Notify,
    pub stopping: AtomicBool,
    /// Callers of `respond: after_run` waiting for their execution.
    pub waiters:
        std::sync::Mutex<std::collections::HashMap<Uuid, tokio::sync::oneshot::Sender<Execution>>>,
    /// Executions this process is running now: one of its own that is
    /// `running` in the store but not here (its store write failed, the
    /// database was away) is resumed by the maintenance, as an orphan is.
    pub in_flight: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    /// Whether the store takes writes: `/healthz` reports it, and the
    /// executions a refused write stopped wait for it before they resume.
    pub health: health::StoreHealth,
    /// The dashboard's templates and session key.
    pub ui: dashboard::Ui,
    /// Sign-ins started from the dashboard's Connections page.
    pub connecting: dashboard::Connecting,
    /// Wrong admin tokens per client address.
    pub throttle: throttle::Throttle,
    /// When events were last pruned to `config.event_retention`.
    pub last_event_prune: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// The completion rate, for backpressure in seconds of work.
    pub backlog: backlog::Backlog,
    /// One per worker: held by each execution this process runs, whether a
    /// worker claimed it from the queue or a webhook started it at once.
    pub permits: Arc<tokio::sync::Semaphore>,
    /// Poll triggers: what the last poll of each did, and when the next is due.
    pub watches: watches::Watches,
}

impl Shared {
    pub fn scenarios(&self) -> Arc<Scenarios> {
        self.scenarios.read().expect("scenarios lock").clone()
    }

    /// Marks an execution as running here; false when it already is.
    pub fn start_flight(&self, id: Uuid) -> bool {
        self.in_flight.lock().expect("in-flight lock").insert(id)
    }

    pub fn end_flight(&self, id: Uuid) {
        self.in_flight.lock().expect("in-flight lock").remove(&id);
        self.backlog.completed();
    }

    /// An execution marked in flight that never started (a duplicate, a
    /// refused write): unmarked without counting as completed.
    pub fn cancel_flight(&self, id: Uuid) {
        self.in_flight.lock().expect("in-flight lock").remove(&id);
    }

    pub fn in_flight_now(&self) -> std::collections::HashSet<Uuid> {
        self.in_flight.lock().expect("in-flight lock").clone()
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// A running daemon: where it listens, and how to stop it.
pub struct Daemon {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Daemon {
    /// Loads the folder, binds, and starts serving, scheduling and working.
    /// Invalid files are returned as problems (and logged); the rest run.
    pub async fn start(
        config: Config,
        store: Arc<dyn Store>,
        env: std::collections::HashMap<String, String>,
    ) -> Result<(Daemon, Vec<Problem>), DaemonError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| DaemonError::Listen {
                addr: config.listen,
                message: e.to_string(),
            })?;
        Daemon::start_on(listener, config, store, env).await
    }

    /// As [`Daemon::start`], on a listener bound already: for callers that
    /// must know the address before the daemon starts (the demo hands it to
    /// the scenarios that call the daemon's own API). `config.listen` is
    /// only used for the admin-token check.
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: Config,
        store: Arc<dyn Store>,
        env: std::collections::HashMap<String, String>,
    ) -> Result<(Daemon, Vec<Problem>), DaemonError> {
        if !config.dir.is_dir() {
            return Err(DaemonError::NoDir(config.dir.clone()));
        }
        if !config.listen.ip().is_loopback() && config.admin_token.is_none() {
            return Err(DaemonError::AdminTokenRequired(config.listen));
        }
        // A key that cannot open the credentials refuses to start: nothing is written.
        crate::credentials::check(store.as_ref(), config.secret_key.as_ref()).await?;
        let (scenarios, problems) = Scenarios::load(&config.dir, config.apps.as_deref(), None);
        for problem in &problems {
            tracing::error!(file = %problem.file.display(), "invalid scenario skipped:\n{}", problem.rendered);
        }
        for served in scenarios.by_name.values() {
            store
                .save_version(&served.plan.name, &served.plan.version, &served.plan.bundle)
                .await?;
        }
        let addr = listener.local_addr().map_err(|e| DaemonError::Listen {
            addr: config.listen,
            message: e.to_string(),
        })?;
        let shared = Arc::new(Shared {
            runner: Runner::new(engine(&config, addr, &store), store.clone(), env)
                .with_clock(config.clock)
                .with_lease(config.lease)
                .without_run_heartbeats(),
            store,
            scenarios: RwLock::new(Arc::new(scenarios)),
            metrics: metrics::Metrics::new(),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            waiters: Default::default(),
            last_event_prune: Default::default(),
            watches: Default::default(),
            in_flight: Default::default(),
            health: Default::default(),
            ui: dashboard::Ui::new(config.admin_token.as_deref()),
            connecting: Default::default(),
            throttle: Default::default(),
            // What may wait while nothing completes: ten seconds of work
            // at one execution per worker per second.
            backlog: backlog::Backlog::new(config.max_backlog, config.workers as u64 * 10),
            permits: Arc::new(tokio::sync::Semaphore::new(config.workers.max(1))),
            config,
        });
        // Events accepted before a restart are still queued.
        let queued = shared.store.queue_depth().await?;
        shared.metrics.queue_depth.set(queued as i64);
        tracing::info!(%addr, scenarios = shared.scenarios().by_name.len(), queued, "scenarist serving");
        let (stop, stopped) = watch::channel(false);
        let done = tokio::spawn(run(shared, listener, stopped));
        Ok((Daemon { addr, stop, done }, problems))
    }

    /// Stops accepting, lets in-flight executions finish within the grace
    /// period, and returns when everything has stopped.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }
}

async fn run(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    mut stopped: watch::Receiver<bool>,
) {
    let app = api::router(shared.clone());
    let mut server_stop = stopped.clone();
    let server = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await;
    });
    let workers = tokio::spawn(workers::run(shared.clone(), stopped.clone()));
    let sampler = tokio::spawn(backlog::sample(shared.clone(), stopped.clone()));
    let schedules = tokio::spawn(schedule::run(shared.clone(), stopped.clone()));
    let polls = tokio::spawn(watches::run(shared.clone(), stopped.clone()));
    let reload = tokio::spawn(reload(shared.clone(), stopped.clone()));
    let heartbeat = tokio::spawn(liveness::heartbeat(shared.clone(), stopped.clone()));
    let listen = tokio::spawn(liveness::listen(shared.clone(), stopped.clone()));
    let _ = stopped.wait_for(|s| *s).await;
    shared.stopping.store(true, Ordering::SeqCst);
    shared.wake.notify_waiters();
    let _ = server.await;
    let _ = sampler.await;
    let _ = schedules.await;
    let _ = polls.await;
    let _ = reload.await;
    let _ = listen.await;
    let _ = workers.await;
    // Last: the in-flight executions kept their lease until they finished.
    heartbeat.abort();
    tracing::info!("scenarist stopped");
}

/// Reads the folder again whenever a scenario file changes.
async fn reload(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.reload_every) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let current = shared.scenarios();
        if !current.changed(&shared.config.dir, shared.config.apps.as_deref()) {
            continue;
        }
        let (next, problems) = Scenarios::load(
            &shared.config.dir,
            shared.config.apps.as_deref(),
            Some(&current),
        );
        for problem in &problems {
            tracing::error!(file = %problem.file.display(), "scenario edit rejected, the previous version keeps running:\n{}", problem.rendered);
        }
        for served in next.by_name.values() {
            if let Err(e) = shared
                .store
                .save_version(&served.plan.name, &served.plan.version, &served.plan.bundle)
                .await
            {
                tracing::error!(error = %e, "cannot keep a scenario version");
            }
        }
        tracing::info!(scenarios = next.by_name.len(), "scenarios reloaded");
        *shared.scenarios.write().expect("scenarios lock") = Arc::new(next);
        shared.wake.notify_waiters();
    }
}

/// The address a request came from (none when served without one: tests
/// that call the router directly).
pub(crate) fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// 429 for an address that guessed the admin token too often.
pub(crate) fn throttled(wait: Duration) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", wait.as_secs().max(1).to_string())],
        "too many wrong tokens from this address: wait a minute",
    )
        .into_response()
}

/// The context templates of a trigger see before any step ran: the request,
/// and the scenario's `env` and `vars`.
pub(crate) fn trigger_context(
    served: &Served,
    env: &std::collections::HashMap<String, String>,
    trigger: Value,
) -> handlebars::Context {
    let env: Map<String, Value> = served
        .plan
        .env
        .iter()
        .filter_map(|d| {
            env.get(&d.name)
                .map(|v| (d.name.clone(), Value::String(v.clone())))
        })
        .collect();
    let mut root = Map::new();
    root.insert("trigger".to_owned(), trigger);
    root.insert("env".to_owned(), Value::Object(env));
    root.insert("vars".to_owned(), Value::Object(served.plan.vars.clone()));
    handlebars::Context::from(Value::Object(root))
}
