//! What each node delivered: per hour and per day, and the shape reports read.

use super::SqliteStore;
use crate::report::CoverageInput;
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
                "SELECT hour, covered_s FROM coverage WHERE node = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
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
            for (k, (_, day, covered)) in node_days.iter().enumerate() {
                let edge = k == 0 || k + 1 == node_days.len();
                if *covered >= 86_040.0 && !edge {
                    got += covered.min(86_400.0);
                    push_run(&mut runs, *day, day + 86_400);
                    continue;
                }
                let rows: Vec<(i64, f64)> = hours_of
                    .query_map(params![node, day, day + 86_400], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(&e)?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(&e)?;
                for (h, c) in rows {
                    got += c.min(3600.0);
                    if c < 3240.0 {
                        out.short.push((node.clone(), h, c));
                    }
                    push_run(&mut runs, h, h + 3600);
                }
            }
            if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
                out.spans.push((node.clone(), first.0, last.1 - 3600, got));
                for w in runs.windows(2) {
                    out.holes.push((node.clone(), w[0].1 - 3600, w[1].0));
                }
            }
            i = j;
        }
        Ok(out)
    }

    /// Per node and hour: seconds covered (report coverage and gaps).
    pub(super) fn hourly_coverage(&self, from_s: i64, to_s: i64) -> Result<Vec<(String, i64, f64)>> {
        self.query(
            "SELECT node, hour, covered_s FROM coverage WHERE hour >= ?1 AND hour < ?2 ORDER BY node, hour",
            params![from_s, to_s],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
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
