//! `jazari serve`: the collector.
//!
//! Requests are handled on tokio; every write goes through one writer thread
//! that owns the SQLite write connection and commits the batches that are
//! waiting together (group commit). A report is acknowledged only after the
//! transaction holding its dedup record and its ledger charges has committed.

pub mod ingest;
pub mod live;

use crate::accounting::{self, InstituteMap, Policy};
use crate::auth::{self, Role};
use crate::config::Config;
use crate::store::{BatchOutcome, GroupBy, Keep, Prepared, Store};
use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ingest::{Limits, Refusal};
use jazari_agent::wire::Report;
use live::{Live, ViewPolicy, Viewer};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long reports are remembered for deduplication; older ones are refused.
pub const DEDUP_HORIZON_MS: i64 = 30 * 86_400_000;

/// A verified token: when, what it may do (None: refused), the full secret presented.
type CachedToken = (Instant, Option<Role>, String);

/// A Prometheus gauge: name, help, and how to read it off a GPU.
type Gauge = (&'static str, &'static str, fn(&jazari_agent::wire::Gpu) -> Option<f64>);

/// Shared state of a running collector.
pub struct App {
    pub cfg: Config,
    pub map: InstituteMap,
    policy: Policy,
    writer: mpsc::Sender<WriteJob>,
    read: Mutex<Store>,
    pub live: RwLock<Live>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// The last scheduler poll.
    pub sched: RwLock<crate::scheduler::Snapshot>,
    ready: std::sync::atomic::AtomicBool,
}

/// A batch for the writer, and where to send its outcome (with the batch back).
type Batch = Vec<Prepared>;
type WriteJob = (Batch, oneshot::Sender<Result<(BatchOutcome, Batch), String>>);

fn now_ms() -> i64 {
    jazari_agent::now_ms()
}

impl App {
    /// Opens the store and restores live state from it.
    pub fn open(cfg: Config, store_path: PathBuf) -> Result<Arc<App>> {
        let write = Store::open(&store_path)?;
        let read = Store::open(&store_path)?;
        let mut live = Live::default();
        for (r, first_seen) in read.last_reports()? {
            live.update(&r, r.interval_end_ms);
            if let Some(n) = live.nodes.get_mut(&r.node) {
                n.first_seen_ms = first_seen;
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        std::thread::Builder::new().name("store-writer".into()).spawn(move || writer(write, rx))?;
        let map = InstituteMap::from_config(&cfg);
        let policy = Policy { idle_threshold_pct: cfg.ingest.idle_threshold_pct };
        Ok(Arc::new(App {
            map,
            policy,
            writer: tx,
            read: Mutex::new(read),
            live: RwLock::new(live),
            tokens: Mutex::new(HashMap::new()),
            sched: RwLock::new(Default::default()),
            ready: true.into(),
            cfg,
        }))
    }

    fn view_policy(&self) -> ViewPolicy {
        ViewPolicy {
            stale_after_ms: self.cfg.nodes.interval.as_millis() as i64 * self.cfg.nodes.stale_after_intervals as i64,
            idle_threshold_pct: self.cfg.ingest.idle_threshold_pct,
        }
    }

    /// Checks the bearer token; tokens are cached for 30 s so revocations take effect within that.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Role, ApiError> {
        let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid token");
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unauthorized)?;
        {
            let cache = self.tokens.lock().unwrap();
            if let Some((at, role, secret)) = cache.get(presented.get(..12).unwrap_or(presented))
                && at.elapsed() < Duration::from_secs(30)
                && auth::constant_time_eq(secret.as_bytes(), presented.as_bytes())
            {
                return role.clone().ok_or_else(unauthorized);
            }
        }
        let verdict = {
            let store = self.read.lock().unwrap();
            auth::verify(&store, presented).map_err(ApiError::internal)?
        };
        let role = verdict.ok();
        let mut cache = self.tokens.lock().unwrap();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            presented.get(..12).unwrap_or(presented).to_string(),
            (Instant::now(), role.clone(), presented.to_string()),
        );
        role.ok_or_else(unauthorized)
    }

    fn reader(&self, headers: &HeaderMap) -> Result<Role, ApiError> {
        let role = self.authenticate(headers)?;
        if !role.can_read() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a node token cannot read; use an admin or institute token",
            ));
        }
        Ok(role)
    }

    /// Sends a batch to the writer and waits for the commit.
    async fn write(&self, batch: Batch) -> Result<(BatchOutcome, Batch), ApiError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((batch, tx))
            .await
            .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store writer has stopped"))?;
        rx.await
            .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the store writer has stopped"))?
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")))
    }

    /// Ingests a decoded, validated batch (used by the HTTP handler and the
    /// embedded demo) and updates live state after the commit.
    pub async fn ingest(&self, mut reports: Vec<Report>) -> Result<BatchOutcome, ApiError> {
        if self.cfg.scheduler.kind != "none" {
            let snap = self.sched.read().unwrap();
            let slack = 2 * self.cfg.scheduler.interval.as_millis() as i64 + 60_000;
            for r in reports.iter_mut().filter(|r| snap.covers(r.interval_end_ms, slack)) {
                crate::scheduler::enrich(r, &snap, &self.cfg.scheduler.gpu_index);
            }
        }
        let batch = Prepared::batch(reports, |r| accounting::charges(r, &self.map, self.policy));
        let (outcome, batch) = self.write(batch).await?;
        if outcome.accepted > 0 {
            let now = now_ms();
            self.live.write().unwrap().update_batch(batch.iter().map(|p| &p.report), now);
        }
        Ok(outcome)
    }
}

