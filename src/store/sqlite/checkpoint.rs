//! WAL checkpoints beside the writer instead of inside its commits.
//!
//! By default SQLite's committing connection copies the WAL back into the
//! database (with two fsyncs) whenever the WAL passes 1,000 pages, so one
//! commit in a few hundred waits for all of it. The collector's writer
//! instead leaves that to a thread of its own ([`Checkpointer`]), which
//! checkpoints every [`EVERY`] in PASSIVE mode: it never blocks the writer or
//! the readers, and pages rewritten in between (the ledger's, the dedup
//! record's) are copied once. Should the thread fall behind, the
//! writer still checkpoints itself past [`WRITER_FALLBACK_PAGES`].

use super::SqliteStore;
use crate::store::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Time between two checkpoints. Short, so the WAL stays small and its copy
/// quick: every second (and a 16,384-page fallback) gave the best throughput
/// but a p99 twice as long, the fallback's large checkpoints in the commit.
pub const EVERY: Duration = Duration::from_millis(100);
/// WAL pages past which the writer checkpoints in its own commit all the same.
pub const WRITER_FALLBACK_PAGES: u32 = 4_096;

/// The checkpoint thread; stopped (after a last checkpoint) when dropped.
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Leaves the checkpoints of `store`'s database to a new thread with its own connection.
    pub(super) fn start(store: &SqliteStore) -> Result<Self> {
        let other = SqliteStore::open_again(&store.path)?;
        store.conn.pragma_update(None, "wal_autocheckpoint", WRITER_FALLBACK_PAGES).map_err(store.err())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                let mut last = Instant::now();
                loop {
                    let stopping = flag.load(Ordering::Relaxed);
                    if stopping || last.elapsed() >= EVERY {
                        let done = other.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                        if let Err(e) = done {
                            tracing::debug!("WAL checkpoint: {e}");
                        }
                        last = Instant::now();
                    }
                    if stopping {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .map_err(|e| crate::store::StoreError::Thread(e.to_string()))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
