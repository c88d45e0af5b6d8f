//! What the collector keeps besides the ledger: the scheduler's runs,
//! findings, the notification outbox, each node's last report.

use super::{C, PgStore};
use crate::api::findings::Finding;
use crate::scheduler::history::Run;
use crate::store::shared::decode_last;
use crate::store::{OutboxItem, Result};
use jazari_wire::Report;

/// How long a collector holds notifications it took for delivery before
/// another collector may take them (a collector that dies mid-delivery).
const OUTBOX_LEASE_MS: i64 = 60_000;

impl PgStore {
    pub(super) fn put_runs(&self, runs: &[Run]) -> Result<()> {
        let mut runs: Vec<&Run> = runs.iter().collect();
        runs.sort_by(|a, b| (&a.job.id, a.start_ms).cmp(&(&b.job.id, b.start_ms)));
        runs.dedup_by(|a, b| (&a.job.id, a.start_ms) == (&b.job.id, b.start_ms));
        let jobs: Vec<&str> = runs.iter().map(|r| r.job.id.as_str()).collect();
        let starts: Vec<i64> = runs.iter().map(|r| r.start_ms).collect();
        let ends: Vec<Option<i64>> = runs.iter().map(|r| r.end_for_charging()).collect();
        let texts: Vec<String> = runs.iter().map(|r| serde_json::to_string(r).expect("runs serialise")).collect();
        self.with(|c| {
            c.execute(
                "INSERT INTO sched_runs(job, start_ms, end_ms, run)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[])
                 ON CONFLICT(job, start_ms) DO UPDATE SET end_ms = excluded.end_ms, run = excluded.run",
                &[&jobs, &starts, &ends, &texts],
            )
        })
        .map(drop)
    }

    pub(super) fn get_runs(&self, since_ms: i64) -> Result<Vec<Run>> {
        let rows =
            self.with(|c| c.query("SELECT run FROM sched_runs WHERE end_ms IS NULL OR end_ms >= $1", &[&since_ms]))?;
        Ok(rows.iter().filter_map(|r| serde_json::from_str(r.get(0)).ok()).collect())
    }

    pub(super) fn put_findings(&self, findings: &[(Finding, Option<i64>)]) -> Result<()> {
        let mut rows: Vec<&(Finding, Option<i64>)> = findings.iter().collect();
        rows.sort_by(|a, b| (&a.0.id, a.0.first_seen_ms).cmp(&(&b.0.id, b.0.first_seen_ms)));
        rows.dedup_by(|a, b| (&a.0.id, a.0.first_seen_ms) == (&b.0.id, b.0.first_seen_ms));
        let ids: Vec<&str> = rows.iter().map(|(f, _)| f.id.as_str()).collect();
        let firsts: Vec<i64> = rows.iter().map(|(f, _)| f.first_seen_ms).collect();
        let lasts: Vec<i64> = rows.iter().map(|(f, _)| f.last_seen_ms).collect();
        let cleared: Vec<Option<i64>> = rows.iter().map(|(f, _)| f.cleared_ms).collect();
        let notified: Vec<Option<i64>> = rows.iter().map(|(_, n)| *n).collect();
        let texts: Vec<String> =
            rows.iter().map(|(f, _)| serde_json::to_string(f).expect("findings serialise")).collect();
        self.with(|c| {
            c.execute(
                "INSERT INTO findings(id, first_ms, last_ms, cleared_ms, notified_ms, finding)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])
                 ON CONFLICT(id, first_ms) DO UPDATE SET last_ms = excluded.last_ms, cleared_ms = excluded.cleared_ms,
                   notified_ms = excluded.notified_ms, finding = excluded.finding",
                &[&ids, &firsts, &lasts, &cleared, &notified, &texts],
            )
        })
        .map(drop)
    }

