//! Coverage: how much of the period each node reported, and its gaps.
//!
//! A node is expected from its first report in the period until the end of
//! the period or now, whichever is earlier; partial hours count in
//! proportion. Received time is what reports covered, each second once, so it
//! never exceeds the expected time.

use super::{Coverage, Gap, ReportPeriod};
use crate::time::{HOUR_MS, hour_floor_ms};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One node's coverage over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpan {
    pub node: String,
    /// Start of its first reported time in the period, and end of its last (ms).
    pub first_ms: i64,
    pub last_ms: i64,
    /// Seconds its reports covered.
    pub received_s: f64,
}

/// An hour with a report in it, covered less than 90 %.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortHour {
    pub node: String,
    /// Start of the hour, UTC seconds.
    pub hour: i64,
    pub covered_s: f64,
}

/// One hour of one node's coverage record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoveredHour {
    pub node: String,
    /// Start of the hour, UTC seconds.
    pub hour: i64,
    pub covered_s: f64,
    /// Reports whose interval ends in the hour.
    pub reports: i64,
    /// Earliest start and latest end of the time covered in the hour (ms).
    pub first_ms: i64,
    pub last_ms: i64,
}

/// What the coverage record says about a period, in the shape the store can
/// answer without sending every hour of every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageInput {
    pub spans: Vec<NodeSpan>,
    pub short: Vec<ShortHour>,
    /// Runs of hours with no report at all: (node, last hour before, next hour after), UTC seconds.
    pub holes: Vec<(String, i64, i64)>,
}

/// An hour is short below this share covered.
const SHORT: f64 = 0.9;

impl CoverageInput {
    /// From the coverage record hour by hour (tests, small periods).
    pub fn from_hours(rows: &[CoveredHour]) -> Self {
        let mut by: BTreeMap<&str, BTreeMap<i64, (f64, i64, i64)>> = BTreeMap::new();
        for r in rows {
            by.entry(&r.node).or_default().insert(r.hour, (r.covered_s, r.first_ms, r.last_ms));
        }
        let mut out = CoverageInput::default();
        for (n, hours) in by {
            let first = hours.values().next().expect("non-empty").1;
            let last = hours.values().next_back().expect("non-empty").2;
            out.spans.push(NodeSpan {
                node: n.to_string(),
                first_ms: first,
                last_ms: last,
                received_s: hours.values().map(|v| v.0.min(3600.0)).sum(),
            });
            let mut prev: Option<i64> = None;
            for (h, (c, _, _)) in &hours {
                if *c < SHORT * 3600.0 {
                    out.short.push(ShortHour { node: n.to_string(), hour: *h, covered_s: *c });
                }
                if let Some(p) = prev
                    && h - p > 3600
                {
                    out.holes.push((n.to_string(), p, *h));
                }
                prev = Some(*h);
            }
        }
        out
    }
}