/// The writer thread: group commit of whatever is waiting.
fn writer(mut store: Store, mut rx: mpsc::Receiver<WriteJob>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < 256 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (batches, replies): (Vec<Batch>, Vec<_>) = jobs.into_iter().unzip();
        match store.apply(&batches) {
            Ok(outcomes) => {
                for ((reply, o), b) in replies.into_iter().zip(outcomes).zip(batches) {
                    let _ = reply.send(Ok((o, b)));
                }
            }
            Err(e) => {
                tracing::error!("store write failed, batch refused (agents will retry): {e}");
                for reply in replies {
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
}

/// An API error: status and a JSON `{"error": "..."}` body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {e}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the collector's log")
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        Self::new(StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST), r.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/reports", post(post_reports))
        .route("/api/v1/cluster", get(get_cluster))
        .route("/api/v1/nodes/{node}", get(get_node))
        .route("/api/v1/jobs", get(get_jobs))
        .route("/api/v1/usage", get(get_usage))
        .route("/api/v1/history", get(get_history))
        .route("/api/v1/coverage", get(get_coverage))
        .route("/api/v1/history/cluster", get(get_cluster_history))
        .route("/api/v1/institutes", get(get_institutes))
        .route("/api/v1/quotas", get(get_quotas))
        .route("/api/v1/report", get(get_report))
        .route("/api/v1/findings", get(get_findings))
        .route("/api/v1/scheduler", get(get_scheduler))
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let ok = app.ready.load(std::sync::atomic::Ordering::Relaxed) && app.read.lock().unwrap().ping().is_ok();
    if ok {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
    }
}

async fn post_reports(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    // 1. token
    let role = app.authenticate(&headers)?;
    // 2. size, as sent and decompressed
    let max = app.cfg.ingest.max_body_bytes;
    let too_large = || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body is larger than ingest.max_body_bytes ({max} bytes)"))
    };
    // An announced length over the limit is refused before any of the body is read.
    if headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()).is_some_and(|n| n > max)
    {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| too_large())?;
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let max_plain = app.cfg.ingest.max_decompressed_bytes;
    let plain = ingest::decompress(encoding, &bytes, max_plain)?;
    // 3. decode
    let reports = ingest::decode(&plain)?;
    if reports.is_empty() {
        return Err(ApiError::bad("empty batch: send one report or a non-empty array"));
    }
    // 4. value ranges
    let now = now_ms();
    let lim = Limits {
        now_ms: now,
        max_interval_ms: app.cfg.ingest.max_interval.as_millis() as i64,
        oldest_ms: now - DEDUP_HORIZON_MS + 3_600_000,
    };
    for (i, r) in reports.iter().enumerate() {
        ingest::validate(r, i, lim)?;
    }
    // 5. node allowed for this token
    if let Some(r) = reports.iter().find(|r| !role.may_report_for(&r.node)) {
        let msg = match &role {
            Role::Node(n) => format!("this token may send reports for node `{n}` only, not `{}`", r.node),
            _ => "only node tokens send reports".to_string(),
        };
        return Err(ApiError::new(StatusCode::FORBIDDEN, msg));
    }
    let n = reports.len();
    let outcome = app.ingest(reports).await?;
    tracing::debug!(reports = n, accepted = outcome.accepted, duplicates = outcome.duplicates, "batch committed");
    Ok(Json(outcome).into_response())
}

