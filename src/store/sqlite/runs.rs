//! The scheduler's history: runs of jobs with their starts and ends, so
//! reports are charged with the jobs of their own time, also after a restart.

use super::SqliteStore;
use crate::scheduler::history::Run;
use crate::store::{Result, StoreError};
use rusqlite::params;

impl SqliteStore {
    pub(super) fn put_runs(&mut self, runs: &[Run]) -> Result<()> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        {
            let mut put = tx
                .prepare_cached("INSERT OR REPLACE INTO sched_runs(job, start_ms, end_ms, run) VALUES(?1, ?2, ?3, ?4)")
                .map_err(err)?;
            for r in runs {
                let text = serde_json::to_string(r).expect("runs serialise");
                put.execute(params![r.job.id, r.start_ms, r.end_for_charging(), text]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    pub(super) fn get_runs(&self, since_ms: i64) -> Result<Vec<Run>> {
        let rows: Vec<String> =
            self.query("SELECT run FROM sched_runs WHERE end_ms IS NULL OR end_ms >= ?1", [since_ms], |r| r.get(0))?;
        Ok(rows.iter().filter_map(|t| serde_json::from_str(t).ok()).collect())
    }
}
