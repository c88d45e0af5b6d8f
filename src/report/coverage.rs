//! Coverage: how much of the period each node reported, and its gaps.

use super::{Coverage, Gap, ReportPeriod};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the coverage record says about a period, in the shape the store
/// can answer without sending every hour of every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageInput {
    /// Per node: first and last hour with a report, and seconds received (at most 3600 an hour).
    pub spans: Vec<(String, i64, i64, f64)>,
    /// Hours covered less than 90 %: (node, hour, covered seconds).
    pub short: Vec<(String, i64, f64)>,
    /// Runs of hours with no report at all: (node, last hour before, next hour after).
    pub holes: Vec<(String, i64, i64)>,
}

impl CoverageInput {
    /// From (node, hour, covered seconds) rows (tests, small periods).
    pub fn from_hours(rows: &[(String, i64, f64)]) -> Self {
        let mut by: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
        for (n, h, c) in rows {
            *by.entry(n).or_default().entry(*h).or_default() += c;
        }
        let mut out = CoverageInput::default();
        for (n, hours) in by {
            let first = *hours.keys().next().expect("non-empty");
            let last = *hours.keys().next_back().expect("non-empty");
            out.spans.push((n.to_string(), first, last, hours.values().map(|c| c.min(3600.0)).sum()));
            let mut prev: Option<i64> = None;
            for (h, c) in &hours {
                if *c < 3240.0 {
                    out.short.push((n.to_string(), *h, *c));
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

/// Coverage: per node, from its first hour in the period to the end of the
/// period (or now), hours with less than 90 % covered are gaps.
pub(crate) fn coverage(inp: &CoverageInput, period: &ReportPeriod, now_s: i64) -> Coverage {
    let end = period.end_s.min(crate::time::hour_bucket_s(now_s * 1000));
    let (mut expected, mut received) = (0.0, 0.0);
    let mut missing: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    for (node, first, last, got) in &inp.spans {
        let span_end = end.max(last + 3600);
        expected += (span_end - first) as f64 / 3600.0;
        received += got / 3600.0;
        let m = missing.entry(node.as_str()).or_default();
        let mut h = last + 3600;
        while h < span_end {
            m.insert(h, 1.0);
            h += 3600;
        }
    }
    for (node, h, c) in &inp.short {
        missing.entry(node.as_str()).or_default().insert(*h, (3600.0 - c.min(3600.0)) / 3600.0);
    }
    for (node, before, after) in &inp.holes {
        let m = missing.entry(node.as_str()).or_default();
        let mut h = before + 3600;
        while h < *after {
            m.insert(h, 1.0);
            h += 3600;
        }
    }
    let mut gaps = Vec::new();
    for (node, hours) in missing {
        let mut run: Option<(i64, i64, f64)> = None;
        for (h, miss) in hours {
            match &mut run {
                Some((_, to, total)) if *to == h => {
                    *to = h + 3600;
                    *total += miss;
                }
                _ => {
                    if let Some((from, to, total)) = run.take() {
                        gaps.push(Gap { node: node.to_string(), from_s: from, to_s: to, missing_hours: total });
                    }
                    run = Some((h, h + 3600, miss));
                }
            }
        }
        if let Some((from, to, total)) = run {
            gaps.push(Gap { node: node.to_string(), from_s: from, to_s: to, missing_hours: total });
        }
    }
    gaps.sort_by(|a, b| {
        b.missing_hours.total_cmp(&a.missing_hours).then(a.node.cmp(&b.node)).then(a.from_s.cmp(&b.from_s))
    });
    Coverage {
        nodes: inp.spans.len(),
        expected_node_hours: expected,
        received_node_hours: received,
        coverage_pct: (expected > 0.0).then(|| received / expected * 100.0),
        gaps,
    }
}
