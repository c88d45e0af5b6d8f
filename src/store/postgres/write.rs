//! The ingest and settle transactions: lock the group's nodes, load what the
//! store holds for them, [`plan`] what the group adds, write it, commit.

use super::{LOCK_CLASS, Params, PgStore, col};
use crate::accounting::{Amounts, GpuCharge};
use crate::store::plan::{Held, Mode, Plan, plan};
use crate::store::seen::Seen;
use crate::store::shared::{AMOUNTS, amount_values, hour_peaks, parse_charged, settle_batch};
use crate::store::{Applied, DEDUP_HORIZON_MS, Prepared, Result, Settled};
use jazari_wire::Report;
use postgres::Transaction;
use std::collections::BTreeSet;

type PgResult<T> = std::result::Result<T, postgres::Error>;

impl PgStore {
    pub(super) fn apply_batches(&self, batches: &[Vec<Prepared>], now_ms: i64) -> Result<Vec<Applied>> {
        self.transaction(|tx| {
            let mut held = load(tx, batches)?;
            let p = plan(batches, &mut held, now_ms - DEDUP_HORIZON_MS, Mode::Ingest);
            if p.sealed_ms > 0 {
                tracing::warn!(
                    sealed_s = p.sealed_ms / 1000,
                    "a node has more gaps than the charged-time record keeps; the smallest were sealed"
                );
            }
            write(tx, &p, &held)?;
            Ok(p.applied)
        })
    }

    pub(super) fn settle_pending(
        &self,
        until_ms: i64,
        now_ms: i64,
        charge: &mut dyn FnMut(&Report) -> Vec<GpuCharge>,
    ) -> Result<Settled> {
        self.transaction(|tx| {
            // Rows another collector is settling are skipped, not waited for.
            let rows = tx.query(
                "SELECT report FROM pending WHERE end_ms <= $1 ORDER BY end_ms FOR UPDATE SKIP LOCKED",
                &[&until_ms],
            )?;
            let mut reports = Vec::with_capacity(rows.len());
            for r in rows {
                match serde_json::from_str::<Report>(r.get(0)) {
                    Ok(r) => reports.push(r),
                    Err(e) => tracing::error!("a pending report does not parse ({e}); it is dropped"),
                }
            }
            if reports.is_empty() {
                return Ok(Settled::default());
            }
            let batch = settle_batch(reports, charge);
            let batches = [batch];
            let mut held = load(tx, &batches)?;
            let p = plan(&batches, &mut held, now_ms - DEDUP_HORIZON_MS, Mode::Settle);
            write(tx, &p, &held)?;
            let reports = batches[0].iter().map(|x| &x.report);
            let (nodes, (instances, seqs)): (Vec<&str>, (Vec<&str>, Vec<i64>)) =
                reports.map(|r| (r.node.as_str(), (r.instance.as_str(), r.seq as i64))).unzip();
            tx.execute(
                "DELETE FROM pending p USING UNNEST($1::text[], $2::text[], $3::bigint[]) AS d(node, instance, seq)
                 WHERE p.node = d.node AND p.instance = d.instance AND p.seq = d.seq",
                &[&nodes, &instances, &seqs],
            )?;
            let overlaps = p.applied.into_iter().flat_map(|a| a.overlaps).collect();
            Ok(Settled { charged: batches[0].len(), overlaps })
        })
    }
}

/// Locks the group's nodes for this transaction (every collector takes them
/// in the same order), then loads what the store holds for them.
fn load(tx: &mut Transaction, batches: &[Vec<Prepared>]) -> PgResult<Held> {
    let reports = batches.iter().flatten().map(|p| &p.report);
    let keys: BTreeSet<(&str, &str)> = reports.map(|r| (r.node.as_str(), r.instance.as_str())).collect();
    let nodes: Vec<&str> = keys.iter().map(|k| k.0).collect::<BTreeSet<_>>().into_iter().collect();
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, k) FROM (SELECT DISTINCT hashtext(n) AS k FROM UNNEST($2::text[]) n ORDER BY k) s",
        &[&LOCK_CLASS, &nodes],
    )?;
    let (kn, ki): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
    let mut held = Held::default();
    for r in tx.query(
        "SELECT d.node, d.instance, d.ranges, d.last_ms FROM delivered d
         JOIN UNNEST($1::text[], $2::text[]) AS k(node, instance) ON d.node = k.node AND d.instance = k.instance",
        &[&kn, &ki],
    )? {
        held.seen.insert((r.get(0), r.get(1)), Seen::parse(r.get(2), r.get(3)));
    }
    for r in tx.query("SELECT node, sets FROM charged WHERE node = ANY($1)", &[&nodes])? {
        let node: String = r.get(0);
        let parsed = parse_charged(&node, r.get(1));
        held.charged.insert(node, parsed);
    }
    Ok(held)
}

