//! History: raw rows at report resolution, downsampled to 1-minute and
//! 1-hour means, pruned past retention (one collector at a time).

use super::{C, LOCK_CLASS, PRUNE_LOCK, PgStore};
use crate::store::shared::{MinuteAcc, raw_points, raw_selection};
use crate::store::{HistoryPoint, Keep, Resolution, Result};

impl PgStore {
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
        let sql = format!(
            "SELECT node, gpu, ts_ms, util, mem_used, power_w, temp, allocated FROM history
             WHERE resolution = $1 AND ts_ms >= $2 AND ts_ms < $3 AND ($4::text IS NULL OR node = $4)
               AND ($5::text IS NULL OR gpu = $5)
             ORDER BY ts_ms, node {C}, gpu {C} LIMIT $6"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows =
            self.with(|c| c.query(sql.as_str(), &[&resolution.name(), &from_ms, &to_ms, &node, &gpu, &limit]))?;
        Ok(rows
            .iter()
            .map(|r| HistoryPoint {
                node: r.get(0),
                gpu: r.get(1),
                ts_ms: r.get(2),
                util: r.get(3),
                mem_used: r.get(4),
                power_w: r.get(5),
                temp: r.get(6),
                allocated: r.get(7),
            })
            .collect())
    }

    fn raw_history(&self, from_ms: i64, to_ms: i64, node: Option<&str>, mut f: impl FnMut(HistoryPoint)) -> Result<()> {
        let rows = self.with(|c| {
            c.query(
                "SELECT node, ts_ms, gpus FROM history_raw
                 WHERE ts_ms >= $1 AND ts_ms < $2 AND ($3::text IS NULL OR node = $3)",
                &[&from_ms, &to_ms, &node],
            )
        })?;
        for r in &rows {
            raw_points(r.get(0), r.get(1), r.get(2), &mut f);
        }
        Ok(())
    }

    /// Downsamples raw history into minutes and minutes into hours (complete
    /// buckets only), then prunes past retention and the dedup horizon. Run
    /// by one collector at a time: another collector's run is skipped (0).
    pub(super) fn prune(&self, now_ms: i64, keep: &Keep) -> Result<usize> {
        self.transaction(|tx| {
            let got: bool =
                tx.query_one("SELECT pg_try_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &PRUNE_LOCK])?.get(0);
            if !got {
                return Ok(0);
            }
            let done: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(ts_ms) + 60000, 0)::bigint FROM history WHERE resolution = 'minute'",
                    &[],
                )?
                .get(0);
            let upto = now_ms.div_euclid(60_000) * 60_000;
            let mut acc = MinuteAcc::default();
            for r in
                tx.query("SELECT node, ts_ms, gpus FROM history_raw WHERE ts_ms >= $1 AND ts_ms < $2", &[&done, &upto])?
            {
                acc.add_row(r.get(0), r.get(1), r.get(2));
            }
            let (mut nodes, mut gpus, mut ts) = (Vec::new(), Vec::new(), Vec::new());
            let mut m: [Vec<Option<f64>>; 5] = Default::default();
            for (node, gpu, t, v) in acc.means() {
                nodes.push(node);
                gpus.push(gpu);
                ts.push(t);
                for (c, x) in m.iter_mut().zip(v) {
                    c.push(x);
                }
            }
            tx.execute(
                "INSERT INTO history(resolution, node, gpu, ts_ms, util, mem_used, power_w, temp, allocated)
                 SELECT 'minute', * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::float8[],
                   $6::float8[], $7::float8[], $8::float8[])
                 ON CONFLICT(resolution, node, gpu, ts_ms) DO UPDATE SET util = excluded.util,
                   mem_used = excluded.mem_used, power_w = excluded.power_w, temp = excluded.temp,
                   allocated = excluded.allocated",
                &[&nodes, &gpus, &ts, &m[0], &m[1], &m[2], &m[3], &m[4]],
            )?;
            let done: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(ts_ms) + 3600000, 0)::bigint FROM history WHERE resolution = 'hour'",
                    &[],
                )?
                .get(0);
            let upto = crate::time::hour_floor_ms(now_ms);
            tx.execute(
                "INSERT INTO history(resolution, node, gpu, ts_ms, util, mem_used, power_w, temp, allocated)
                 SELECT 'hour', node, gpu, (ts_ms / 3600000) * 3600000, AVG(util), AVG(mem_used), AVG(power_w),
                        AVG(temp), AVG(allocated)
                 FROM history WHERE resolution = 'minute' AND ts_ms >= $1 AND ts_ms < $2
                 GROUP BY node, gpu, ts_ms / 3600000
                 ON CONFLICT(resolution, node, gpu, ts_ms) DO UPDATE SET util = excluded.util,
                   mem_used = excluded.mem_used, power_w = excluded.power_w, temp = excluded.temp,
                   allocated = excluded.allocated",
                &[&done, &upto],
            )?;
            let mut deleted = tx.execute("DELETE FROM history_raw WHERE ts_ms < $1", &[&(now_ms - keep.raw_ms)])?;
            for (res, keep_ms) in [("minute", keep.minute_ms), ("hour", keep.hour_ms)] {
                deleted += tx.execute(
                    "DELETE FROM history WHERE resolution = $1 AND ts_ms < $2",
                    &[&res, &(now_ms - keep_ms)],
                )?;
            }
            // What deduplication needs is kept for its horizon: reports older than it are refused.
            let horizon = now_ms - keep.dedup_ms;
            for sql in [
                "DELETE FROM delivered WHERE last_ms < $1",
                "DELETE FROM charged WHERE last_ms < $1",
                "DELETE FROM ledger_minute WHERE minute < $1",
                "DELETE FROM sched_runs WHERE end_ms < $1",
            ] {
                deleted += tx.execute(sql, &[&horizon])?;
            }
            Ok(deleted as usize)
        })
    }
}