async fn get_cluster(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let viewer = Viewer { institute: role.institute() };
    let view = app.live.read().unwrap().cluster_view(&app.cfg.cluster, &app.map, app.view_policy(), viewer, now_ms());
    Ok(Json(view).into_response())
}

async fn get_node(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(node): UrlPath<String>,
) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let viewer = Viewer { institute: role.institute() };
    let live = app.live.read().unwrap();
    let n = live
        .nodes
        .get(&node)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no node `{node}` has reported")))?;
    Ok(Json(live.node_view(n, &app.map, app.view_policy(), viewer, now_ms())).into_response())
}

async fn get_jobs(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let viewer = Viewer { institute: role.institute() };
    let jobs = app.live.read().unwrap().jobs_view(&app.map, app.view_policy(), viewer, now_ms());
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

#[derive(Deserialize)]
struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    institute: Option<String>,
}

/// Parses `from`/`to` into [from, to) seconds; defaults to the last 24 hours.
fn period(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    let now = now_ms();
    let to_ms =
        to.map(crate::time::parse_instant).transpose().map_err(|e| ApiError::bad(format!("to: {e}")))?.unwrap_or(now);
    let from_ms = from
        .map(crate::time::parse_instant)
        .transpose()
        .map_err(|e| ApiError::bad(format!("from: {e}")))?
        .unwrap_or(to_ms - 86_400_000);
    if from_ms >= to_ms {
        return Err(ApiError::bad("`from` must be before `to`"));
    }
    Ok((from_ms, to_ms))
}

async fn get_usage(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let (from_ms, to_ms) = period(q.from.as_deref(), q.to.as_deref())?;
    let group = q.group_by.as_deref().unwrap_or("institute");
    let group_by = GroupBy::parse(group).ok_or_else(|| {
        ApiError::bad(format!("group_by `{group}` is not one of institute, account, user, job, node, gpu, hour"))
    })?;
    let institute = scoped_institute(&app, &role, q.institute.as_deref())?;
    // Buckets starting in [from, to): from rounds down, to rounds up to the hour.
    let from_s = from_ms.div_euclid(3_600_000) * 3600;
    let to_s = (to_ms + 3_599_999).div_euclid(3_600_000) * 3600;
    let rows = {
        let store = app.read.lock().unwrap();
        store.usage(from_s, to_s, group_by, institute.as_deref()).map_err(ApiError::internal)?
    };
    let rows: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let mut o = usage_json(&r.amounts);
            o[group_by.name()] = if r.key.is_empty() { serde_json::Value::Null } else { r.key.into() };
            o
        })
        .collect();
    Ok(Json(json!({
        "from": crate::time::format_rfc3339(from_s * 1000),
        "to": crate::time::format_rfc3339(to_s * 1000),
        "group_by": group_by.name(),
        "utilisation_signal": "nvml_gpu_utilization",
        "rows": rows,
    }))
    .into_response())
}

/// The institute a read is limited to: an institute token's own (asking for
/// another is refused), else the one asked for, which must exist.
fn scoped_institute(app: &App, role: &Role, asked: Option<&str>) -> Result<Option<String>, ApiError> {
    let institute = match (role.institute(), asked) {
        (Some(mine), Some(asked)) if mine != asked => {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "an institute token reads its own institute only"));
        }
        (Some(mine), _) => Some(mine.to_string()),
        (None, asked) => asked.map(str::to_string),
    };
    if let Some(i) = &institute
        && app.cfg.institute(i).is_none()
        && i != accounting::UNASSIGNED
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no institute `{i}`; known institutes: {}", app.cfg.institute_ids()),
        ));
    }
    Ok(institute)
}

