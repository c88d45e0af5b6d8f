//! The ingest transaction: load what the store holds for the group's nodes
//! and instances, [`plan`] what the group adds, write it all, commit.

use super::SqliteStore;
use super::ledger::{add_amounts, add_amounts_sql};
use crate::accounting::GpuCharge;
use crate::store::plan::{Held, Mode, Plan, plan};
use crate::store::seen::Seen;
use crate::store::shared::{decode_last, hour_peaks, parse_charged, settle_batch};
use crate::store::{Applied, DEDUP_HORIZON_MS, Prepared, Result, Settled, StoreError};
use jazari_wire::Report;
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::{BTreeSet, HashMap};

impl SqliteStore {
    pub(super) fn apply_batches(&mut self, batches: &[Vec<Prepared>], now_ms: i64) -> Result<Vec<Applied>> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let mut held = load(&tx, batches).map_err(err)?;
        let p = plan(batches, &mut held, now_ms - DEDUP_HORIZON_MS, Mode::Ingest);
        if p.sealed_ms > 0 {
            tracing::warn!(
                sealed_s = p.sealed_ms / 1000,
                "a node has more gaps than the charged-time record keeps; the smallest were sealed"
            );
        }
        write(&tx, &p, &held).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(p.applied)
    }

    pub(super) fn settle_pending(
        &mut self,
        until_ms: i64,
        now_ms: i64,
        charge: &mut dyn FnMut(&Report) -> Vec<GpuCharge>,
    ) -> Result<Settled> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let reports: Vec<Report> = {
            let mut st =
                tx.prepare_cached("SELECT report FROM pending WHERE end_ms <= ?1 ORDER BY end_ms").map_err(err)?;
            let rows = st.query_map([until_ms], |r| r.get::<_, String>(0)).map_err(err)?;
            let mut out = vec![];
            for text in rows {
                match serde_json::from_str::<Report>(&text.map_err(err)?) {
                    Ok(r) => out.push(r),
                    Err(e) => tracing::error!("a pending report does not parse ({e}); it is dropped"),
                }
            }
            out
        };
        if reports.is_empty() {
            return Ok(Settled::default());
        }
        let batch = settle_batch(reports, charge);
        let batches = [batch];
        let mut held = load(&tx, &batches).map_err(err)?;
        let p = plan(&batches, &mut held, now_ms - DEDUP_HORIZON_MS, Mode::Settle);
        write(&tx, &p, &held).map_err(err)?;
        let mut done =
            tx.prepare_cached("DELETE FROM pending WHERE node = ?1 AND instance = ?2 AND seq = ?3").map_err(err)?;
        for x in &batches[0] {
            let r = &x.report;
            done.execute(params![r.node, r.instance, r.seq as i64]).map_err(err)?;
        }
        drop(done);
        tx.commit().map_err(err)?;
        let overlaps = p.applied.into_iter().flat_map(|a| a.overlaps).collect();
        Ok(Settled { charged: batches[0].len(), overlaps })
    }
}