/// Column arrays of amounts, in [`AMOUNTS`] order.
#[derive(Default)]
struct AmountColumns([Vec<f64>; 9]);

impl AmountColumns {
    fn push(&mut self, a: &Amounts) {
        for (c, v) in self.0.iter_mut().zip(amount_values(a)) {
            c.push(v);
        }
    }
}

/// Adds amounts to the rows with these keys (`keys`: column and array type),
/// creating them if needed, in one statement.
fn add_amounts(
    tx: &mut Transaction,
    table: &str,
    keys: &[(&str, &str)],
    key_params: Params,
    amounts: &AmountColumns,
) -> PgResult<()> {
    let cols: Vec<&str> = keys.iter().map(|k| col(k.0)).chain(AMOUNTS).collect();
    let types: Vec<&str> = keys.iter().map(|k| k.1).chain(AMOUNTS.iter().map(|_| "float8[]")).collect();
    let arrays: Vec<String> = types.iter().enumerate().map(|(i, t)| format!("${}::{t}", i + 1)).collect();
    let sets: Vec<String> = AMOUNTS.iter().map(|a| format!("{a} = {table}.{a} + excluded.{a}")).collect();
    let key_cols: Vec<&str> = keys.iter().map(|k| col(k.0)).collect();
    let sql = format!(
        "INSERT INTO {table}({}) SELECT * FROM UNNEST({}) ON CONFLICT({}) DO UPDATE SET {}",
        cols.join(", "),
        arrays.join(", "),
        key_cols.join(", "),
        sets.join(", ")
    );
    let mut params = key_params;
    params.extend(amounts.0.iter().map(|c| c as &(dyn postgres::types::ToSql + Sync)));
    tx.execute(sql.as_str(), &params).map(drop)
}

fn write(tx: &mut Transaction, p: &Plan, held: &Held) -> PgResult<()> {
    write_records(tx, held)?;
    write_ledger(tx, p)?;
    write_peaks(tx, p)?;
    write_coverage(tx, p)?;
    // Reports waiting for the scheduler, raw history, each node's newest report.
    let mut pending: Vec<&Report> = p.pending.iter().map(|x| &x.report).collect();
    pending.sort_by(|a, b| (&a.node, &a.instance, a.seq).cmp(&(&b.node, &b.instance, b.seq)));
    pending.dedup_by(|a, b| (&a.node, &a.instance, a.seq) == (&b.node, &b.instance, b.seq));
    let texts: Vec<String> = pending.iter().map(|r| serde_json::to_string(r).expect("reports serialise")).collect();
    let (nodes, instances, seqs, ends): (Vec<&str>, Vec<&str>, Vec<i64>, Vec<i64>) =
        unzip4(pending.iter().map(|r| (r.node.as_str(), r.instance.as_str(), r.seq as i64, r.interval_end_ms)));
    tx.execute(
        "INSERT INTO pending(node, instance, seq, end_ms, report)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[])
         ON CONFLICT(node, instance, seq) DO UPDATE SET end_ms = excluded.end_ms, report = excluded.report",
        &[&nodes, &instances, &seqs, &ends, &texts],
    )?;
    let mut raw: Vec<(&str, i64, &str)> =
        p.accepted.iter().map(|x| (x.report.node.as_str(), x.report.interval_end_ms, x.history.as_str())).collect();
    raw.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    raw.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));
    let (nodes, ts, gpus): (Vec<&str>, Vec<i64>, Vec<&str>) = unzip3(raw);
    tx.execute(
        "INSERT INTO history_raw(node, ts_ms, gpus) SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[])
         ON CONFLICT(node, ts_ms) DO UPDATE SET gpus = excluded.gpus",
        &[&nodes, &ts, &gpus],
    )?;
    // The newest of each node only (one row may be written once per statement).
    let mut newest: Vec<(&str, i64, &str)> = p
        .newest
        .iter()
        .filter_map(|x| Some((x.report.node.as_str(), x.report.interval_end_ms, x.snapshot.as_deref()?)))
        .collect();
    newest.sort_by(|a, b| (a.0, std::cmp::Reverse(a.1)).cmp(&(b.0, std::cmp::Reverse(b.1))));
    newest.dedup_by(|a, b| a.0 == b.0);
    let (nodes, ts, reports): (Vec<&str>, Vec<i64>, Vec<&str>) = unzip3(newest);
    tx.execute(
        "INSERT INTO nodes(node, first_seen_ms, last_seen_ms, last_report, stored_ms)
         SELECT n, t, t, r, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
         FROM UNNEST($1::text[], $2::bigint[], $3::text[]) AS u(n, t, r)
         ON CONFLICT(node) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, last_report = excluded.last_report,
           stored_ms = excluded.stored_ms
         WHERE excluded.last_seen_ms >= nodes.last_seen_ms",
        &[&nodes, &ts, &reports],
    )?;
    Ok(())
}

