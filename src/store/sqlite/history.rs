//! History: raw rows at report resolution (all GPUs of a report in one
//! row), downsampled to 1-minute and 1-hour means, pruned past retention.

use super::SqliteStore;
use crate::store::shared::{MinuteAcc, raw_points, raw_selection};
use crate::store::{HistoryPoint, Keep, Resolution, Result, StoreError};
use rusqlite::params;

impl SqliteStore {
    /// History points at a resolution ("raw", "minute" or "hour").
    pub(super) fn history_points(
        &self,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
        node: Option<&str>,
        gpu: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryPoint>> {
        if resolution == Resolution::Raw {
            return raw_selection(gpu, limit, |f| self.raw_history(from_ms, to_ms, node, f));
        }
        self.query(
            "SELECT node, gpu, ts_ms, util, mem_used, power_w, temp, allocated FROM history
                 WHERE resolution = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND (?4 IS NULL OR node = ?4)
                   AND (?5 IS NULL OR gpu = ?5)
                 ORDER BY ts_ms, node, gpu LIMIT ?6",
            params![resolution.name(), from_ms, to_ms, node, gpu, limit as i64],
            |r| {
                Ok(HistoryPoint {
                    node: r.get(0)?,
                    gpu: r.get(1)?,
                    ts_ms: r.get(2)?,
                    util: r.get(3)?,
                    mem_used: r.get(4)?,
                    power_w: r.get(5)?,
                    temp: r.get(6)?,
                    allocated: r.get(7)?,
                })
            },
        )
    }

    /// Calls `f` for every per-GPU point of raw history in [from_ms, to_ms).
    fn raw_history(&self, from_ms: i64, to_ms: i64, node: Option<&str>, mut f: impl FnMut(HistoryPoint)) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT node, ts_ms, gpus FROM history_raw WHERE ts_ms >= ?1 AND ts_ms < ?2 AND (?3 IS NULL OR node = ?3)",
            )
            .map_err(self.err())?;
        let mut rows = st.query(params![from_ms, to_ms, node]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let node: String = r.get(0).map_err(self.err())?;
            let ts_ms: i64 = r.get(1).map_err(self.err())?;
            let text: String = r.get(2).map_err(self.err())?;
            raw_points(&node, ts_ms, &text, &mut f);
        }
        Ok(())
    }

    /// Downsamples raw history into minutes and minutes into hours (complete
    /// buckets only), then prunes each resolution past its retention and the
    /// dedup record past the dedup horizon. Returns rows deleted.
    pub(super) fn prune(&mut self, now_ms: i64, keep: &Keep) -> Result<usize> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        // Raw → minute, in Rust (raw rows hold all GPUs of a report).
        let done: i64 = tx
            .query_row("SELECT COALESCE(MAX(ts_ms) + 60000, 0) FROM history WHERE resolution = 'minute'", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        let upto = now_ms.div_euclid(60_000) * 60_000;
        let mut acc = MinuteAcc::default();
        {
            let mut st = tx
                .prepare("SELECT node, ts_ms, gpus FROM history_raw WHERE ts_ms >= ?1 AND ts_ms < ?2")
                .map_err(err)?;
            let mut rows = st.query(params![done, upto]).map_err(err)?;
            while let Some(r) = rows.next().map_err(err)? {
                let node: String = r.get(0).map_err(err)?;
                let ts: i64 = r.get(1).map_err(err)?;
                let text: String = r.get(2).map_err(err)?;
                acc.add_row(&node, ts, &text);
            }
        }
        {
            let mut ins = tx
                .prepare(
                    "INSERT OR REPLACE INTO history(resolution, node, gpu, ts_ms, util, mem_used, power_w, temp, allocated)
                     VALUES('minute', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            for (node, gpu, ts, v) in acc.means() {
                ins.execute(params![node, gpu, ts, v[0], v[1], v[2], v[3], v[4]]).map_err(err)?;
            }
        }
        // Minute → hour, in SQL.
        let done: i64 = tx
            .query_row("SELECT COALESCE(MAX(ts_ms) + 3600000, 0) FROM history WHERE resolution = 'hour'", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        let upto = crate::time::hour_floor_ms(now_ms);
        tx.execute(
            "INSERT OR REPLACE INTO history(resolution, node, gpu, ts_ms, util, mem_used, power_w, temp, allocated)
             SELECT 'hour', node, gpu, (ts_ms / 3600000) * 3600000, AVG(util), AVG(mem_used), AVG(power_w),
                    AVG(temp), AVG(allocated)
             FROM history WHERE resolution = 'minute' AND ts_ms >= ?1 AND ts_ms < ?2
             GROUP BY node, gpu, ts_ms / 3600000",
            params![done, upto],
        )
        .map_err(err)?;
        let mut deleted = 0;
        deleted +=
            tx.execute("DELETE FROM history_raw WHERE ts_ms < ?1", params![now_ms - keep.raw_ms]).map_err(err)?;
        for (res, keep_ms) in [("minute", keep.minute_ms), ("hour", keep.hour_ms)] {
            deleted += tx
                .execute("DELETE FROM history WHERE resolution = ?1 AND ts_ms < ?2", params![res, now_ms - keep_ms])
                .map_err(err)?;
        }
        // What deduplication needs is kept for its horizon: reports older than it are refused.
        let horizon = now_ms - keep.dedup_ms;
        deleted += tx.execute("DELETE FROM delivered WHERE last_ms < ?1", params![horizon]).map_err(err)?;
        deleted += tx.execute("DELETE FROM charged WHERE last_ms < ?1", params![horizon]).map_err(err)?;
        deleted += tx.execute("DELETE FROM ledger_minute WHERE minute < ?1", params![horizon]).map_err(err)?;
        deleted += tx.execute("DELETE FROM sched_runs WHERE end_ms < ?1", params![horizon]).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted)
    }
}
