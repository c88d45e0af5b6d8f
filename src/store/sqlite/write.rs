//! The ingest transaction: for a group of batches, the dedup record, the
//! ledger and its roll-ups, coverage, raw history and the newest report of
//! each node, committed together.

use super::SqliteStore;
use super::ledger::{add_amounts, add_amounts_sql};
use crate::accounting::{Amounts, LedgerKey};
use crate::store::seen::Seen;
use crate::store::{BatchOutcome, Prepared, Result, StoreError};
use crate::time::{hour_bucket_s, split_hours};
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// Charges summed per hour bucket and key before they touch the tables: a
/// node replaying its spool sends many reports for the same GPUs and hours.
type Sums<'a> = HashMap<(i64, &'a LedgerKey), Amounts>;
/// Coverage per (hour, node): seconds covered and reports ending in that hour.
type Cov<'a> = HashMap<(i64, &'a str), (f64, i64)>;

impl SqliteStore {
    pub(super) fn apply_batches(&mut self, batches: &[Vec<Prepared>]) -> Result<Vec<BatchOutcome>> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        let outcomes = write_group(&tx, batches).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(outcomes)
    }
}

fn write_group(tx: &Transaction, batches: &[Vec<Prepared>]) -> rusqlite::Result<Vec<BatchOutcome>> {
    let mut seen_get = tx.prepare_cached("SELECT upto, extra FROM seen WHERE node = ?1 AND instance = ?2")?;
    let mut history = tx.prepare_cached("INSERT OR REPLACE INTO history_raw(node, ts_ms, gpus) VALUES(?1, ?2, ?3)")?;
    // What each agent instance has delivered, loaded once per group.
    let mut marks: HashMap<(&str, &str), Seen> = HashMap::new();
    let mut sums = Sums::new();
    let mut cov = Cov::new();
    let mut outcomes = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut out = BatchOutcome::default();
        for Prepared { report: r, charges, history: raw, .. } in batch {
            let key = (r.node.as_str(), r.instance.as_str());
            if let Entry::Vacant(e) = marks.entry(key) {
                let row: Option<(i64, String)> =
                    seen_get.query_row(params![key.0, key.1], |x| Ok((x.get(0)?, x.get(1)?))).optional()?;
                e.insert(row.map(|(upto, extra)| Seen::from_row(upto, &extra)).unwrap_or_default());
            }
            let mark = marks.get_mut(&key).expect("loaded");
            mark.last_ms = mark.last_ms.max(r.interval_end_ms);
            if !mark.insert(r.seq as i64) {
                out.duplicates += 1;
                continue;
            }
            out.accepted += 1;
            for c in charges {
                sums.entry((c.hour, &c.key)).or_default().add(&c.amounts);
            }
            let dt = r.interval_s();
            // A report counts once, in the hour its interval ends.
            let end_hour = hour_bucket_s(r.interval_end_ms - 1);
            split_hours(r.interval_start_ms, r.interval_end_ms, |h, f| {
                let e = cov.entry((h, r.node.as_str())).or_default();
                e.0 += f * dt;
                e.1 += i64::from(h == end_hour);
            });
            history.execute(params![r.node, r.interval_end_ms, raw])?;
        }
        outcomes.push(out);
    }
    let mut seen_put = tx.prepare_cached(
        "INSERT OR REPLACE INTO seen(node, instance, upto, extra, last_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
    )?;
    for ((node, instance), mark) in &marks {
        let (upto, extra) = mark.to_row();
        seen_put.execute(params![node, instance, upto, extra, mark.last_ms])?;
    }
    write_ledger(tx, &sums)?;
    write_coverage(tx, &cov)?;
    write_last_reports(tx, batches)?;
    Ok(outcomes)
}

/// The fine ledger and the roll-ups reports read: per day and job (no node
/// or GPU), and per hour and institute, all from the same sums.
fn write_ledger(tx: &Transaction, sums: &Sums) -> rusqlite::Result<()> {
    let mut ledger =
        tx.prepare_cached(&add_amounts_sql("ledger", &["hour", "institute", "account", "user", "job", "node", "gpu"]))?;
    let mut day: HashMap<(i64, &str, &str, &str, &str), Amounts> = HashMap::new();
    let mut hour: HashMap<(i64, &str), Amounts> = HashMap::new();
    for ((h, k), a) in sums {
        add_amounts(&mut ledger, &[h, &k.institute, &k.account, &k.user, &k.job, &k.node, &k.gpu], a)?;
        day.entry((h.div_euclid(86400) * 86400, &k.institute, &k.account, &k.user, &k.job)).or_default().add(a);
        hour.entry((*h, &k.institute)).or_default().add(a);
    }
    let mut up_day =
        tx.prepare_cached(&add_amounts_sql("ledger_day", &["day", "institute", "account", "user", "job"]))?;
    for ((d, i, acc, u, j), a) in &day {
        add_amounts(&mut up_day, &[d, i, acc, u, j], a)?;
    }
    let mut up_hour = tx.prepare_cached(&add_amounts_sql("ledger_hour", &["hour", "institute"]))?;
    for ((h, i), a) in &hour {
        add_amounts(&mut up_hour, &[h, i], a)?;
    }
    Ok(())
}

/// Coverage per hour and per day.
fn write_coverage(tx: &Transaction, cov: &Cov) -> rusqlite::Result<()> {
    let mut coverage = tx.prepare_cached(
        "INSERT INTO coverage(hour, node, covered_s, reports) VALUES(?1, ?2, ?3, ?4)
         ON CONFLICT(hour, node) DO UPDATE SET covered_s = covered_s + excluded.covered_s,
           reports = reports + excluded.reports",
    )?;
    let mut cov_day: HashMap<(i64, &str), f64> = HashMap::new();
    for ((hour, node), (secs, n)) in cov {
        coverage.execute(params![hour, node, secs, n])?;
        *cov_day.entry((hour.div_euclid(86400) * 86400, node)).or_default() += secs;
    }
    let mut up_cov_day = tx.prepare_cached(
        "INSERT INTO coverage_day(day, node, covered_s) VALUES(?1, ?2, ?3)
         ON CONFLICT(day, node) DO UPDATE SET covered_s = covered_s + excluded.covered_s",
    )?;
    for ((day, node), secs) in &cov_day {
        up_cov_day.execute(params![day, node, secs])?;
    }
    Ok(())
}

/// The newest report of each node, once per group.
fn write_last_reports(tx: &Transaction, batches: &[Vec<Prepared>]) -> rusqlite::Result<()> {
    let mut node = tx.prepare_cached(
        "INSERT INTO nodes(node, first_seen_ms, last_seen_ms, last_report) VALUES(?1, ?2, ?2, ?3)
         ON CONFLICT(node) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,
           last_report = excluded.last_report WHERE excluded.last_seen_ms >= nodes.last_seen_ms",
    )?;
    let with_snapshot: Vec<&Prepared> = batches.iter().flatten().filter(|p| p.snapshot.is_some()).collect();
    for i in jazari_wire::newest_per_node(with_snapshot.iter().map(|p| &p.report)).into_values() {
        let p = with_snapshot[i];
        node.execute(params![p.report.node, p.report.interval_end_ms, p.snapshot])?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) fn node_reports(&self) -> Result<Vec<(jazari_wire::Report, i64)>> {
        let rows = self.query("SELECT last_report, first_seen_ms FROM nodes", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        Ok(rows.into_iter().filter_map(|(t, first)| serde_json::from_str(&t).ok().map(|r| (r, first))).collect())
    }
}
