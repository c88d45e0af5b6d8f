//! The collector's shared state: configuration, the store (one writer
//! thread, a small pool of readers), live state, the scheduler's last
//! snapshot, and the token check.

use super::error::ApiError;
use super::refusals::Refusals;
use super::telemetry::Telemetry;
use super::writer::{self, Batch, Charger, WriteJob};
use crate::accounting::{self, Allocations, InstituteMap, Policy};
use crate::api::BatchOutcome;
use crate::api::scheduler::SchedulerKind;
use crate::auth::Role;
use crate::config::Config;
use crate::live::{Live, Seen, ViewPolicy};
use crate::scheduler::history::{History, Run};
use crate::scheduler::{self, IndexMap};
use crate::store::{Applied, Keep, Prepared, Settled, Store};
use crate::time::now_ms;
use anyhow::{Context, Result};
use jazari_wire::Report;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc, oneshot};

pub use crate::store::DEDUP_HORIZON_MS;

/// Store reads running at once (each on a blocking thread with its own connection).
const READERS: usize = 4;

/// A verified token: when, what it may do (None: refused), the full secret presented.
pub(super) type CachedToken = (Instant, Option<Role>, String);

/// A batch ready to commit, with the jobs the scheduler runs on each report's node.
pub struct Ready {
    pub batch: Vec<Prepared>,
    scheduled: Vec<Option<BTreeSet<String>>>,
}

/// Shared state of a running collector.
pub struct App {
    pub cfg: Config,
    pub map: InstituteMap,
    policy: Policy,
    store_path: PathBuf,
    /// Other collectors write to the same store (PostgreSQL).
    pub shared_store: bool,
    writer: mpsc::Sender<WriteJob>,
    readers: Mutex<Vec<Box<dyn Store>>>,
    read_slots: Semaphore,
    pub live: RwLock<Live>,
    pub(super) tokens: Mutex<HashMap<String, CachedToken>>,
    /// What the scheduler has said.
    pub sched: RwLock<scheduler::State>,
    /// Batches decoded and prepared at once (`ingest.workers`).
    pub workers: Semaphore,
    /// Refused reports, by reason and node.
    pub(super) refusals: Mutex<Refusals>,
    /// The alert rules' state (findings raised, what the rules remember).
    pub(super) alerts: tokio::sync::Mutex<crate::findings::Rules>,
    /// Notifications sent, failed, dropped.
    pub(super) alert_stats: Mutex<crate::findings::Delivery>,
    /// The collector's own counters and histograms, and the last `/metrics` rendering.
    pub(super) telemetry: Telemetry,
    /// The secret `/metrics` asks for (`server.metrics_token_file`), read at the start.
    pub(super) metrics_token: Option<String>,
}

