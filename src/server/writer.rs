//! The writer thread: it owns the store's write connection and commits what
//! is waiting together (group commit): batches of reports, pending reports
//! being charged, the scheduler's history. A sender is answered only after
//! the commit.

use crate::accounting::GpuCharge;
use crate::api::findings::Finding;
use crate::scheduler::history::Run;
use crate::store::{Applied, Prepared, Settled, Store};
use crate::time::now_ms;
use jazari_wire::Report;
use prometheus_client::metrics::histogram::Histogram;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// A batch for the writer.
pub type Batch = Vec<Prepared>;
/// Says what a pending report charges.
pub type Charger = Box<dyn FnMut(&Report) -> Vec<GpuCharge> + Send>;

/// Work for the writer, and where to send its outcome.
pub enum WriteJob {
    /// Reports posted (answered with the batch back, for live state).
    Ingest(Batch, oneshot::Sender<Result<(Applied, Batch), String>>),
    /// Charge the pending reports ending by then.
    Settle { until_ms: i64, charge: Charger, reply: oneshot::Sender<Result<Settled, String>> },
    /// Keep runs of jobs the scheduler told of.
    Runs(Vec<Run>, oneshot::Sender<Result<(), String>>),
    /// Keep findings raised or cleared and queue their notifications (answers how many old ones were dropped).
    Alerts {
        findings: Vec<(Finding, Option<i64>)>,
        outbox: Vec<(String, String)>,
        max: usize,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    /// A notification delivered (`next_ms` None) or to retry.
    Outbox { id: i64, next_ms: Option<i64>, error: Option<String>, reply: oneshot::Sender<Result<(), String>> },
}

/// Most batches committed in one transaction.
const GROUP: usize = 256;

/// Runs until every sender is dropped; `timer` takes how long each ingest
/// and settle transaction took.
pub fn run(mut store: Box<dyn Store>, mut rx: mpsc::Receiver<WriteJob>, timer: Histogram) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let mut batches = vec![];
        let mut replies = vec![];
        for job in jobs {
            match job {
                WriteJob::Ingest(b, reply) => {
                    batches.push(b);
                    replies.push(reply);
                }
                WriteJob::Settle { until_ms, mut charge, reply } => {
                    let started = Instant::now();
                    let res = store.settle(until_ms, now_ms(), &mut *charge).map_err(|e| e.to_string());
                    timer.observe(started.elapsed().as_secs_f64());
                    if let Err(e) = &res {
                        tracing::error!("charging pending reports failed (they stay pending): {e}");
                    }
                    let _ = reply.send(res);
                }
                WriteJob::Runs(runs, reply) => {
                    let _ = reply.send(store.save_runs(&runs).map_err(|e| e.to_string()));
                }
                WriteJob::Alerts { findings, outbox, max, reply } => {
                    // With collectors sharing the store, one records findings and queues
                    // notifications (the others evaluate the same rules for their own views).
                    let res = match store.lead() {
                        Ok(true) => {
                            store.save_findings(&findings).and_then(|()| store.outbox_push(&outbox, now_ms(), max))
                        }
                        Ok(false) => Ok(0),
                        Err(e) => Err(e),
                    }
                    .map_err(|e| e.to_string());
                    let _ = reply.send(res);
                }
                WriteJob::Outbox { id, next_ms, error, reply } => {
                    let _ = reply.send(store.outbox_update(id, next_ms, error.as_deref()).map_err(|e| e.to_string()));
                }
            }
        }
        if batches.is_empty() {
            continue;
        }
        let started = Instant::now();
        let applied = store.apply(&batches, now_ms());
        timer.observe(started.elapsed().as_secs_f64());
        match applied {
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