/// Coverage of `period` until `now_ms`, of every node or only of `nodes`.
pub(crate) fn coverage(
    inp: &CoverageInput,
    period: &ReportPeriod,
    now_ms: i64,
    nodes: Option<&BTreeSet<String>>,
) -> Coverage {
    let end = (period.end_s * 1000).min(now_ms);
    let shown = |n: &str| nodes.is_none_or(|s| s.contains(n));
    let (mut expected_s, mut received_s) = (0.0, 0.0);
    // Per node: when it is expected from, and per hour (ms) the seconds missing and expected.
    let mut starts: BTreeMap<&str, i64> = BTreeMap::new();
    let mut missing: BTreeMap<&str, BTreeMap<i64, (f64, f64)>> = BTreeMap::new();
    let expected_in = |start: i64, h: i64| ((h + HOUR_MS).min(end) - h.max(start)).max(0) as f64 / 1000.0;
    for s in inp.spans.iter().filter(|s| shown(&s.node)) {
        let start = s.first_ms.max(period.start_s * 1000);
        if end <= start {
            continue;
        }
        starts.insert(&s.node, start);
        expected_s += (end - start) as f64 / 1000.0;
        received_s += s.received_s;
        // After the hour of its last report, every hour until the end is missing.
        let m = missing.entry(&s.node).or_default();
        let mut h = hour_floor_ms(s.last_ms - 1) + HOUR_MS;
        while h < end {
            let e = expected_in(start, h);
            m.insert(h, (e, e));
            h += HOUR_MS;
        }
    }
    for sh in inp.short.iter().filter(|s| shown(&s.node)) {
        let Some(&start) = starts.get(sh.node.as_str()) else { continue };
        let h = sh.hour * 1000;
        let e = expected_in(start, h);
        let miss = (e - sh.covered_s).max(0.0);
        if e > 0.0 && miss > (1.0 - SHORT) * e {
            missing.entry(&sh.node).or_default().insert(h, (miss, e));
        }
    }
    for (node, before, after) in inp.holes.iter().filter(|h| shown(&h.0)) {
        let Some(&start) = starts.get(node.as_str()) else { continue };
        let m = missing.entry(node).or_default();
        let mut h = (before + 3600) * 1000;
        while h < after * 1000 {
            let e = expected_in(start, h);
            if e > 0.0 {
                m.insert(h, (e, e));
            }
            h += HOUR_MS;
        }
    }
    let mut gaps = Vec::new();
    for (node, hours) in missing {
        let mut run: Option<Gap> = None;
        for (h, (miss, _)) in hours {
            match &mut run {
                Some(g) if g.to_s * 1000 == h => {
                    g.to_s = (h + HOUR_MS).min(end) / 1000;
                    g.missing_hours += miss / 3600.0;
                }
                _ => {
                    gaps.extend(run.take());
                    run = Some(Gap {
                        node: node.to_string(),
                        from_s: h / 1000,
                        to_s: (h + HOUR_MS).min(end) / 1000,
                        missing_hours: miss / 3600.0,
                    });
                }
            }
        }
        gaps.extend(run);
    }
    gaps.sort_by(|a, b| {
        b.missing_hours.total_cmp(&a.missing_hours).then(a.node.cmp(&b.node)).then(a.from_s.cmp(&b.from_s))
    });
    Coverage {
        nodes: starts.len(),
        expected_node_hours: expected_s / 3600.0,
        received_node_hours: received_s / 3600.0,
        coverage_pct: (expected_s > 0.0).then(|| (received_s / expected_s * 100.0).min(100.0)),
        gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period() -> ReportPeriod {
        ReportPeriod::dates("2026-03-02", "2026-03-02").unwrap()
    }

    const H: i64 = 3_600_000;

    fn row(node: &str, hour_ms: i64, covered_s: f64, first_ms: i64, last_ms: i64) -> CoveredHour {
        CoveredHour { node: node.into(), hour: hour_ms / 1000, covered_s, reports: 1, first_ms, last_ms }
    }

    #[test]
    fn a_node_reporting_continuously_has_no_gap_in_the_hour_under_way() {
        let p = period();
        let t0 = p.start_s * 1000;
        // Reports from 10:00 to 12:18, now is 12:18.
        let now = t0 + 12 * H + 18 * 60_000;
        let mut rows: Vec<CoveredHour> =
            (10..12).map(|h| row("n1", t0 + h * H, 3600.0, t0 + h * H, t0 + (h + 1) * H)).collect();
        rows.push(row("n1", t0 + 12 * H, 18.0 * 60.0, t0 + 12 * H, now));
        let c = coverage(&CoverageInput::from_hours(&rows), &p, now, None);
        assert!(c.gaps.is_empty(), "{:?}", c.gaps);
        assert!((c.expected_node_hours - 2.3).abs() < 1e-9, "{}", c.expected_node_hours);
        assert!((c.received_node_hours - 2.3).abs() < 1e-9);
        assert_eq!(c.coverage_pct, Some(100.0));
    }

    #[test]
    fn missing_time_is_counted_only_until_now_and_partial_hours_in_proportion() {
        let p = period();
        let t0 = p.start_s * 1000;
        // Reports 10:30-11:00, then nothing; now is 12:15.
        let now = t0 + 12 * H + 15 * 60_000;
        let rows = vec![row("n1", t0 + 10 * H, 1800.0, t0 + 10 * H + 30 * 60_000, t0 + 11 * H)];
        let c = coverage(&CoverageInput::from_hours(&rows), &p, now, None);
        // Expected from 10:30 to 12:15: 1.75 h; received 0.5 h.
        assert!((c.expected_node_hours - 1.75).abs() < 1e-9, "{}", c.expected_node_hours);
        assert!((c.received_node_hours - 0.5).abs() < 1e-9);
        assert_eq!(c.gaps.len(), 1);
        let g = &c.gaps[0];
        assert_eq!((g.from_s * 1000, g.to_s * 1000), (t0 + 11 * H, now));
        assert!((g.missing_hours - 1.25).abs() < 1e-9, "{}", g.missing_hours);
        let pct = c.coverage_pct.unwrap();
        assert!((pct - 0.5 / 1.75 * 100.0).abs() < 1e-9);
    }

    #[test]
    fn only_the_nodes_asked_for_are_shown() {
        let p = period();
        let t0 = p.start_s * 1000;
        let rows = vec![row("mine", t0, 600.0, t0, t0 + 600_000), row("theirs", t0, 600.0, t0, t0 + 600_000)];
        let nodes: BTreeSet<String> = ["mine".to_string()].into();
        let c = coverage(&CoverageInput::from_hours(&rows), &p, t0 + 2 * H, Some(&nodes));
        assert_eq!(c.nodes, 1);
        assert!(c.gaps.iter().all(|g| g.node == "mine"), "{:?}", c.gaps);
    }
}
