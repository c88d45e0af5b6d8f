//! `jazari serve`: the collector.
//!
//! - [`app`]: shared state (config, store readers and writer, live state, scheduler snapshot, tokens);
//! - [`listen`]: the accept loop: connection cap, timeouts, TLS and client certificates;
//! - [`access`]: tokens, certificates, node names, institute scope; refused reports counted;
//! - [`ingest`]: `POST /api/v1/reports`, the checks in the order the API promises;
//! - [`writer`]: the one thread that writes, committing waiting batches together;
//! - [`read`], [`quotas`], [`reports`], [`scheduler`], [`metrics`]: the read endpoints;
//! - [`telemetry`]: the collector's own counters and histograms, kept for `/metrics`;
//! - [`alerts`] and [`notify`]: the rules evaluated into findings, notifications delivered;
//! - [`tasks`]: background work (history downsampling and pruning);
//! - [`error`]: the one error type, answered as `{"error": "..."}`.
//!
//! A report is acknowledged only after the transaction holding its dedup
//! record and its ledger charges has committed.

pub mod access;
pub mod alerts;
pub mod app;
pub mod error;
pub mod ingest;
pub mod listen;
pub mod metrics;
pub mod notify;
pub mod quotas;
pub mod read;
pub mod refusals;
pub mod reports;
pub mod scheduler;
pub mod tasks;
pub mod telemetry;
pub mod writer;

use crate::api::paths;
use crate::api::scheduler::SchedulerKind;
use crate::config::Config;
use anyhow::{Context, Result};
pub use app::App;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::path::PathBuf;
use std::sync::Arc;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(paths::HEALTHZ, get(|| async { "ok\n" }))
        .route(paths::READYZ, get(readyz))
        .route(paths::METRICS, get(metrics::metrics))
        .route(paths::REPORTS, post(ingest::post_reports))
        .route(paths::CLUSTER, get(read::cluster))
        .route(&format!("{}/{{node}}", paths::NODES), get(read::node))
        .route(paths::JOBS, get(read::jobs))
        .route(paths::USAGE, get(read::usage))
        .route(paths::HISTORY, get(read::history))
        .route(paths::COVERAGE, get(read::coverage))
        .route(paths::CLUSTER_HISTORY, get(read::cluster_history))
        .route(paths::INSTITUTES, get(read::institutes))
        .route(paths::QUOTAS, get(quotas::quotas))
        .route(paths::REPORT, get(reports::report))
        .route(paths::FINDINGS, get(alerts::get_findings))
        .route(paths::SCHEDULER, get(scheduler::get_scheduler))
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.read(|s| s.ping()).await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

/// Runs the collector until SIGINT or SIGTERM.
pub async fn serve(cfg: Config, store_path: PathBuf, listen: String) -> Result<()> {
    let tls = cfg.tls.as_ref().map(listen::TlsState::load).transpose()?.map(Arc::new);
    listen::raise_open_files(cfg.server.max_connections);
    let app = App::open(cfg, store_path.clone())?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        tls = tls.is_some(),
        store = %crate::store::describe(&store_path),
        nodes = app.live.read().unwrap().nodes.len(),
        "collector ready"
    );
    if let Some(t) = &tls {
        tokio::spawn(reload_on_sighup(t.clone()));
    }
    run_with(app, store_path, listener, tls, shutdown()).await?;
    tracing::info!("collector stopped");
    Ok(())
}

/// Reads `[tls]`'s files again on each SIGHUP.
async fn reload_on_sighup(tls: Arc<listen::TlsState>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate, key and client CA reloaded"),
            Err(e) => tracing::error!("SIGHUP: reloading TLS failed, the previous certificate stays: {e:#}"),
        }
    }
}

/// Serves `app` on `listener` (plain HTTP) until `stop` completes, with the
/// background tasks (also used by `jazari demo`).
pub async fn run(
    app: Arc<App>,
    store_path: PathBuf,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    run_with(app, store_path, listener, None, stop).await
}

async fn run_with(
    app: Arc<App>,
    store_path: PathBuf,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<listen::TlsState>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let pruner = tokio::spawn(tasks::pruner(app.clone(), store_path));
    let evaluator = tokio::spawn(alerts::evaluator(app.clone()));
    let sender = tokio::spawn(notify::sender(app.clone()));
    let peers = app.shared_store.then(|| tokio::spawn(tasks::peers(app.clone())));
    let poller = (app.cfg.scheduler.kind == SchedulerKind::Slurm).then(|| tokio::spawn(scheduler::poller(app.clone())));
    let limits = listen::Limits {
        max_connections: app.cfg.server.max_connections,
        header_timeout: app.cfg.server.header_timeout,
    };
    listen::serve(listener, router(app), limits, tls, stop).await.context("serving HTTP")?;
    pruner.abort();
    evaluator.abort();
    sender.abort();
    for p in [poller, peers].into_iter().flatten() {
        p.abort();
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
}