/// The dedup record and the charged-time record of the nodes that changed.
fn write_records(tx: &mut Transaction, held: &Held) -> PgResult<()> {
    let mut keys: Vec<&(String, String)> = held.changed_seen.iter().collect();
    keys.sort();
    let texts: Vec<String> = keys.iter().map(|k| held.seen[*k].to_text()).collect();
    let lasts: Vec<i64> = keys.iter().map(|k| held.seen[*k].last_ms).collect();
    let (nodes, instances): (Vec<&str>, Vec<&str>) = keys.iter().map(|k| (k.0.as_str(), k.1.as_str())).unzip();
    tx.execute(
        "INSERT INTO delivered(node, instance, ranges, last_ms)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])
         ON CONFLICT(node, instance) DO UPDATE SET ranges = excluded.ranges, last_ms = excluded.last_ms",
        &[&nodes, &instances, &texts, &lasts],
    )?;
    let mut nodes: Vec<&String> = held.changed_charged.iter().collect();
    nodes.sort();
    let mut sets = Vec::with_capacity(nodes.len());
    let (mut firsts, mut lasts) = (Vec::with_capacity(nodes.len()), Vec::with_capacity(nodes.len()));
    for node in &nodes {
        let c = &held.charged[*node];
        let (first, last) = match (c.node.intervals().first(), c.node.intervals().last()) {
            (Some(f), Some(l)) => (f.0, l.1),
            _ => (0, 0),
        };
        sets.push(serde_json::to_string(c).expect("sets serialise"));
        firsts.push(first);
        lasts.push(last);
    }
    tx.execute(
        "INSERT INTO charged(node, sets, first_ms, last_ms)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])
         ON CONFLICT(node) DO UPDATE SET sets = excluded.sets, first_ms = excluded.first_ms, last_ms = excluded.last_ms",
        &[&nodes, &sets, &firsts, &lasts],
    )?;
    Ok(())
}

/// The fine ledger and its daily and hourly roll-ups.
fn write_ledger(tx: &mut Transaction, p: &Plan) -> PgResult<()> {
    let mut rows: Vec<_> = p.ledger.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let mut amounts = AmountColumns::default();
    let mut k: [Vec<&str>; 6] = Default::default();
    let mut hours = Vec::with_capacity(rows.len());
    for ((h, key), a) in rows {
        hours.push(*h);
        for (c, v) in k.iter_mut().zip([&key.institute, &key.account, &key.user, &key.job, &key.node, &key.gpu]) {
            c.push(v.as_str());
        }
        amounts.push(a);
    }
    let t = "text[]";
    let keys =
        [("hour", "bigint[]"), ("institute", t), ("account", t), ("user", t), ("job", t), ("node", t), ("gpu", t)];
    let params: Params = vec![&hours, &k[0], &k[1], &k[2], &k[3], &k[4], &k[5]];
    add_amounts(tx, "ledger", &keys, params, &amounts)?;

    let mut rows: Vec<_> = p.days.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let mut amounts = AmountColumns::default();
    let mut k: [Vec<&str>; 4] = Default::default();
    let mut days = Vec::with_capacity(rows.len());
    for ((d, i, acc, u, j), a) in rows {
        days.push(*d);
        for (c, v) in k.iter_mut().zip([i, acc, u, j]) {
            c.push(*v);
        }
        amounts.push(a);
    }
    let keys = [("day", "bigint[]"), ("institute", t), ("account", t), ("user", t), ("job", t)];
    add_amounts(tx, "ledger_day", &keys, vec![&days, &k[0], &k[1], &k[2], &k[3]], &amounts)?;

    let mut rows: Vec<_> = p.hours.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let mut amounts = AmountColumns::default();
    let (mut hours, mut institutes) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for ((h, i), a) in rows {
        hours.push(*h);
        institutes.push(*i);
        amounts.push(a);
    }
    add_amounts(tx, "ledger_hour", &[("hour", "bigint[]"), ("institute", t)], vec![&hours, &institutes], &amounts)
}

