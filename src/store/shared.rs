//! What both backends compute the same way once rows are read: the amount
//! columns, coverage of whole days from the daily roll-up, cluster series
//! from history points, minute means of raw history, hourly peaks from
//! minute totals, when the data begins.

use super::plan::hour_of_minute;
use super::prepared::RawGpu;
use super::{HistoryPoint, SeriesPoint};
use crate::accounting::Amounts;
use crate::report::coverage::{CoverageInput, NodeSpan, ShortHour};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The amount columns every ledger table has, in this order.
pub const AMOUNTS: [&str; 9] = [
    "capacity_s",
    "allocated_s",
    "busy_s",
    "idle_allocated_s",
    "unscheduled_s",
    "energy_j",
    "gpm_s",
    "sm_active_s",
    "tensor_active_s",
];

/// The amounts in [`AMOUNTS`] order.
pub fn amount_values(a: &Amounts) -> [f64; 9] {
    [
        a.capacity_s,
        a.allocated_s,
        a.busy_s,
        a.idle_allocated_s,
        a.unscheduled_s,
        a.energy_j,
        a.gpm_s,
        a.sm_active_s,
        a.tensor_active_s,
    ]
}

/// Amounts from values in [`AMOUNTS`] order.
pub fn amounts_from(v: [f64; 9]) -> Amounts {
    Amounts {
        capacity_s: v[0],
        allocated_s: v[1],
        busy_s: v[2],
        idle_allocated_s: v[3],
        unscheduled_s: v[4],
        energy_j: v[5],
        gpm_s: v[6],
        sm_active_s: v[7],
        tensor_active_s: v[8],
    }
}

/// One hour of a node's coverage: hour (s), seconds covered, first and last ms.
pub type HourCoverage = (i64, f64, i64, i64);

/// Coverage of whole days for reports, from the daily roll-up (`days`: node,
/// day, seconds covered, ordered by node and day), reading hour by hour
/// (`hours_of(node, from_s, to_s)`) only the first and last day of each node
/// and the days that are not fully covered.
pub fn coverage_of_days<E>(
    days: &[(String, i64, f64)],
    mut hours_of: impl FnMut(&str, i64, i64) -> Result<Vec<HourCoverage>, E>,
) -> Result<CoverageInput, E> {
    let mut out = CoverageInput::default();
    let mut i = 0;
    while i < days.len() {
        let node = days[i].0.clone();
        let mut j = i;
        while j < days.len() && days[j].0 == node {
            j += 1;
        }
        let node_days = &days[i..j];
        // Present hours as runs [start, end), and the hour-level detail where needed.
        let mut runs: Vec<(i64, i64)> = Vec::new();
        let mut got = 0.0;
        // When its reported time begins and ends (ms), from its first and last hour.
        let (mut first_ms, mut last_ms) = (None, 0);
        for (k, (_, day, covered)) in node_days.iter().enumerate() {
            let edge = k == 0 || k + 1 == node_days.len();
            if *covered >= 86_040.0 && !edge {
                got += covered.min(86_400.0);
                push_run(&mut runs, *day, day + 86_400);
                continue;
            }
            for (h, c, first, last) in hours_of(&node, *day, day + 86_400)? {
                got += c.min(3600.0);
                if c < 3240.0 {
                    out.short.push(ShortHour { node: node.clone(), hour: h, covered_s: c });
                }
                first_ms.get_or_insert(first);
                last_ms = last;
                push_run(&mut runs, h, h + 3600);
            }
        }
        if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
            out.spans.push(NodeSpan {
                node: node.clone(),
                first_ms: first_ms.unwrap_or(first.0 * 1000),
                last_ms: if last_ms > 0 { last_ms } else { last.1 * 1000 },
                received_s: got,
            });
            for w in runs.windows(2) {
                out.holes.push((node.clone(), w[0].1 - 3600, w[1].0));
            }
        }
        i = j;
    }
    Ok(out)
}

/// Adds [start, end) to sorted runs, merging with the last when they touch.
fn push_run(runs: &mut Vec<(i64, i64)>, start: i64, end: i64) {
    match runs.last_mut() {
        Some(last) if last.1 >= start => last.1 = last.1.max(end),
        _ => runs.push((start, end)),
    }
}

/// Calls `f` for each GPU of a raw history row (all GPUs of one report);
/// a row that does not parse gives nothing.
pub fn raw_points(node: &str, ts_ms: i64, gpus: &str, mut f: impl FnMut(HistoryPoint)) {
    let Ok(gpus) = serde_json::from_str::<Vec<RawGpu>>(gpus) else { return };
    for g in gpus {
        f(HistoryPoint {
            node: node.to_string(),
            gpu: g.0,
            ts_ms,
            util: g.1,
            mem_used: g.2,
            power_w: g.3,
            temp: g.4,
            allocated: g.5,
        });
    }
}

/// Cluster-wide series in buckets of `bucket_ms`: mean utilisation, power and allocated GPUs.
#[derive(Default)]
pub struct SeriesAcc {
    buckets: BTreeMap<i64, Bucket>,
}

#[derive(Default)]
struct Bucket {
    n: f64,
    util: f64,
    util_n: f64,
    power: f64,
    allocated: f64,
    gpus: HashSet<(String, String)>,
}

