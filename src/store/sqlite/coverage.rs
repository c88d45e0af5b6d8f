//! What each node delivered: per hour and per day, and the shape reports read.

use super::SqliteStore;
use crate::report::coverage::{CoverageInput, CoveredHour};
use crate::store::shared::coverage_of_days;
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
        let days: Vec<(String, i64, f64)> = self.query(
            "SELECT node, day, covered_s FROM coverage_day WHERE day >= ?1 AND day < ?2 ORDER BY node, day",
            params![from_s, to_s],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        coverage_of_days(&days, |node, from, to| {
            self.query(
                "SELECT hour, covered_s, first_ms, last_ms FROM coverage
                 WHERE node = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
                params![node, from, to],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })
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
