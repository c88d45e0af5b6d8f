//! The collector's own instruments, kept from its start and exported at
//! `/metrics`: reports accepted and duplicated, how long batches, store work
//! and scheduler polls take; the ledger's totals per institute as counters;
//! and the last `/metrics` rendering.
//!
//! Nothing here reads the rest of the collector: ingest, the writer and the
//! scheduler poller update these; `metrics` reads them.

use crate::accounting::{Amounts, HourRow};
use crate::store::{DEDUP_HORIZON_MS, Store};
use crate::time::{DAY_MS, HOUR_MS};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Counters and histograms updated as things happen (cloning one shares it).
#[derive(Debug)]
pub struct Telemetry {
    pub reports_accepted: Counter,
    pub reports_duplicate: Counter,
    /// A posted batch, from its request to its answer (answered 200 only).
    pub ingest_batch: Histogram,
    /// A group commit of the writer (batches of reports, or pending reports charged).
    pub store_write: Histogram,
    /// A read on one of the store's reader connections.
    pub store_read: Histogram,
    /// A scheduler poll (the queue, and what ended).
    pub scheduler_poll: Histogram,
    /// The ledger's totals per institute, as counters.
    pub ledger: Mutex<LedgerTotals>,
    /// The last `/metrics` renderings and when they were made.
    pub cache: tokio::sync::Mutex<Option<(Instant, Arc<Rendered>)>>,
}

/// One rendering in both formats a scraper may ask for.
#[derive(Debug)]
pub struct Rendered {
    pub openmetrics: String,
    pub prometheus_text: String,
}

impl Default for Telemetry {
    fn default() -> Self {
        // 1 ms to about 33 s; the scheduler's from 10 ms to about 5 min.
        let fast = || Histogram::new(exponential_buckets(0.001, 2.0, 16));
        Self {
            reports_accepted: Counter::default(),
            reports_duplicate: Counter::default(),
            ingest_batch: fast(),
            store_write: fast(),
            store_read: fast(),
            scheduler_poll: Histogram::new(exponential_buckets(0.01, 2.0, 15)),
            ledger: Mutex::default(),
            cache: tokio::sync::Mutex::new(None),
        }
    }
}

impl Telemetry {
    /// Registers the instruments (shared, not copied) in `reg`; the
    /// scheduler's only where one is configured.
    pub fn register(&self, reg: &mut Registry, with_scheduler: bool) {
        reg.register(
            "jazari_reports_accepted",
            "Reports accepted and charged (or waiting for the scheduler) since the collector started",
            self.reports_accepted.clone(),
        );
        reg.register(
            "jazari_reports_duplicate",
            "Reports sent again and already held (nothing charged) since the collector started",
            self.reports_duplicate.clone(),
        );
        for (name, help, h) in [
            (
                "jazari_ingest_batch_duration",
                "Time from a batch of reports arriving to its answer, for batches answered 200",
                &self.ingest_batch,
            ),
            (
                "jazari_store_write_duration",
                "Time of one write transaction of the store (a group commit of batches, or pending reports charged)",
                &self.store_write,
            ),
            ("jazari_store_read_duration", "Time of one read of the store", &self.store_read),
        ] {
            reg.register_with_unit(name, help, Unit::Seconds, h.clone());
        }
        if with_scheduler {
            reg.register_with_unit(
                "jazari_scheduler_poll_duration",
                "Time of one scheduler poll (the queue and what ended)",
                Unit::Seconds,
                self.scheduler_poll.clone(),
            );
        }
    }
}

/// The GPU-seconds and energy each institute has been charged in the ledger,
/// over all the hours the store holds, as counters that never go down.
///
/// Reading every hour on every scrape would grow with the store's age, so
/// the hours no report can change any more (older than the deduplication
/// horizon and a day) are summed once into `frozen` and only the newer ones
/// (about 31 days per institute) are read on each scrape.
#[derive(Debug, Default)]
pub struct LedgerTotals {
    /// Sums of the hours before `frozen_before_s`.
    frozen: BTreeMap<String, Amounts>,
    frozen_before_s: Option<i64>,
    /// The values last exported: a total is never exported lower than before
    /// (sums in another order may differ in their last bits).
    last: BTreeMap<String, Amounts>,
}

