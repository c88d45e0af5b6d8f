//! Counts of the lists in a report, checked while a body is decoded: a body
//! holding more GPUs, processes, jobs or events than the collector takes is
//! refused as soon as the first one too many is read, before the rest is
//! built in memory (a few KB of zstd can hold millions of `{"pid":1}`).
//!
//! [`decode_with`](crate::decode::decode_with) sets the limits for the
//! current thread while it decodes; the list fields of [`Report`](crate::Report)
//! read them. Decoding with no limits set (the agent reading its own spool)
//! counts nothing.

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// Most items one body may hold. Each refusal names the collector setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Reports in one batch (`ingest.max_reports_per_batch`).
    pub reports: usize,
    /// GPUs in one report (`ingest.max_gpus_per_report`).
    pub gpus: usize,
    /// Processes on one GPU or MIG device (`ingest.max_processes_per_gpu`).
    pub processes_per_gpu: usize,
    /// Processes in one report, all GPUs together (`ingest.max_processes_per_report`).
    pub processes: usize,
    /// Jobs in one report (`ingest.max_jobs_per_report`).
    pub jobs: usize,
    /// Events in one report (`ingest.max_events_per_report`).
    pub events: usize,
}

impl Default for DecodeLimits {
    /// The collector's defaults: far more than a real node (8-16 GPUs, a few
    /// hundred processes), far less than memory allows.
    fn default() -> Self {
        DecodeLimits { reports: 512, gpus: 64, processes_per_gpu: 1024, processes: 8192, jobs: 2048, events: 1024 }
    }
}

#[derive(Clone, Copy)]
struct Budget {
    limits: DecodeLimits,
    /// Processes read so far in the current report.
    processes: usize,
}

thread_local! {
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// Sets `limits` for this thread while `f` runs (restored after, also on a panic).
pub(crate) fn with_limits<T>(limits: DecodeLimits, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Budget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(BUDGET.with(|b| b.replace(Some(Budget { limits, processes: 0 }))));
    f()
}

/// Starts counting a new report's processes.
pub(crate) fn next_report() {
    BUDGET.with(|b| {
        if let Some(mut x) = b.get() {
            x.processes = 0;
            b.set(Some(x));
        }
    });
}

fn limits() -> Option<DecodeLimits> {
    BUDGET.with(|b| b.get().map(|x| x.limits))
}

/// Counts one more process of the current report; false once over the report's limit.
fn take_process() -> Result<(), usize> {
    BUDGET.with(|b| match b.get() {
        Some(mut x) => {
            x.processes += 1;
            b.set(Some(x));
            if x.processes > x.limits.processes { Err(x.limits.processes) } else { Ok(()) }
        }
        None => Ok(()),
    })
}

/// Which list a bounded sequence is, for its limit and its refusal.
#[derive(Clone, Copy)]
pub(crate) enum List {
    Reports,
    Gpus,
    Processes,
    Jobs,
    Events,
}

impl List {
    fn limit(self, l: &DecodeLimits) -> usize {
        match self {
            List::Reports => l.reports,
            List::Gpus => l.gpus,
            List::Processes => l.processes_per_gpu,
            List::Jobs => l.jobs,
            List::Events => l.events,
        }
    }

    fn refusal(self, limit: usize) -> String {
        let (what, key) = match self {
            List::Reports => ("reports in one batch", "max_reports_per_batch"),
            List::Gpus => ("GPUs in one report", "max_gpus_per_report"),
            List::Processes => ("processes on one GPU", "max_processes_per_gpu"),
            List::Jobs => ("jobs in one report", "max_jobs_per_report"),
            List::Events => ("events in one report", "max_events_per_report"),
        };
        format!("more than {limit} {what} (the collector's ingest.{key})")
    }
}

pub(crate) struct Bounded<T>(pub List, PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let limit = limits().map(|l| self.0.limit(&l));
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(limit.unwrap_or(64)).min(64));
        loop {
            if matches!(self.0, List::Reports) {
                next_report();
            }
            let Some(item) = seq.next_element::<T>()? else { break };
            if limit.is_some_and(|l| out.len() >= l) {
                return Err(serde::de::Error::custom(self.0.refusal(limit.unwrap_or(0))));
            }
            if matches!(self.0, List::Processes) {
                take_process().map_err(|l| {
                    serde::de::Error::custom(format!(
                        "more than {l} processes in one report (the collector's ingest.max_processes_per_report)"
                    ))
                })?;
            }
            out.push(item);
        }
        Ok(out)
    }
}

pub(crate) fn seq<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D, list: List) -> Result<Vec<T>, D::Error> {
    d.deserialize_seq(Bounded(list, PhantomData))
}

pub(crate) fn gpus<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    seq(d, List::Gpus)
}

pub(crate) fn processes<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    seq(d, List::Processes)
}

pub(crate) fn jobs<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    seq(d, List::Jobs)
}

pub(crate) fn events<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    seq(d, List::Events)
}