/// The API's names for ledger amounts.
pub fn usage_json(a: &accounting::Amounts) -> serde_json::Value {
    json!({
        "capacity_gpu_seconds": a.capacity_s,
        "allocated_gpu_seconds": a.allocated_s,
        "busy_gpu_seconds": a.busy_s,
        "idle_allocated_gpu_seconds": a.idle_allocated_s,
        "unscheduled_gpu_seconds": a.unscheduled_s,
        "energy_joules": a.energy_j,
    })
}

#[derive(Deserialize)]
struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn get_coverage(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ApiError> {
    app.reader(&headers)?;
    let (from_ms, to_ms) = period(q.from.as_deref(), q.to.as_deref())?;
    let (from_s, to_s) = (from_ms.div_euclid(3_600_000) * 3600, (to_ms + 3_599_999).div_euclid(3_600_000) * 3600);
    let rows = app.read.lock().unwrap().coverage(from_s, to_s).map_err(ApiError::internal)?;
    Ok(Json(json!({ "nodes": rows })).into_response())
}

#[derive(Deserialize)]
struct SeriesQuery {
    /// 1h, 24h, 7d, ...
    window: Option<String>,
    points: Option<usize>,
}

async fn get_cluster_history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<SeriesQuery>,
) -> Result<Response, ApiError> {
    app.reader(&headers)?;
    let window = q.window.as_deref().unwrap_or("24h");
    let window_ms =
        crate::config::duration::parse(window).map_err(|e| ApiError::bad(format!("window: {e}")))?.as_millis() as i64;
    let points = q.points.unwrap_or(120).clamp(2, 2000) as i64;
    let now = now_ms();
    let ret = &app.cfg.retention;
    let resolution = if window_ms <= ret.raw.as_millis() as i64 {
        "raw"
    } else if window_ms <= ret.minute.as_millis() as i64 {
        "minute"
    } else {
        "hour"
    };
    let min_bucket = match resolution {
        "raw" => 1000,
        "minute" => 60_000,
        _ => 3_600_000,
    };
    let bucket = (window_ms / points).max(min_bucket);
    let from = (now - window_ms).div_euclid(bucket) * bucket;
    let series = {
        let store = app.read.lock().unwrap();
        store.cluster_series(resolution, from, now, bucket).map_err(ApiError::internal)?
    };
    Ok(Json(json!({ "window": window, "resolution": resolution, "bucket_ms": bucket, "points": series }))
        .into_response())
}

#[derive(Deserialize)]
struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    node: Option<String>,
    gpu: Option<String>,
    resolution: Option<String>,
    limit: Option<usize>,
}

async fn get_history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    app.reader(&headers)?;
    let (from_ms, to_ms) = period(q.from.as_deref(), q.to.as_deref())?;
    let now = now_ms();
    let ret = &app.cfg.retention;
    let resolution = match q.resolution.as_deref().unwrap_or("auto") {
        "auto" if now - from_ms <= ret.raw.as_millis() as i64 => "raw",
        "auto" if now - from_ms <= ret.minute.as_millis() as i64 => "minute",
        "auto" => "hour",
        r @ ("raw" | "minute" | "hour") => r,
        other => return Err(ApiError::bad(format!("resolution `{other}` is not one of auto, raw, minute, hour"))),
    };
    let limit = q.limit.unwrap_or(100_000).min(1_000_000);
    let points = {
        let store = app.read.lock().unwrap();
        store
            .history(resolution, from_ms, to_ms, q.node.as_deref(), q.gpu.as_deref(), limit)
            .map_err(ApiError::internal)?
    };
    Ok(Json(json!({ "resolution": resolution, "points": points })).into_response())
}

#[derive(Deserialize)]
struct QuotaQuery {
    institute: Option<String>,
    at: Option<String>,
}