/// Minutes, then each hour's peak (the highest minute mean; minute totals only grow).
fn write_peaks(tx: &mut Transaction, p: &Plan) -> PgResult<()> {
    let mut rows: Vec<_> = p.minutes.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let (minutes, institutes, held, busy): (Vec<i64>, Vec<&str>, Vec<f64>, Vec<f64>) =
        unzip4(rows.iter().map(|((m, i), (h, b))| (*m, *i, *h, *b)));
    let totals = tx.query(
        "INSERT INTO ledger_minute(minute, institute, held_s, busy_s)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::float8[], $4::float8[])
         ON CONFLICT(minute, institute) DO UPDATE
           SET held_s = ledger_minute.held_s + excluded.held_s, busy_s = ledger_minute.busy_s + excluded.busy_s
         RETURNING minute, institute, held_s, busy_s",
        &[&minutes, &institutes, &held, &busy],
    )?;
    let totals: Vec<(i64, String, f64, f64)> =
        totals.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    let peaks = hour_peaks(totals.iter().map(|(m, i, h, b)| (*m, i.as_str(), *h, *b)));
    let (hours, institutes, held, busy): (Vec<i64>, Vec<&str>, Vec<f64>, Vec<f64>) = unzip4(peaks);
    tx.execute(
        "UPDATE ledger_hour h SET peak_held_gpus = GREATEST(h.peak_held_gpus, v.held),
           peak_busy_gpus = GREATEST(h.peak_busy_gpus, v.busy)
         FROM UNNEST($1::bigint[], $2::text[], $3::float8[], $4::float8[]) AS v(hour, institute, held, busy)
         WHERE h.hour = v.hour AND h.institute = v.institute",
        &[&hours, &institutes, &held, &busy],
    )?;
    Ok(())
}

/// Coverage per hour and per day: only time no report covered before.
fn write_coverage(tx: &mut Transaction, p: &Plan) -> PgResult<()> {
    let mut rows: Vec<_> = p.coverage.iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let (mut hours, mut nodes, mut secs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut reports, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_day: std::collections::BTreeMap<(i64, &str), f64> = Default::default();
    for ((hour, node), c) in rows {
        // An hour with only a report's end in it (no new time) keeps its bounds unknown: the hour's own.
        let (first, last) =
            if c.first_ms <= c.last_ms { (c.first_ms, c.last_ms) } else { (hour * 1000 + 3_600_000, hour * 1000) };
        hours.push(*hour);
        nodes.push(*node);
        secs.push(c.seconds);
        reports.push(c.reports);
        firsts.push(first);
        lasts.push(last);
        *per_day.entry((hour.div_euclid(86400) * 86400, node)).or_default() += c.seconds;
    }
    tx.execute(
        "INSERT INTO coverage(hour, node, covered_s, reports, first_ms, last_ms)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::float8[], $4::bigint[], $5::bigint[], $6::bigint[])
         ON CONFLICT(hour, node) DO UPDATE SET covered_s = coverage.covered_s + excluded.covered_s,
           reports = coverage.reports + excluded.reports, first_ms = LEAST(coverage.first_ms, excluded.first_ms),
           last_ms = GREATEST(coverage.last_ms, excluded.last_ms)",
        &[&hours, &nodes, &secs, &reports, &firsts, &lasts],
    )?;
    let (days, nodes, secs): (Vec<i64>, Vec<&str>, Vec<f64>) = unzip3(per_day.into_iter().map(|((d, n), s)| (d, n, s)));
    tx.execute(
        "INSERT INTO coverage_day(day, node, covered_s) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::float8[])
         ON CONFLICT(day, node) DO UPDATE SET covered_s = coverage_day.covered_s + excluded.covered_s",
        &[&days, &nodes, &secs],
    )?;
    Ok(())
}

fn unzip3<A, B, C>(it: impl IntoIterator<Item = (A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (a, b, c) in it {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
    }
    out
}

fn unzip4<A, B, C, D>(it: impl IntoIterator<Item = (A, B, C, D)>) -> (Vec<A>, Vec<B>, Vec<C>, Vec<D>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (a, b, c, d) in it {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
    }
    out
}
