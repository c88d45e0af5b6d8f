//! What a group of batches adds to the store, computed from what the store
//! already holds for their nodes: the one place where deduplication, time
//! coverage, the fine ledger and every roll-up are derived. Backends load
//! the state ([`Held`]), call [`plan`] and write the result in the same
//! transaction.
//!
//! Exactly-once in time: per node and per GPU the store keeps the time
//! already charged ([`IntervalSet`]); a report charges only the part of its
//! interval not yet charged, whatever its sequence number or agent instance.
//! The (node, instance, seq) record ([`Seen`]) is the fast path for resends.

use super::intervals::{IntervalSet, MAX_INTERVALS};
use super::seen::Seen;
use super::{Applied, Prepared};
use crate::accounting::{Amounts, LedgerKey, split_new_time};
use crate::time::{HOUR_MS, hour_bucket_s};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Time already charged on one node: the node itself (coverage) and each GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeCharged {
    #[serde(default)]
    pub node: IntervalSet,
    #[serde(default)]
    pub gpus: BTreeMap<String, IntervalSet>,
}

/// What the store holds for the nodes and instances of a group, and which of it changed.
#[derive(Debug, Default)]
pub struct Held {
    pub seen: HashMap<(String, String), Seen>,
    pub charged: HashMap<String, NodeCharged>,
    pub changed_seen: HashSet<(String, String)>,
    pub changed_charged: HashSet<String>,
}