async fn get_quotas(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<QuotaQuery>,
) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let now = now_ms();
    let at = match q.at.as_deref() {
        Some(s) => crate::time::parse_instant(s).map_err(|e| ApiError::bad(format!("at: {e}")))?,
        None => now,
    };
    if let Some(i) = &q.institute
        && app.cfg.institute(i).is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no institute `{i}`; known institutes: {}", app.cfg.institute_ids()),
        ));
    }
    if let (Some(mine), Some(asked)) = (role.institute(), q.institute.as_deref())
        && mine != asked
    {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "an institute token reads its own institute only"));
    }
    // Running jobs and GPUs in use only make sense now.
    let live_now = (at - now).abs() < 60_000;
    let (jobs, gpus_in_use) = if live_now {
        let live = app.live.read().unwrap();
        let jobs = live.jobs_view(&app.map, app.view_policy(), Viewer { institute: None }, now);
        let view = live.cluster_view(&app.cfg.cluster, &app.map, app.view_policy(), Viewer { institute: None }, now);
        let gpus: HashMap<String, u32> = view.institutes.iter().map(|i| (i.id.clone(), i.gpus_in_use as u32)).collect();
        (jobs, gpus)
    } else {
        (vec![], HashMap::new())
    };
    let snap = app.sched.read().unwrap().clone();
    let sched_jobs: HashMap<&str, &crate::scheduler::slurm::SchedJob> = if live_now {
        snap.jobs.iter().filter(|j| j.running()).map(|j| (j.id.as_str(), j)).collect()
    } else {
        HashMap::new()
    };
    let queued = crate::scheduler::queued_gpus(&snap, &app.map);
    let mut out = Vec::new();
    for inst in app
        .cfg
        .institutes
        .iter()
        .filter(|i| q.institute.as_deref().is_none_or(|x| x == i.id) && role.institute().is_none_or(|m| m == i.id))
    {
        let spec = inst.quota.as_ref();
        let period =
            spec.map(|s| s.period_at(at)).unwrap_or_else(|| crate::quota::Period::containing("month", at).unwrap());
        let from_s = (period.start_ms.min(at - 7 * 86_400_000)).div_euclid(3_600_000) * 3600;
        let to_s = (at + 3_599_999).div_euclid(3_600_000) * 3600;
        let rows = app.read.lock().unwrap().use_rows(&inst.id, from_s, to_s).map_err(ApiError::internal)?;
        let running: Vec<crate::quota::RunningJob> = jobs
            .iter()
            .filter(|j| j.institute == inst.id)
            .map(|j| crate::quota::RunningJob {
                id: j.id.clone(),
                gpus: j.gpu_count as u32,
                remaining_s: sched_jobs
                    .get(j.id.as_str())
                    .and_then(|s| Some((s.start_s? + s.time_limit_s?) as f64 - now as f64 / 1000.0))
                    .map(|r| r.max(0.0)),
            })
            .collect();
        let mut b = crate::quota::burn_down(
            &inst.id,
            inst.display_name(),
            spec,
            at,
            &rows,
            &running,
            gpus_in_use.get(&inst.id).copied().unwrap_or(0),
        );
        if live_now && app.cfg.scheduler.kind != "none" {
            b.queued_gpus = Some(queued.get(&inst.id).copied().unwrap_or(0));
        }
        out.push(b);
    }
    Ok(Json(json!({ "at_ms": at, "utilisation_signal": "nvml_gpu_utilization", "institutes": out })).into_response())
}

#[derive(Deserialize)]
struct ReportQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    institute: Option<String>,
    anonymise: Option<bool>,
}

