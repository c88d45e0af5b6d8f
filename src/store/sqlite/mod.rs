//! The SQLite store (the embedded default): one file, WAL, one writer.
//!
//! - `schema.sql` and [`migrate`]: the tables, created or upgraded on open;
//! - [`write`]: the ingest transaction (dedup, ledger, roll-ups, coverage, history, last reports);
//! - [`ledger`]: reads of the ledger and its roll-ups;
//! - [`coverage`]: what each node delivered;
//! - [`history`]: history reads, downsampling and pruning;
//! - [`tokens`]: API tokens.

mod alerts;
pub mod checkpoint;
mod coverage;
mod history;
mod ledger;
mod migrate;
mod runs;
mod tokens;
mod write;

use super::{
    Applied, CoverageRow, Filter, GroupBy, HistoryPoint, Keep, OutboxItem, Prepared, Resolution, Result, Settled,
    Store, StoreError, TokenRow, UsageRow,
};
use crate::accounting::{Charge, DayRow, GpuCharge, HourRow};
use crate::api::findings::Finding;
use crate::quota::UseRow;
use crate::report::CoverageInput;
use crate::report::coverage::CoveredHour;
use crate::scheduler::history::Run;
use jazari_wire::Report;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// One open SQLite connection.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// The writer's checkpoint thread, once [`Store::become_writer`].
    checkpointer: Option<checkpoint::Checkpointer>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            // The store's folder is made (0750) when it can be: the ledger is not for others to read.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir).map_err(|source| StoreError::NoDir {
                path: path.to_path_buf(),
                dir: dir.to_path_buf(),
                source,
            })?;
            tracing::info!(folder = %dir.display(), "made the store's folder");
        }
        let mut s = Self::connect(path)?;
        s.migrate()?;
        hand_to_folder_owner(path);
        Ok(s)
    }

    /// Another connection to a store that [`SqliteStore::open`] opened in
    /// this process: without the schema check, whose write transaction
    /// would contend with the writer's commits.
    pub fn open_again(path: &Path) -> Result<Self> {
        Self::connect(path)
    }

    fn connect(path: &Path) -> Result<Self> {
        let err = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(err)?;
        // The busy timeout first: the pragmas after it may wait for a lock.
        conn.execute_batch("PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(err)?;
        Ok(Self { conn, path: path.to_path_buf(), checkpointer: None })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// Runs a read query and collects its rows.
    fn query<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let e = self.err();
        let mut st = self.conn.prepare_cached(sql).map_err(&e)?;
        let rows = st.query_map(params, f).map_err(&e)?;
        rows.collect::<std::result::Result<_, _>>().map_err(&e)
    }
}

impl Store for SqliteStore {
    super::store_methods!();
    fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(())).map_err(self.err())
    }
    fn secret(&self, name: &str, random: &str) -> Result<String> {
        let key = format!("secret:{name}");
        self.conn
            .execute("INSERT OR IGNORE INTO meta(key, value) VALUES(?1, ?2)", rusqlite::params![key, random])
            .map_err(self.err())?;
        self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).map_err(self.err())
    }
    fn become_writer(&mut self) -> Result<()> {
        if self.checkpointer.is_none() {
            self.checkpointer = Some(checkpoint::Checkpointer::start(self)?);
        }
        Ok(())
    }
    fn pending_count(&self) -> Result<u64> {
        Ok(self.query("SELECT COUNT(*) FROM pending", [], |r| r.get::<_, i64>(0))?.pop().unwrap_or(0) as u64)
    }
    fn outbox_len(&self) -> Result<u64> {
        self.count_outbox()
    }
    fn last_reports(&self, limits: jazari_wire::DecodeLimits) -> Result<Vec<(Report, i64)>> {
        self.node_reports(limits)
    }
}

#[cfg(test)]
mod tests;

/// Run as root (`jazari token add` on the collector host), files the store
/// makes would be root's and the collector, running as its own user, could not
/// write them: they are handed to the owner of the store's folder instead.
fn hand_to_folder_owner(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(owner) = std::fs::metadata(dir) else { return };
    if !root || owner.uid() == 0 {
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let f = PathBuf::from(format!("{}{suffix}", path.display()));
        // Only root's own regular files, never through a link planted in the folder.
        let ours = std::fs::symlink_metadata(&f).is_ok_and(|m| m.file_type().is_file() && m.uid() == 0);
        if ours && let Err(e) = std::os::unix::fs::lchown(&f, Some(owner.uid()), Some(owner.gid())) {
            tracing::warn!(file = %f.display(), "cannot hand the store file to its folder's owner: {e}");
        }
    }
}