    pub(super) fn get_findings(&self, since_ms: i64) -> Result<Vec<(Finding, Option<i64>)>> {
        let rows = self.with(|c| {
            c.query(
                "SELECT finding, notified_ms FROM findings WHERE cleared_ms IS NULL OR cleared_ms >= $1 ORDER BY first_ms",
                &[&since_ms],
            )
        })?;
        Ok(rows.iter().filter_map(|r| serde_json::from_str(r.get(0)).ok().map(|f| (f, r.get(1)))).collect())
    }

    pub(super) fn get_findings_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Finding>> {
        let rows = self.with(|c| {
            c.query(
                "SELECT finding FROM findings WHERE first_ms < $2 AND (cleared_ms IS NULL OR cleared_ms >= $1)
                 ORDER BY first_ms",
                &[&from_ms, &to_ms],
            )
        })?;
        Ok(rows.iter().filter_map(|r| serde_json::from_str(r.get(0)).ok()).collect())
    }

    pub(super) fn push_outbox(&self, items: &[(String, String)], now_ms: i64, max: usize) -> Result<u64> {
        let (receivers, bodies): (Vec<&str>, Vec<&str>) = items.iter().map(|(r, b)| (r.as_str(), b.as_str())).unzip();
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO outbox(receiver, body, created_ms, next_ms)
                 SELECT r, b, $3, $3 FROM UNNEST($1::text[], $2::text[]) AS u(r, b)",
                &[&receivers, &bodies, &now_ms],
            )?;
            let queued: i64 = tx.query_one("SELECT COUNT(*) FROM outbox", &[])?.get(0);
            let over = (queued - max as i64).max(0);
            if over > 0 {
                tx.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT $1)", &[&over])?;
            }
            Ok(over as u64)
        })
    }

    /// Notifications due, taken for delivery by this collector: another
    /// collector does not see them again until the lease runs out.
    pub(super) fn due_outbox(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.with(|c| {
            c.query(
                "UPDATE outbox SET next_ms = $1 + $3 WHERE id IN (
                   SELECT id FROM outbox WHERE next_ms <= $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, receiver, body, created_ms, attempts",
                &[&now_ms, &limit, &OUTBOX_LEASE_MS],
            )
        })?;
        let mut items: Vec<OutboxItem> = rows
            .iter()
            .map(|r| OutboxItem {
                id: r.get(0),
                receiver: r.get(1),
                body: r.get(2),
                created_ms: r.get(3),
                attempts: r.get::<_, i64>(4) as u32,
            })
            .collect();
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    pub(super) fn update_outbox(&self, id: i64, next_ms: Option<i64>, error: Option<&str>) -> Result<()> {
        self.with(|c| match next_ms {
            None => c.execute("DELETE FROM outbox WHERE id = $1", &[&id]),
            Some(next) => c.execute(
                "UPDATE outbox SET next_ms = $2, attempts = attempts + 1, last_error = $3 WHERE id = $1",
                &[&id, &next, &error],
            ),
        })
        .map(drop)
    }

    pub(super) fn count(&self, table: &str) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        Ok(self.with(|c| c.query_one(sql.as_str(), &[]))?.get::<_, i64>(0) as u64)
    }

    /// The last report of each node (whichever collector took it) stored
    /// since `since_ms` (the database's clock), when each node was first
    /// seen, and the database's clock now.
    pub(super) fn node_reports(
        &self,
        limits: jazari_wire::DecodeLimits,
        since_ms: i64,
    ) -> Result<(Vec<(Report, i64)>, i64)> {
        let sql = format!("SELECT node, last_report, first_seen_ms FROM nodes WHERE stored_ms >= $1 ORDER BY node {C}");
        let (rows, now) = self.with(|c| {
            let now: i64 = c.query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[])?.get(0);
            Ok((c.query(sql.as_str(), &[&since_ms])?, now))
        })?;
        let out = rows.iter().filter_map(|r| Some((decode_last(r.get(0), r.get(1), limits)?, r.get(2)))).collect();
        Ok((out, now))
    }
}