async fn get_report(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let period = match (&q.period, &q.from, &q.to) {
        (Some(p), None, None) => crate::report::ReportPeriod::named(p),
        (None, Some(f), Some(t)) => crate::report::ReportPeriod::dates(f, t),
        _ => Err("give `period` (2026, 2026-Q1, 2026-03) or both `from` and `to`".to_string()),
    }
    .map_err(ApiError::bad)?;
    let institute = scoped_institute(&app, &role, q.institute.as_deref())?;
    let app2 = app.clone();
    let report = tokio::task::spawn_blocking(move || -> Result<crate::report::Report, ApiError> {
        let store = app2.read.lock().unwrap();
        // Institute tokens never receive other institutes' rows.
        let days = store.day_rows(period.start_s, period.end_s, None).map_err(ApiError::internal)?;
        let hours = store.hour_rows(period.start_s, period.end_s).map_err(ApiError::internal)?;
        let coverage = store.coverage_input(period.start_s, period.end_s).map_err(ApiError::internal)?;
        drop(store);
        let opts = crate::report::Options {
            institute: institute.clone(),
            anonymise: q.anonymise.unwrap_or(false),
            salt: app2.cfg.cluster.clone(),
        };
        let inp = crate::report::Inputs {
            cluster_name: &app2.cfg.cluster,
            institutes: &app2.cfg.institutes,
            days: &days,
            hours: &hours,
            coverage: &coverage,
            now_s: now_ms() / 1000,
        };
        let mut r = crate::report::build(&inp, &period, &opts, now_ms());
        if role.institute().is_some() {
            // The cluster-wide total would reveal the others' use.
            r.total = r.institutes.iter().fold(crate::report::Figures::default(), |mut t, i| {
                t.allocated_gpu_hours += i.figures.allocated_gpu_hours;
                t.utilised_gpu_hours += i.figures.utilised_gpu_hours;
                t.idle_allocated_gpu_hours += i.figures.idle_allocated_gpu_hours;
                t.unscheduled_gpu_hours += i.figures.unscheduled_gpu_hours;
                t.energy_kwh += i.figures.energy_kwh;
                t.capacity_gpu_hours += i.figures.capacity_gpu_hours;
                t
            });
        }
        Ok(r)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(report).into_response())
}

async fn get_findings(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    if role.institute().is_some() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "findings span institutes: use an admin token"));
    }
    let snap = app.sched.read().unwrap().clone();
    let list = crate::scheduler::findings(
        &app.live.read().unwrap(),
        &snap,
        app.view_policy().stale_after_ms,
        now_ms(),
        &app.cfg.scheduler.gpu_index,
    );
    Ok(Json(json!({ "scheduler": app.cfg.scheduler.kind, "scheduler_ok": snap.error.is_none() && snap.fetched_ms > 0, "findings": list })).into_response())
}

async fn get_scheduler(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let snap = app.sched.read().unwrap().clone();
    let jobs: Vec<_> = snap
        .jobs
        .iter()
        .filter(|j| {
            role.institute().is_none_or(|i| app.map.resolve(j.account.as_deref(), j.user.as_deref(), None) == i)
        })
        .collect();
    let queued = crate::scheduler::queued_gpus(&snap, &app.map);
    let queued: HashMap<&String, &u32> =
        queued.iter().filter(|(i, _)| role.institute().is_none_or(|m| m == i.as_str())).collect();
    Ok(Json(json!({
        "kind": app.cfg.scheduler.kind,
        "fetched_ms": snap.fetched_ms,
        "error": snap.error,
        "jobs": jobs,
        "queued_gpus": queued,
    }))
    .into_response())
}

async fn get_institutes(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let role = app.reader(&headers)?;
    let list: Vec<_> = app
        .cfg
        .institutes
        .iter()
        .filter(|i| role.institute().is_none_or(|m| m == i.id))
        .map(|i| json!({ "id": i.id, "name": i.display_name() }))
        .collect();
    Ok(Json(json!({ "institutes": list })).into_response())
}