impl App {
    /// Opens the store and restores live state from it.
    pub fn open(cfg: Config, store_path: PathBuf) -> Result<Arc<App>> {
        let mut write = crate::store::open(&store_path)?;
        write.become_writer()?;
        let read = crate::store::open_again(&store_path)?;
        let shared_store = read.shared();
        let mut live = Live { epoch: crate::auth::random_chars(8), ..Default::default() };
        for (r, first_seen) in read.last_reports(cfg.ingest.decode_limits())? {
            live.update_from_agent(&r, r.interval_end_ms);
            if let Some(n) = live.nodes.get_mut(&r.node) {
                n.first_seen_ms = first_seen;
            }
        }
        // The scheduler's history of runs not ended before the dedup horizon.
        let runs = read.load_runs(now_ms() - crate::store::DEDUP_HORIZON_MS)?;
        // Findings active at the last stop (and those cleared within a day).
        let findings = read.load_findings(now_ms() - 86_400_000)?;
        let metrics_token = match &cfg.server.metrics_token_file {
            Some(f) => Some(jazari_wire::token::read(f).context("server.metrics_token_file")?),
            None => None,
        };
        let telemetry = Telemetry::default();
        let (tx, rx) = mpsc::channel(1024);
        let timer = telemetry.store_write.clone();
        std::thread::Builder::new().name("store-writer".into()).spawn(move || writer::run(write, rx, timer))?;
        Ok(Arc::new(App {
            map: cfg.institute_map(),
            policy: Policy { idle_threshold_pct: cfg.ingest.idle_threshold_pct, mig_charge: cfg.accounting.mig_charge },
            store_path,
            shared_store,
            writer: tx,
            readers: Mutex::new(vec![read]),
            read_slots: Semaphore::new(READERS),
            live: RwLock::new(live),
            tokens: Mutex::new(HashMap::new()),
            workers: Semaphore::new(cfg.ingest.worker_count()),
            refusals: Mutex::default(),
            telemetry,
            metrics_token,
            alerts: tokio::sync::Mutex::new(crate::findings::Rules::restore(findings)),
            alert_stats: Mutex::default(),
            sched: RwLock::new(scheduler::State {
                history: Arc::new(History::from_runs(runs)),
                index: IndexMap::new(cfg.scheduler.gpu_index),
                sacct_since_ms: now_ms() - 86_400_000,
                ..Default::default()
            }),
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
            let started = Instant::now();
            let conn = app.readers.lock().unwrap().pop();
            let conn = match conn {
                Some(c) => c,
                None => crate::store::open_again(&app.store_path).map_err(ApiError::internal)?,
            };
            let out = f(conn.as_ref()).map_err(ApiError::internal);
            app.readers.lock().unwrap().push(conn);
            app.telemetry.store_read.observe(started.elapsed().as_secs_f64());
            out
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Sends work to the writer and waits for the commit.
    async fn send<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T, String>>) -> WriteJob) -> Result<T, ApiError> {
        let stopped = || ApiError::unavailable("the store writer has stopped");
        let (tx, rx) = oneshot::channel();
        self.writer.send(job(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?.map_err(|e| ApiError::unavailable(format!("store: {e}")))
    }

    /// Whether the scheduler is configured and answering now.
    fn scheduler_fresh(&self, now: i64) -> bool {
        self.cfg.scheduler.kind == SchedulerKind::Slurm
            && self.sched.read().unwrap().fresh(self.cfg.scheduler.fresh_for(), now)
    }

    /// Prepares a decoded, validated batch (CPU work: run it on a blocking
    /// thread): who holds each GPU, and the charges when they can be made now.
    ///
    /// Without a scheduler a report is charged at once from the agent's facts.
    /// With one, it waits (pending, in the store) until the scheduler's view of
    /// its time is complete; live state shows the scheduler's allocations now.
    pub fn prepare(&self, reports: Vec<Report>) -> Ready {
        let now = now_ms();
        let with_scheduler = self.cfg.scheduler.kind == SchedulerKind::Slurm;
        let fresh = self.scheduler_fresh(now);
        let mut s = self.sched.write().unwrap();
        let s = &mut *s;
        let batch = Prepared::batch(reports, |r| {
            if !with_scheduler {
                let allocs = Allocations::from_agent(r, accounting::same_index);
                let charges = accounting::gpu_charges(r, &self.map, self.policy, &allocs);
                return (allocs, Some(charges));
            }
            s.index.learn(r, &s.history);
            let numbering = s.index.for_node(&r.node);
            let allocs = if fresh {
                scheduler::allocations(r, &s.history, numbering)
            } else {
                scheduler::agent_allocations(r, numbering)
            };
            (allocs, None)
        });
        // The jobs the scheduler says run on each node, while its word is fresh.
        let scheduled = batch
            .iter()
            .map(|p| {
                let on =
                    || scheduler::running_on(&s.snapshot, &p.report.node).into_iter().map(str::to_string).collect();
                fresh.then(on)
            })
            .collect();
        Ready { batch, scheduled }
    }

    /// Commits a prepared batch and updates live state after the commit.
    pub async fn commit(&self, ready: Ready) -> Result<BatchOutcome, ApiError> {
        let Ready { batch, scheduled } = ready;
        let (applied, batch): (Applied, Batch) = self.send(|tx| WriteJob::Ingest(batch, tx)).await?;
        self.telemetry.reports_accepted.inc_by(applied.outcome.accepted as u64);
        self.telemetry.reports_duplicate.inc_by(applied.outcome.duplicates as u64);
        if applied.outcome.accepted > 0 {
            let now = now_ms();
            // Reports already held were taken in when they first came.
            let seen: Vec<Seen> = batch
                .iter()
                .zip(&scheduled)
                .enumerate()
                .filter(|(i, _)| !applied.duplicates.contains(i))
                .map(|(_, (p, set))| Seen { report: &p.report, allocs: &p.allocs, scheduled: set.as_ref() })
                .collect();
            let mut live = self.live.write().unwrap();
            live.update_batch(&seen, now);
            for (node, seconds) in &applied.overlaps {
                live.note_overlap(node, *seconds, now);
            }
        }
        if !applied.overlaps.is_empty() {
            let nodes: BTreeSet<&str> = applied.overlaps.iter().map(|o| o.0.as_str()).collect();
            tracing::warn!(
                reports = applied.outcome.overlapping,
                nodes = ?nodes,
                "reports for time already charged: only their new time was charged"
            );
        }
        Ok(applied.outcome)
    }

    /// Charges the pending reports ending by `until_ms`: with the scheduler's
    /// view for those its view completed, with the agents' facts for the rest.
    pub async fn settle(&self, until_ms: i64) -> Result<usize, ApiError> {
        let (history, index, complete) = {
            let s = self.sched.read().unwrap();
            (s.history.clone(), s.index.clone(), s.complete_until_ms)
        };
        let (map, policy) = (self.map.clone(), self.policy);
        let charge: Charger = Box::new(move |r: &Report| {
            let numbering = index.for_node(&r.node);
            let allocs = if r.interval_end_ms <= complete {
                scheduler::allocations(r, &history, numbering)
            } else {
                scheduler::agent_allocations(r, numbering)
            };
            accounting::gpu_charges(r, &map, policy, &allocs)
        });
        let settled: Settled = self.send(|reply| WriteJob::Settle { until_ms, charge, reply }).await?;
        if !settled.overlaps.is_empty() {
            let now = now_ms();
            let mut live = self.live.write().unwrap();
            for (node, seconds) in &settled.overlaps {
                live.note_overlap(node, *seconds, now);
            }
        }
        Ok(settled.charged)
    }

    /// Keeps findings raised or cleared and queues their notifications; returns how many queued ones were dropped.
    pub async fn write_alerts(
        &self,
        findings: Vec<(crate::api::findings::Finding, Option<i64>)>,
        outbox: Vec<(String, String)>,
        _now: i64,
        max: usize,
    ) -> Result<u64, ApiError> {
        self.send(|reply| WriteJob::Alerts { findings, outbox, max, reply }).await
    }

    /// Marks a notification delivered (`next_ms` None) or to retry.
    pub async fn outbox_update(&self, id: i64, next_ms: Option<i64>, error: Option<String>) -> Result<(), ApiError> {
        self.send(|reply| WriteJob::Outbox { id, next_ms, error, reply }).await
    }

    /// Keeps runs the scheduler told of (its history survives a restart).
    pub async fn save_runs(&self, runs: Vec<Run>) -> Result<(), ApiError> {
        self.send(|tx| WriteJob::Runs(runs, tx)).await
    }
}