impl SeriesAcc {
    pub fn add(&mut self, p: HistoryPoint, bucket_ms: i64) {
        let a = self.buckets.entry(p.ts_ms.div_euclid(bucket_ms) * bucket_ms).or_default();
        a.n += 1.0;
        if let Some(u) = p.util {
            a.util += u;
            a.util_n += 1.0;
        }
        a.power += p.power_w.unwrap_or(0.0);
        a.allocated += p.allocated.unwrap_or(0.0);
        a.gpus.insert((p.node, p.gpu));
    }

    pub fn finish(self) -> Vec<SeriesPoint> {
        self.buckets
            .into_iter()
            .map(|(ts_ms, a)| {
                let gpus = a.gpus.len() as f64;
                SeriesPoint {
                    ts_ms,
                    util_pct: (a.util_n > 0.0).then(|| a.util / a.util_n),
                    power_w: a.power / a.n * gpus,
                    allocated_gpus: a.allocated / a.n * gpus,
                    gpus: gpus as u64,
                }
            })
            .collect()
    }
}

/// Sums per (node, gpu, minute) of raw history: per value, its sum and count.
#[derive(Default)]
pub struct MinuteAcc {
    pub sums: HashMap<(String, String, i64), [(f64, u32); 5]>,
}

impl MinuteAcc {
    pub fn add_row(&mut self, node: &str, ts_ms: i64, gpus: &str) {
        raw_points(node, ts_ms, gpus, |p| {
            let e = self.sums.entry((p.node, p.gpu, ts_ms.div_euclid(60_000) * 60_000)).or_default();
            for (slot, v) in e.iter_mut().zip([p.util, p.mem_used, p.power_w, p.temp, p.allocated]) {
                if let Some(v) = v {
                    slot.0 += v;
                    slot.1 += 1;
                }
            }
        });
    }

    /// (node, gpu, minute, [util, mem_used, power_w, temp, allocated] means), sorted.
    pub fn means(self) -> Vec<(String, String, i64, [Option<f64>; 5])> {
        let mean = |s: (f64, u32)| (s.1 > 0).then(|| s.0 / s.1 as f64);
        let mut out: Vec<_> = self.sums.into_iter().map(|((n, g, t), v)| (n, g, t, v.map(mean))).collect();
        out.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
        out
    }
}

/// Each hour's peaks (GPUs held, GPUs busy) from minute totals after this
/// group was added: the highest minute mean of the hour.
pub fn hour_peaks<'a>(minutes: impl IntoIterator<Item = (i64, &'a str, f64, f64)>) -> Vec<(i64, &'a str, f64, f64)> {
    let mut peaks: HashMap<(i64, &str), (f64, f64)> = HashMap::new();
    for (m, i, held, busy) in minutes {
        let e = peaks.entry((hour_of_minute(m), i)).or_default();
        e.0 = e.0.max(held / 60.0);
        e.1 = e.1.max(busy / 60.0);
    }
    let mut out: Vec<_> = peaks.into_iter().map(|((h, i), (a, b))| (h, i, a, b)).collect();
    out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    out
}

/// When the data begins: the first charged time, or the ledger's first hour
/// when the charged record was pruned (the ledger's hours are whole; the
/// charged record says when within the first one).
pub fn data_since(charged_ms: Option<i64>, first_hour_s: Option<i64>) -> Option<i64> {
    match (charged_ms, first_hour_s.map(|h| h * 1000)) {
        (Some(c), Some(h)) if h >= crate::time::hour_floor_ms(c) => Some(c),
        (_, Some(h)) => Some(h),
        (c, None) => c,
    }
}

/// A node's charged-time record as stored; one that does not parse is not
/// trusted to say what was charged and starts afresh (logged).
pub fn parse_charged(node: &str, text: &str) -> super::plan::NodeCharged {
    serde_json::from_str(text).unwrap_or_else(|e| {
        tracing::error!(node, "the charged-time record does not parse ({e}); starting it again");
        Default::default()
    })
}

/// A node's last report as stored, decoded under the ingest limits (a report
/// kept before the limits were lowered is not restored; logged).
pub fn decode_last(node: &str, text: &str, limits: jazari_wire::DecodeLimits) -> Option<jazari_wire::Report> {
    match jazari_wire::decode_with(text.as_bytes(), limits).map(|mut v| v.pop()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(node, "the node's last report is not restored to live state: {e}");
            None
        }
    }
}

/// Raw history points of one GPU (or all), at most `limit`, in time order;
/// `read` calls its argument for every point of the window.
pub fn raw_selection<E>(
    gpu: Option<&str>,
    limit: usize,
    read: impl FnOnce(&mut dyn FnMut(HistoryPoint)) -> Result<(), E>,
) -> Result<Vec<HistoryPoint>, E> {
    let mut out = Vec::new();
    read(&mut |p| {
        if gpu.is_none_or(|g| g == p.gpu) && out.len() < limit {
            out.push(p);
        }
    })?;
    out.sort_by(|a, b| (a.ts_ms, &a.node, &a.gpu).cmp(&(b.ts_ms, &b.node, &b.gpu)));
    Ok(out)
}

/// Pending reports to charge now, each with what it charges.
pub fn settle_batch(
    reports: Vec<jazari_wire::Report>,
    charge: &mut dyn FnMut(&jazari_wire::Report) -> Vec<crate::accounting::GpuCharge>,
) -> Vec<super::Prepared> {
    reports
        .into_iter()
        .map(|report| super::Prepared {
            charges: Some(charge(&report)),
            allocs: Default::default(),
            history: String::new(),
            snapshot: None,
            report,
        })
        .collect()
}