/// Prometheus text exposition: cluster gauges and per-GPU gauges (no job labels).
async fn metrics(State(app): State<Arc<App>>) -> Response {
    use std::fmt::Write;
    let view = app.live.read().unwrap().cluster_view(
        &app.cfg.cluster,
        &app.map,
        app.view_policy(),
        Viewer { institute: None },
        now_ms(),
    );
    let mut out = String::with_capacity(256 + view.summary.gpus * 400);
    let s = &view.summary;
    let _ = writeln!(
        out,
        "# HELP jazari_nodes Nodes known to the collector.\n# TYPE jazari_nodes gauge\njazari_nodes {}",
        s.nodes
    );
    let _ = writeln!(
        out,
        "# HELP jazari_nodes_reporting Nodes that reported recently.\n# TYPE jazari_nodes_reporting gauge\njazari_nodes_reporting {}",
        s.nodes_reporting
    );
    let _ = writeln!(out, "# HELP jazari_gpus GPUs by state.\n# TYPE jazari_gpus gauge");
    for (state, n) in [
        ("total", s.gpus),
        ("allocated", s.gpus_allocated),
        ("busy", s.gpus_busy),
        ("idle_allocated", s.gpus_idle_allocated),
        ("unhealthy", s.gpus_unhealthy),
    ] {
        let _ = writeln!(out, "jazari_gpus{{state=\"{state}\"}} {n}");
    }
    let gauges: [Gauge; 4] = [
        ("jazari_gpu_utilization_ratio", "NVML GPU utilisation (share of time a kernel ran), 0-1.", |g| {
            g.util_gpu_pct.map(|u| u as f64 / 100.0)
        }),
        ("jazari_gpu_memory_used_bytes", "GPU memory used.", |g| g.mem_used_bytes.map(|v| v as f64)),
        ("jazari_gpu_power_watts", "GPU power draw.", |g| g.power_mw.map(|v| v as f64 / 1000.0)),
        ("jazari_gpu_temperature_celsius", "GPU temperature.", |g| g.temperature_c.map(|v| v as f64)),
    ];
    for (name, help, f) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for n in view.nodes.iter().filter(|n| !n.stale) {
            for g in &n.gpus {
                if let Some(v) = f(&g.gpu) {
                    let uuid = g.gpu.uuid.as_deref().unwrap_or("");
                    let _ = writeln!(out, "{name}{{node=\"{}\",gpu=\"{uuid}\",index=\"{}\"}} {v}", n.name, g.gpu.index);
                }
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Retention settings of a config, for the store.
pub fn keep_of(cfg: &Config) -> Keep {
    Keep {
        raw_ms: cfg.retention.raw.as_millis() as i64,
        minute_ms: cfg.retention.minute.as_millis() as i64,
        hour_ms: cfg.retention.hour.as_millis() as i64,
        dedup_ms: DEDUP_HORIZON_MS,
    }
}

/// Runs the collector until SIGINT or SIGTERM.
pub async fn serve(cfg: Config, store_path: PathBuf, listen: String) -> Result<()> {
    let app = App::open(cfg, store_path.clone())?;
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        store = %store_path.display(),
        nodes = app.live.read().unwrap().nodes.len(),
        "collector ready"
    );
    run(app, store_path, listener, shutdown()).await?;
    tracing::info!("collector stopped");
    Ok(())
}

/// Serves `app` on `listener` until `stop` completes, pruning history on the
/// configured schedule (also used by `jazari demo`).
pub async fn run(
    app: Arc<App>,
    store_path: PathBuf,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let keep = keep_of(&app.cfg);
    let pruner = {
        let every = app.cfg.retention.prune_every;
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let path = store_path.clone();
                let res = tokio::task::spawn_blocking(move || {
                    Store::open(&path).and_then(|mut s| s.downsample_and_prune(now_ms(), &keep))
                })
                .await;
                match res {
                    Ok(Ok(n)) => tracing::debug!(deleted = n, "history downsampled and pruned"),
                    Ok(Err(e)) => tracing::warn!("pruning failed: {e}"),
                    Err(e) => tracing::warn!("pruning task failed: {e}"),
                }
                app.live.write().unwrap().prune_jobs();
            }
        })
    };
    let poller = (app.cfg.scheduler.kind == "slurm").then(|| {
        let app = app.clone();
        tokio::spawn(async move {
            let cfg = app.cfg.scheduler.clone();
            let mut tick = tokio::time::interval(cfg.interval);
            let mut was_ok: Option<bool> = None;
            loop {
                tick.tick().await;
                let c = cfg.clone();
                let res = tokio::task::spawn_blocking(move || crate::scheduler::poll(&c))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                let now = now_ms();
                let mut snap = app.sched.write().unwrap();
                match res {
                    Ok(jobs) => {
                        if was_ok != Some(true) {
                            tracing::info!(jobs = jobs.len(), "Slurm answered; allocations come from the scheduler");
                        }
                        was_ok = Some(true);
                        *snap = crate::scheduler::Snapshot { fetched_ms: now, jobs, error: None };
                    }
                    Err(e) => {
                        if was_ok != Some(false) {
                            tracing::warn!("Slurm unavailable ({e}); carrying on with the agents' facts alone");
                        }
                        was_ok = Some(false);
                        snap.error = Some(e);
                    }
                }
            }
        })
    });
    axum::serve(listener, router(app)).with_graceful_shutdown(stop).await.context("serving HTTP")?;
    pruner.abort();
    if let Some(p) = poller {
        p.abort();
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
