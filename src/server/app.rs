//! The collector's shared state: configuration, the store (one writer
//! thread, a small pool of readers), live state, the scheduler's last
//! snapshot, and the token check.

use super::error::ApiError;
use super::writer::{self, Batch, WriteJob};
use crate::accounting::{self, InstituteMap, Policy};
use crate::api::BatchOutcome;
use crate::api::scheduler::SchedulerKind;
use crate::auth::{self, Role};
use crate::config::Config;
use crate::live::{Live, ViewPolicy};
use crate::scheduler::Snapshot;
use crate::store::{Applied, Keep, Prepared, Store};
use crate::time::now_ms;
use anyhow::Result;
use axum::http::{HeaderMap, header};
use jazari_wire::Report;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use crate::store::DEDUP_HORIZON_MS;

/// Store reads running at once (each on a blocking thread with its own connection).
const READERS: usize = 4;

/// How long a verified token is trusted before the store is asked again.
const TOKEN_CACHE: Duration = Duration::from_secs(30);

/// A verified token: when, what it may do (None: refused), the full secret presented.
type CachedToken = (Instant, Option<Role>, String);

/// Shared state of a running collector.
pub struct App {
    pub cfg: Config,
    pub map: InstituteMap,
    policy: Policy,
    store_path: PathBuf,
    writer: mpsc::Sender<WriteJob>,
    readers: Mutex<Vec<Box<dyn Store>>>,
    read_slots: Semaphore,
    pub live: RwLock<Live>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// The last scheduler poll.
    pub sched: RwLock<Snapshot>,
}