impl LedgerTotals {
    /// Brings the totals up to date from `store` at `now_ms`.
    pub fn update(&mut self, store: &dyn Store, now_ms: i64) -> crate::store::Result<&BTreeMap<String, Amounts>> {
        let frozen_before_s = (now_ms - DEDUP_HORIZON_MS - DAY_MS).div_euclid(HOUR_MS) * HOUR_MS / 1000;
        if self.frozen_before_s.is_none_or(|f| f < frozen_before_s) {
            let from = self.frozen_before_s.unwrap_or(i64::MIN);
            let rows = store.hour_rows(from, frozen_before_s)?;
            add_rows(&mut self.frozen, &rows);
            self.frozen_before_s = Some(frozen_before_s);
        }
        let mut totals = self.frozen.clone();
        add_rows(&mut totals, &store.hour_rows(frozen_before_s, i64::MAX)?);
        Ok(self.take(totals))
    }

    /// Takes new totals, keeping each value at least what was exported before.
    fn take(&mut self, totals: BTreeMap<String, Amounts>) -> &BTreeMap<String, Amounts> {
        for (institute, new) in totals {
            let last = self.last.entry(institute).or_default();
            for (l, n) in [
                (&mut last.allocated_s, new.allocated_s),
                (&mut last.busy_s, new.busy_s),
                (&mut last.idle_allocated_s, new.idle_allocated_s),
                (&mut last.unscheduled_s, new.unscheduled_s),
                (&mut last.energy_j, new.energy_j),
            ] {
                *l = l.max(n);
            }
        }
        &self.last
    }
}

/// Adds hour rows into sums per institute (idle capacity, under no institute, left out).
fn add_rows(sums: &mut BTreeMap<String, Amounts>, rows: &[HourRow]) {
    for r in rows.iter().filter(|r| !r.institute.is_empty()) {
        sums.entry(r.institute.clone()).or_default().add(&r.amounts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(allocated_s: f64) -> Amounts {
        Amounts { allocated_s, busy_s: allocated_s / 2.0, ..Default::default() }
    }

    #[test]
    fn totals_never_go_down() {
        let mut t = LedgerTotals::default();
        let one = |v: f64| BTreeMap::from([("ibn-sina".to_string(), amounts(v))]);
        assert_eq!(t.take(one(0.3))["ibn-sina"].allocated_s, 0.3);
        // The same hours summed in another order can come out a few bits lower.
        let lower = 0.1 + 0.2 - 0.3 + 0.3 - 1e-16;
        assert_eq!(t.take(one(lower))["ibn-sina"].allocated_s, 0.3);
        assert_eq!(t.take(one(7.0))["ibn-sina"].allocated_s, 7.0);
        // An institute missing from one reading keeps its last value.
        let other = BTreeMap::from([("al-biruni".to_string(), amounts(1.0))]);
        let out = t.take(other);
        assert_eq!((out["ibn-sina"].allocated_s, out["al-biruni"].busy_s), (7.0, 0.5));
    }

    #[test]
    fn idle_capacity_has_no_institute_and_is_left_out() {
        let row = |institute: &str| HourRow {
            hour: 0,
            institute: institute.into(),
            amounts: amounts(3600.0),
            peak_held_gpus: 1.0,
            peak_busy_gpus: 0.5,
        };
        let mut sums = BTreeMap::new();
        add_rows(&mut sums, &[row(""), row("ibn-sina"), row("ibn-sina")]);
        assert_eq!(sums.len(), 1);
        assert_eq!(sums["ibn-sina"].allocated_s, 7200.0);
    }
}