/// Everything a group adds.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Per batch, in order.
    pub applied: Vec<Applied>,
    /// The fine ledger: (hour, key) → amounts.
    pub ledger: HashMap<(i64, &'a LedgerKey), Amounts>,
    /// Daily roll-up: (day, institute, account, user, job) → amounts.
    pub days: HashMap<(i64, &'a str, &'a str, &'a str, &'a str), Amounts>,
    /// Hourly roll-up per institute.
    pub hours: HashMap<(i64, &'a str), Amounts>,
    /// Per minute (UTC ms at its start) and institute: GPU-seconds held (allocated or unscheduled) and busy.
    pub minutes: HashMap<(i64, &'a str), (f64, f64)>,
    /// Per hour and node: new time covered.
    pub coverage: HashMap<(i64, &'a str), Covered>,
    /// Accepted reports (their raw history rows go in).
    pub accepted: Vec<&'a Prepared>,
    /// Accepted reports not charged yet (kept until the scheduler's view of their time is complete).
    pub pending: Vec<&'a Prepared>,
    /// The newest accepted report of each node carrying a snapshot.
    pub newest: Vec<&'a Prepared>,
    /// Milliseconds of gaps sealed to keep interval sets bounded.
    pub sealed_ms: i64,
}

/// New time a node covered in one hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Covered {
    pub seconds: f64,
    /// Reports whose interval ends in this hour.
    pub reports: i64,
    /// Earliest start and latest end of the new time in this hour (ms).
    pub first_ms: i64,
    pub last_ms: i64,
}

impl Default for Covered {
    fn default() -> Self {
        Covered { seconds: 0.0, reports: 0, first_ms: i64::MAX, last_ms: i64::MIN }
    }
}

/// What a group of reports is: new reports posted (deduplicated by their
/// sequence numbers, kept in history), or pending ones being charged now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ingest,
    Settle,
}

/// Plans a group. `forget_before_ms` is the deduplication horizon: older
/// charged time is forgotten (reports that old are refused at ingest).
pub fn plan<'a>(batches: &'a [Vec<Prepared>], held: &mut Held, forget_before_ms: i64, mode: Mode) -> Plan<'a> {
    let mut p = Plan::default();
    for batch in batches {
        let mut out = Applied::default();
        for (i, prep) in batch.iter().enumerate() {
            let r = &prep.report;
            if mode == Mode::Ingest {
                let key = (r.node.clone(), r.instance.clone());
                let seen = held.seen.entry(key.clone()).or_default();
                seen.last_ms = seen.last_ms.max(r.interval_end_ms);
                held.changed_seen.insert(key);
                if !seen.insert(r.seq as i64) {
                    out.outcome.duplicates += 1;
                    out.duplicates.push(i);
                    continue;
                }
                out.outcome.accepted += 1;
                p.accepted.push(prep);
            }
            // Not yet chargeable (the scheduler's view of its time is not complete): kept for later.
            let Some(charges) = &prep.charges else {
                p.pending.push(prep);
                continue;
            };
            let (start, end) = (r.interval_start_ms, r.interval_end_ms);
            let node = held.charged.entry(r.node.clone()).or_default();
            held.changed_charged.insert(r.node.clone());
            let mut overlap_ms = 0;
            // Coverage: the node's new time.
            let new = node.node.uncovered(start, end);
            overlap_ms += (end - start) - new.iter().map(|(a, b)| b - a).sum::<i64>();
            for &(a, b) in &new {
                node.node.insert(a, b);
            }
            for &(a, b) in &new {
                let mut t = a;
                while t < b {
                    let next = (crate::time::hour_floor_ms(t) + HOUR_MS).min(b);
                    let c = p.coverage.entry((hour_bucket_s(t), r.node.as_str())).or_default();
                    c.seconds += (next - t) as f64 / 1000.0;
                    c.first_ms = c.first_ms.min(t);
                    c.last_ms = c.last_ms.max(next);
                    t = next;
                }
            }
            // A report counts once, in the hour its interval ends.
            p.coverage.entry((hour_bucket_s(end - 1), r.node.as_str())).or_default().reports += 1;
            // Charges: each GPU's new time, part by part.
            for g in charges {
                let set = node.gpus.entry(g.gpu.clone()).or_default();
                let new = set.uncovered(start, end);
                overlap_ms += (end - start) - new.iter().map(|(a, b)| b - a).sum::<i64>();
                for &(a, b) in &new {
                    set.insert(a, b);
                }
                for part in &g.parts {
                    let mine = clip(&new, part.from_ms, part.to_ms);
                    let k = &part.key;
                    split_new_time(part.from_ms, part.to_ms, &mine, |h, f| {
                        p.ledger.entry((h, k)).or_default().add(&part.amounts.scaled(f));
                    });
                    if !k.institute.is_empty() {
                        add_minutes(&mut p.minutes, part.from_ms, part.to_ms, &mine, &k.institute, &part.amounts);
                    }
                }
            }
            if overlap_ms > 0 {
                out.outcome.overlapping += 1;
                out.overlaps.push((r.node.clone(), overlap_ms as f64 / 1000.0));
            }
        }
        p.applied.push(out);
    }
    for node in held.charged.values_mut() {
        for set in std::iter::once(&mut node.node).chain(node.gpus.values_mut()) {
            set.forget_before(forget_before_ms);
            p.sealed_ms += set.cap(MAX_INTERVALS);
        }
        node.gpus.retain(|_, s| !s.is_empty());
    }
    // Roll-ups, from the fine ledger only.
    for ((h, k), a) in &p.ledger {
        p.days.entry((h.div_euclid(86400) * 86400, &k.institute, &k.account, &k.user, &k.job)).or_default().add(a);
        p.hours.entry((*h, &k.institute)).or_default().add(a);
    }
    let with_snapshot: Vec<&Prepared> = p.accepted.iter().copied().filter(|x| x.snapshot.is_some()).collect();
    p.newest = jazari_wire::newest_per_node(with_snapshot.iter().map(|x| &x.report))
        .into_values()
        .map(|i| with_snapshot[i])
        .collect();
    p
}

/// The parts of `new` within [from, to).
fn clip(new: &[(i64, i64)], from: i64, to: i64) -> Vec<(i64, i64)> {
    new.iter().map(|&(a, b)| (a.max(from), b.min(to))).filter(|(a, b)| a < b).collect()
}

/// Adds the held and busy GPU-seconds of the new parts of [start, end) to their minutes.
fn add_minutes<'a>(
    minutes: &mut HashMap<(i64, &'a str), (f64, f64)>,
    start: i64,
    end: i64,
    new: &[(i64, i64)],
    institute: &'a str,
    a: &Amounts,
) {
    let total = (end - start) as f64;
    let (held, busy) = (a.allocated_s + a.unscheduled_s, a.busy_s);
    for &(x, y) in new {
        let mut t = x;
        while t < y {
            let m = t.div_euclid(60_000) * 60_000;
            let next = (m + 60_000).min(y);
            let f = (next - t) as f64 / total;
            let e = minutes.entry((m, institute)).or_default();
            e.0 += held * f;
            e.1 += busy * f;
            t = next;
        }
    }
}

/// The hour (UTC seconds) a minute (UTC ms) belongs to.
pub fn hour_of_minute(minute_ms: i64) -> i64 {
    minute_ms.div_euclid(HOUR_MS) * 3600
}
