//! Findings (raised, cleared, when notified) and the notification outbox.

use super::SqliteStore;
use crate::api::findings::Finding;
use crate::store::{OutboxItem, Result, StoreError};
use rusqlite::params;

impl SqliteStore {
    pub(super) fn put_findings(&mut self, findings: &[(Finding, Option<i64>)]) -> Result<()> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO findings(id, first_ms, last_ms, cleared_ms, notified_ms, finding)
                     VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for (f, notified) in findings {
                let text = serde_json::to_string(f).expect("findings serialise");
                put.execute(params![f.id, f.first_seen_ms, f.last_seen_ms, f.cleared_ms, notified, text])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    pub(super) fn get_findings(&self, since_ms: i64) -> Result<Vec<(Finding, Option<i64>)>> {
        let rows: Vec<(String, Option<i64>)> = self.query(
            "SELECT finding, notified_ms FROM findings WHERE cleared_ms IS NULL OR cleared_ms >= ?1 ORDER BY first_ms",
            [since_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.into_iter().filter_map(|(t, n)| serde_json::from_str(&t).ok().map(|f| (f, n))).collect())
    }

    pub(super) fn get_findings_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Finding>> {
        let rows: Vec<String> = self.query(
            "SELECT finding FROM findings WHERE first_ms < ?2 AND (cleared_ms IS NULL OR cleared_ms >= ?1) ORDER BY first_ms",
            params![from_ms, to_ms],
            |r| r.get(0),
        )?;
        Ok(rows.iter().filter_map(|t| serde_json::from_str(t).ok()).collect())
    }

    pub(super) fn push_outbox(&mut self, items: &[(String, String)], now_ms: i64, max: usize) -> Result<u64> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        {
            let mut put = tx
                .prepare_cached("INSERT INTO outbox(receiver, body, created_ms, next_ms) VALUES(?1, ?2, ?3, ?3)")
                .map_err(err)?;
            for (receiver, body) in items {
                put.execute(params![receiver, body, now_ms]).map_err(err)?;
            }
        }
        let queued: i64 = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0)).map_err(err)?;
        let over = (queued - max as i64).max(0);
        if over > 0 {
            tx.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?1)", [over])
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(over as u64)
    }

    pub(super) fn due_outbox(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>> {
        self.query(
            "SELECT id, receiver, body, created_ms, attempts FROM outbox WHERE next_ms <= ?1 ORDER BY id LIMIT ?2",
            params![now_ms, limit as i64],
            |r| {
                Ok(OutboxItem {
                    id: r.get(0)?,
                    receiver: r.get(1)?,
                    body: r.get(2)?,
                    created_ms: r.get(3)?,
                    attempts: r.get::<_, i64>(4)? as u32,
                })
            },
        )
    }

    pub(super) fn update_outbox(&mut self, id: i64, next_ms: Option<i64>, error: Option<&str>) -> Result<()> {
        let r = match next_ms {
            None => self.conn.execute("DELETE FROM outbox WHERE id = ?1", [id]),
            Some(next) => self.conn.execute(
                "UPDATE outbox SET next_ms = ?2, attempts = attempts + 1, last_error = ?3 WHERE id = ?1",
                params![id, next, error],
            ),
        };
        r.map(drop).map_err(self.err())
    }

    pub(super) fn count_outbox(&self) -> Result<u64> {
        Ok(self.query("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))?.pop().unwrap_or(0) as u64)
    }
}