/// What the store holds for the nodes and instances of the group.
fn load(tx: &Transaction, batches: &[Vec<Prepared>]) -> rusqlite::Result<Held> {
    let mut held = Held::default();
    let mut seen_get = tx.prepare_cached("SELECT ranges, last_ms FROM delivered WHERE node = ?1 AND instance = ?2")?;
    let mut charged_get = tx.prepare_cached("SELECT sets FROM charged WHERE node = ?1")?;
    let reports = batches.iter().flatten().map(|p| &p.report);
    let keys: BTreeSet<(&str, &str)> = reports.map(|r| (r.node.as_str(), r.instance.as_str())).collect();
    for (node, instance) in &keys {
        let row: Option<(String, i64)> =
            seen_get.query_row(params![node, instance], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some((ranges, last_ms)) = row {
            held.seen.insert((node.to_string(), instance.to_string()), Seen::parse(&ranges, last_ms));
        }
    }
    let nodes: BTreeSet<&str> = keys.iter().map(|k| k.0).collect();
    for node in nodes {
        let sets: Option<String> = charged_get.query_row([node], |r| r.get(0)).optional()?;
        if let Some(text) = sets {
            let parsed = parse_charged(node, &text);
            held.charged.insert(node.to_string(), parsed);
        }
    }
    Ok(held)
}

fn write(tx: &Transaction, p: &Plan, held: &Held) -> rusqlite::Result<()> {
    let mut seen_put =
        tx.prepare_cached("INSERT OR REPLACE INTO delivered(node, instance, ranges, last_ms) VALUES(?1, ?2, ?3, ?4)")?;
    for key in &held.changed_seen {
        let s = &held.seen[key];
        seen_put.execute(params![key.0, key.1, s.to_text(), s.last_ms])?;
    }
    let mut charged_put =
        tx.prepare_cached("INSERT OR REPLACE INTO charged(node, sets, first_ms, last_ms) VALUES(?1, ?2, ?3, ?4)")?;
    for node in &held.changed_charged {
        let c = &held.charged[node];
        let (first, last) = match (c.node.intervals().first(), c.node.intervals().last()) {
            (Some(f), Some(l)) => (f.0, l.1),
            _ => (0, 0),
        };
        charged_put.execute(params![node, serde_json::to_string(c).expect("sets serialise"), first, last])?;
    }
    let mut ledger =
        tx.prepare_cached(&add_amounts_sql("ledger", &["hour", "institute", "account", "user", "job", "node", "gpu"]))?;
    for ((h, k), a) in &p.ledger {
        add_amounts(&mut ledger, &[h, &k.institute, &k.account, &k.user, &k.job, &k.node, &k.gpu], a)?;
    }
    let mut day = tx.prepare_cached(&add_amounts_sql("ledger_day", &["day", "institute", "account", "user", "job"]))?;
    for ((d, i, acc, u, j), a) in &p.days {
        add_amounts(&mut day, &[d, i, acc, u, j], a)?;
    }
    let mut hour = tx.prepare_cached(&add_amounts_sql("ledger_hour", &["hour", "institute"]))?;
    for ((h, i), a) in &p.hours {
        add_amounts(&mut hour, &[h, i], a)?;
    }
    write_peaks(tx, p)?;
    write_coverage(tx, p)?;
    let mut pending = tx.prepare_cached(
        "INSERT OR REPLACE INTO pending(node, instance, seq, end_ms, report) VALUES(?1, ?2, ?3, ?4, ?5)",
    )?;
    for x in &p.pending {
        let r = &x.report;
        let text = serde_json::to_string(r).expect("reports serialise");
        pending.execute(params![r.node, r.instance, r.seq as i64, r.interval_end_ms, text])?;
    }
    let mut history = tx.prepare_cached("INSERT OR REPLACE INTO history_raw(node, ts_ms, gpus) VALUES(?1, ?2, ?3)")?;
    for x in &p.accepted {
        history.execute(params![x.report.node, x.report.interval_end_ms, x.history])?;
    }
    let mut node = tx.prepare_cached(
        "INSERT INTO nodes(node, first_seen_ms, last_seen_ms, last_report) VALUES(?1, ?2, ?2, ?3)
         ON CONFLICT(node) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,
           last_report = excluded.last_report WHERE excluded.last_seen_ms >= nodes.last_seen_ms",
    )?;
    for x in &p.newest {
        node.execute(params![x.report.node, x.report.interval_end_ms, x.snapshot])?;
    }
    Ok(())
}

/// Minutes, then each hour's peak: the most GPUs held (or busy) at once, as
/// the highest minute mean; minute totals only grow, so the peak is a running maximum.
fn write_peaks(tx: &Transaction, p: &Plan) -> rusqlite::Result<()> {
    let mut minute = tx.prepare_cached(
        "INSERT INTO ledger_minute(minute, institute, held_s, busy_s) VALUES(?1, ?2, ?3, ?4)
         ON CONFLICT(minute, institute) DO UPDATE SET held_s = held_s + excluded.held_s, busy_s = busy_s + excluded.busy_s
         RETURNING held_s, busy_s",
    )?;
    let mut totals = Vec::with_capacity(p.minutes.len());
    for ((m, i), (held, busy)) in &p.minutes {
        let (h, b): (f64, f64) = minute.query_row(params![m, i, held, busy], |r| Ok((r.get(0)?, r.get(1)?)))?;
        totals.push((*m, *i, h, b));
    }
    let mut peak = tx.prepare_cached(
        "UPDATE ledger_hour SET peak_held_gpus = max(peak_held_gpus, ?3), peak_busy_gpus = max(peak_busy_gpus, ?4)
         WHERE hour = ?1 AND institute = ?2",
    )?;
    for (h, i, held, busy) in hour_peaks(totals) {
        peak.execute(params![h, i, held, busy])?;
    }
    Ok(())
}

/// Coverage per hour and per day: only time no report covered before.
fn write_coverage(tx: &Transaction, p: &Plan) -> rusqlite::Result<()> {
    let mut coverage = tx.prepare_cached(
        "INSERT INTO coverage(hour, node, covered_s, reports, first_ms, last_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(hour, node) DO UPDATE SET covered_s = covered_s + excluded.covered_s,
           reports = reports + excluded.reports, first_ms = min(first_ms, excluded.first_ms),
           last_ms = max(last_ms, excluded.last_ms)",
    )?;
    let mut cov_day: HashMap<(i64, &str), f64> = HashMap::new();
    for ((hour, node), c) in &p.coverage {
        // An hour with only a report's end in it (no new time) keeps its bounds unknown: the hour's own.
        let (first, last) =
            if c.first_ms <= c.last_ms { (c.first_ms, c.last_ms) } else { (hour * 1000 + 3_600_000, hour * 1000) };
        coverage.execute(params![hour, node, c.seconds, c.reports, first, last])?;
        *cov_day.entry((hour.div_euclid(86400) * 86400, node)).or_default() += c.seconds;
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

impl SqliteStore {
    pub(super) fn node_reports(&self, limits: jazari_wire::DecodeLimits) -> Result<Vec<(jazari_wire::Report, i64)>> {
        let rows = self.query("SELECT node, last_report, first_seen_ms FROM nodes", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(node, text, first)| Some((decode_last(&node, &text, limits)?, first)))
            .collect())
    }
}