impl App {
    /// Opens the store and restores live state from it.
    pub fn open(cfg: Config, store_path: PathBuf) -> Result<Arc<App>> {
        let write = crate::store::open(&store_path)?;
        let read = crate::store::open(&store_path)?;
        let mut live = Live::default();
        for (r, first_seen) in read.last_reports()? {
            live.update(&r, r.interval_end_ms);
            if let Some(n) = live.nodes.get_mut(&r.node) {
                n.first_seen_ms = first_seen;
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        std::thread::Builder::new().name("store-writer".into()).spawn(move || writer::run(write, rx))?;
        Ok(Arc::new(App {
            map: cfg.institute_map(),
            policy: Policy { idle_threshold_pct: cfg.ingest.idle_threshold_pct },
            store_path,
            writer: tx,
            readers: Mutex::new(vec![read]),
            read_slots: Semaphore::new(READERS),
            live: RwLock::new(live),
            tokens: Mutex::new(HashMap::new()),
            sched: RwLock::new(Default::default()),
            cfg,
        }))
    }

    pub fn view_policy(&self) -> ViewPolicy {
        ViewPolicy {
            stale_after_ms: self.cfg.nodes.interval.as_millis() as i64 * self.cfg.nodes.stale_after_intervals as i64,
            idle_threshold_pct: self.cfg.ingest.idle_threshold_pct,
        }
    }

    /// Retention settings, for the store.
    pub fn keep(&self) -> Keep {
        let r = &self.cfg.retention;
        Keep {
            raw_ms: r.raw.as_millis() as i64,
            minute_ms: r.minute.as_millis() as i64,
            hour_ms: r.hour.as_millis() as i64,
            dedup_ms: DEDUP_HORIZON_MS,
        }
    }

    /// Runs `f` on a reader connection, off the async runtime.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&dyn Store) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _slot = self.read_slots.acquire().await.map_err(ApiError::internal)?;
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = app.readers.lock().unwrap().pop();
            let conn = match conn {
                Some(c) => c,
                None => crate::store::open(&app.store_path).map_err(ApiError::internal)?,
            };
            let out = f(conn.as_ref()).map_err(ApiError::internal);
            app.readers.lock().unwrap().push(conn);
            out
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Checks the bearer token; tokens are cached for 30 s so revocations take effect within that.
    pub async fn authenticate(self: &Arc<Self>, headers: &HeaderMap) -> Result<Role, ApiError> {
        let unauthorized = || ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "missing or invalid token");
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unauthorized)?
            .to_string();
        let id = presented.get(..12).unwrap_or(&presented).to_string();
        {
            let cache = self.tokens.lock().unwrap();
            if let Some((at, role, secret)) = cache.get(&id)
                && at.elapsed() < TOKEN_CACHE
                && auth::constant_time_eq(secret.as_bytes(), presented.as_bytes())
            {
                return role.clone().ok_or_else(unauthorized);
            }
        }
        let p = presented.clone();
        let verdict = self.read(move |s| auth::verify(s, &p)).await?;
        let role = verdict.ok();
        let mut cache = self.tokens.lock().unwrap();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id, (Instant::now(), role.clone(), presented));
        role.ok_or_else(unauthorized)
    }

    /// A token that may read (admin or institute).
    pub async fn reader(self: &Arc<Self>, headers: &HeaderMap) -> Result<Role, ApiError> {
        let role = self.authenticate(headers).await?;
        if !role.can_read() {
            return Err(ApiError::forbidden("a node token cannot read; use an admin or institute token"));
        }
        Ok(role)
    }

    /// Sends a batch to the writer and waits for the commit.
    async fn write(&self, batch: Batch) -> Result<(Applied, Batch), ApiError> {
        let stopped = || ApiError::unavailable("the store writer has stopped");
        let (tx, rx) = oneshot::channel();
        self.writer.send((batch, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(|e| ApiError::unavailable(format!("store: {e}")))
    }

    /// Ingests a decoded, validated batch and updates live state after the commit.
    pub async fn ingest(&self, mut reports: Vec<Report>) -> Result<BatchOutcome, ApiError> {
        if self.cfg.scheduler.kind != SchedulerKind::None {
            let snap = self.sched.read().unwrap();
            let slack = 2 * self.cfg.scheduler.interval.as_millis() as i64 + 60_000;
            for r in reports.iter_mut().filter(|r| snap.covers(r.interval_end_ms, slack)) {
                crate::scheduler::enrich(r, &snap, self.cfg.scheduler.gpu_index);
            }
        }
        let batch = Prepared::batch(reports, |r| accounting::gpu_charges(r, &self.map, self.policy));
        let (applied, batch) = self.write(batch).await?;
        if applied.outcome.accepted > 0 {
            let now = now_ms();
            let mut live = self.live.write().unwrap();
            live.update_batch(batch.iter().map(|p| &p.report), now);
            for (node, seconds) in &applied.overlaps {
                live.note_overlap(node, *seconds, now);
            }
        }
        if !applied.overlaps.is_empty() {
            let nodes: std::collections::BTreeSet<&str> = applied.overlaps.iter().map(|o| o.0.as_str()).collect();
            tracing::warn!(
                reports = applied.outcome.overlapping,
                nodes = ?nodes,
                "reports for time already charged: only their new time was charged"
            );
        }
        Ok(applied.outcome)
    }

    /// The institute a read is limited to: an institute token's own (asking for
    /// another is refused), else the one asked for, which must exist.
    pub fn scoped_institute(&self, role: &Role, asked: Option<&str>) -> Result<Option<String>, ApiError> {
        let institute = match (role.institute(), asked) {
            (Some(mine), Some(asked)) if mine != asked => {
                return Err(ApiError::forbidden("an institute token reads its own institute only"));
            }
            (Some(mine), _) => Some(mine.to_string()),
            (None, asked) => asked.map(str::to_string),
        };
        if let Some(i) = &institute
            && self.cfg.institute(i).is_none()
            && i != accounting::UNASSIGNED
        {
            return Err(ApiError::not_found(format!(
                "no institute `{i}`; known institutes: {}",
                self.cfg.institute_ids()
            )));
        }
        Ok(institute)
    }
}
