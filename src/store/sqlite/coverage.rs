//! What each node delivered: per hour and per day, and the shape reports read.

use super::SqliteStore;
use crate::report::coverage::{CoverageInput, CoveredHour, NodeSpan, ShortHour};
use crate::store::{CoverageRow, Result};
use rusqlite::params;

impl SqliteStore {
    /// Per node: reports received and seconds covered, for buckets starting in [from_s, to_s).
    pub(super) fn coverage_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<CoverageRow>> {
        self.query(
            "SELECT node, SUM(reports), SUM(covered_s), MIN(hour), MAX(hour) FROM coverage
                 WHERE hour >= ?1 AND hour < ?2 GROUP BY node ORDER BY node",
            params![from_s, to_s],
            |r| {
                Ok(CoverageRow {
                    node: r.get(0)?,
                    reports: r.get(1)?,
                    covered_s: r.get(2)?,
                    first_hour: r.get(3)?,
                    last_hour: r.get(4)?,
                })
            },
        )
    }

    /// Coverage of [from_s, to_s) (whole days) for reports: from the daily
    /// roll-up, reading hour by hour only the first and last day of each node
    /// and the days that are not fully covered.
    pub(super) fn report_coverage(&self, from_s: i64, to_s: i64) -> Result<CoverageInput> {
        let e = self.err();
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT node, day, covered_s FROM coverage_day WHERE day >= ?1 AND day < ?2 ORDER BY node, day",
            )
            .map_err(&e)?;
        let days: Vec<(String, i64, f64)> = st
            .query_map(params![from_s, to_s], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(&e)?;
        let mut hours_of = self
            .conn
            .prepare_cached(
                "SELECT hour, covered_s, first_ms, last_ms FROM coverage
                 WHERE node = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
            )
            .map_err(&e)?;
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
                let rows: Vec<(i64, f64, i64, i64)> = hours_of
                    .query_map(params![node, day, day + 86_400], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .map_err(&e)?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(&e)?;
                for (h, c, first, last) in rows {
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

    /// Per node and hour: seconds covered, and when.
    pub(super) fn hourly_coverage(&self, from_s: i64, to_s: i64) -> Result<Vec<CoveredHour>> {
        self.query(
            "SELECT node, hour, covered_s, reports, first_ms, last_ms FROM coverage WHERE hour >= ?1 AND hour < ?2
             ORDER BY node, hour",
            params![from_s, to_s],
            |r| {
                Ok(CoveredHour {
                    node: r.get(0)?,
                    hour: r.get(1)?,
                    covered_s: r.get(2)?,
                    reports: r.get(3)?,
                    first_ms: r.get(4)?,
                    last_ms: r.get(5)?,
                })
            },
        )
    }
}

/// Adds [start, end) to sorted runs, merging with the last when they touch.
fn push_run(runs: &mut Vec<(i64, i64)>, start: i64, end: i64) {
    match runs.last_mut() {
        Some(last) if last.1 >= start => last.1 = last.1.max(end),
        _ => runs.push((start, end)),
    }
}
