//! The store: tokens, the deduplication record, the ledger and its roll-ups,
//! coverage, history and the last report of each node.
//!
//! [`Store`] is the interface the collector uses; [`sqlite`] implements it
//! (the embedded default), and [`postgres`] for several collectors sharing
//! one database (chosen by a `postgres://` URL as the store). Exactly-once: a report's dedup record, its ledger
//! charges, coverage and history are written in one transaction; a report
//! whose (node, instance, seq) is already there changes nothing.

pub mod intervals;
pub mod period;
pub mod plan;
pub mod postgres;
mod prepared;
pub mod seen;
pub mod shared;
pub mod sqlite;

use crate::accounting::{Amounts, Charge, DayRow, GpuCharge, HourRow};
pub use crate::api::BatchOutcome;
use crate::api::findings::Finding;
pub use crate::api::history::{HistoryPoint, Resolution, SeriesPoint};
pub use crate::api::usage::{CoverageRow, GroupBy};
use crate::quota::UseRow;
use crate::report::CoverageInput;
use crate::report::coverage::CoveredHour;
use crate::scheduler::history::Run;
use jazari_wire::Report;
pub use prepared::Prepared;
use std::path::{Path, PathBuf};

/// How long the store remembers what it charged; older reports are refused
/// at ingest, since they could no longer be counted once.
pub const DEDUP_HORIZON_MS: i64 = 30 * crate::time::DAY_MS;

/// A notification waiting for its receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub receiver: String,
    pub body: String,
    pub created_ms: i64,
    pub attempts: u32,
}

/// What a collector needs from its store. Reads take `&self`; writes take
/// `&mut self` and are made by one writer at a time.
pub trait Store: Send {
    /// Answers when the store is reachable.
    fn ping(&self) -> Result<()>;

    /// A secret kept in the store under `name`, made of `random` on first use
    /// (the first writer's value wins; every later call returns it).
    fn secret(&self, name: &str, random: &str) -> Result<String>;

    // Tokens (only hashes of secrets are stored).
    fn insert_token(&self, t: &TokenRow) -> Result<()>;
    fn token(&self, id: &str) -> Result<Option<TokenRow>>;
    fn tokens(&self) -> Result<Vec<TokenRow>>;
    /// Revokes a token; false when there is no such (unrevoked) token.
    fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool>;

    /// This connection is the collector's writer: SQLite checkpoints its WAL
    /// on a thread beside it from now on (see `sqlite::checkpoint`).
    fn become_writer(&mut self) -> Result<()> {
        Ok(())
    }

    /// Applies several batches in one transaction (group commit). Each batch
    /// gets its own outcome. Nothing is written unless everything is.
    fn apply(&mut self, batches: &[Vec<Prepared>], now_ms: i64) -> Result<Vec<Applied>>;
    /// Charges the pending reports that end at or before `until_ms`, each with
    /// what `charge` says, in one transaction; they leave the pending table.
    fn settle(
        &mut self,
        until_ms: i64,
        now_ms: i64,
        charge: &mut dyn FnMut(&Report) -> Vec<GpuCharge>,
    ) -> Result<Settled>;
    /// Reports waiting to be charged.
    fn pending_count(&self) -> Result<u64>;
    /// Saves runs of jobs the scheduler told of (new or changed).
    fn save_runs(&mut self, runs: &[Run]) -> Result<()>;
    /// Runs that had not ended by `since_ms` (to rebuild the scheduler's history at start).
    fn load_runs(&self, since_ms: i64) -> Result<Vec<Run>>;

    // Findings and their notifications.
    /// Saves findings raised or cleared (keyed by id and first seen), with when each was last notified.
    fn save_findings(&mut self, findings: &[(Finding, Option<i64>)]) -> Result<()>;
    /// Active findings, and those cleared since `since_ms`, with when each was last notified.
    fn load_findings(&self, since_ms: i64) -> Result<Vec<(Finding, Option<i64>)>>;
    /// Findings that held at some time within [from_ms, to_ms).
    fn findings_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Finding>>;
    /// Queues notifications (receiver, body); past `max` queued, the oldest are
    /// dropped: returns how many.
    fn outbox_push(&mut self, items: &[(String, String)], now_ms: i64, max: usize) -> Result<u64>;
    /// Notifications due by `now_ms`, oldest first.
    fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>>;
    /// A notification delivered (`next_ms` None) or to retry at `next_ms`.
    fn outbox_update(&mut self, id: i64, next_ms: Option<i64>, error: Option<&str>) -> Result<()>;
    /// Notifications queued.
    fn outbox_len(&self) -> Result<u64>;
    /// The last report of each node (those over `limits` are skipped, logged), with when the node was first seen.
    fn last_reports(&self, limits: jazari_wire::DecodeLimits) -> Result<Vec<(Report, i64)>>;
    /// Whether other collectors write to this store too (their nodes are
    /// then read back with [`Store::reports_stored_since`]).
    fn shared(&self) -> bool {
        false
    }
    /// Whether this collector leads those sharing the store (records findings
    /// and queues notifications): always, alone; with others, the one that
    /// holds the store's leader lock on this connection, until it is lost.
    fn lead(&self) -> Result<bool> {
        Ok(true)
    }
    /// The last report of each node stored since `since_ms` on the store's
    /// clock (by any collector), and the store's clock now.
    fn reports_stored_since(
        &self,
        _limits: jazari_wire::DecodeLimits,
        since_ms: i64,
    ) -> Result<(Vec<(Report, i64)>, i64)> {
        Ok((vec![], since_ms))
    }

    /// Ledger sums for hour buckets starting in [from_s, to_s), grouped, optionally for one
    /// institute and for some nodes only.
    fn usage(&self, from_s: i64, to_s: i64, group: GroupBy, filter: &Filter) -> Result<Vec<UsageRow>>;
    /// An institute's ledger in [from_s, to_s), summed over nodes and GPUs.
    fn use_rows(&self, institute: &str, from_s: i64, to_s: i64) -> Result<Vec<UseRow>>;
    /// The fine ledger's rows for hours starting in [from_s, to_s), in key order.
    fn ledger_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<Charge>>;
    /// When the store's data begins: the start of the oldest time still held
    /// as charged, or of the oldest ledger hour (ms); None when empty.
    fn data_since(&self) -> Result<Option<i64>>;
    /// Daily roll-up rows for days starting in [from_s, to_s).
    fn day_rows(&self, from_s: i64, to_s: i64, institute: Option<&str>) -> Result<Vec<DayRow>>;
    /// Hourly roll-up per institute for hours starting in [from_s, to_s).
    fn hour_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<HourRow>>;

    /// Per node: reports received and seconds covered, for buckets starting in [from_s, to_s).
    fn coverage(&self, from_s: i64, to_s: i64) -> Result<Vec<CoverageRow>>;
    /// Coverage of [from_s, to_s) (whole days) in the shape reports read.
    fn coverage_input(&self, from_s: i64, to_s: i64) -> Result<CoverageInput>;
    /// Per node and hour: seconds covered, and when.
    fn coverage_hours(&self, from_s: i64, to_s: i64) -> Result<Vec<CoveredHour>>;

    /// History points at a resolution.
    fn history(
        &self,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
        node: Option<&str>,
        gpu: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryPoint>>;
    /// Cluster-wide series in buckets of `bucket_ms` from history at
    /// `resolution`: mean utilisation, power and allocated GPUs.
    fn cluster_series(
        &self,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<SeriesPoint>> {
        let mut acc = shared::SeriesAcc::default();
        for p in self.history(resolution, from_ms, to_ms, None, None, usize::MAX)? {
            acc.add(p, bucket_ms);
        }
        Ok(acc.finish())
    }
    /// Downsamples history and prunes what is past its retention; returns rows deleted.
    fn downsample_and_prune(&mut self, now_ms: i64, keep: &Keep) -> Result<usize>;
}

/// The [`Store`] methods both backends answer with inherent methods of the
/// same names (written once here, used inside each `impl Store`).
macro_rules! store_methods {
    () => {
        fn insert_token(&self, t: &TokenRow) -> Result<()> {
            self.insert_token_row(t)
        }
        fn token(&self, id: &str) -> Result<Option<TokenRow>> {
            self.token_row(id)
        }
        fn tokens(&self) -> Result<Vec<TokenRow>> {
            self.token_rows()
        }
        fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool> {
            self.revoke(id, now_ms)
        }
        fn apply(&mut self, batches: &[Vec<Prepared>], now_ms: i64) -> Result<Vec<Applied>> {
            self.apply_batches(batches, now_ms)
        }
        fn settle(
            &mut self,
            until_ms: i64,
            now_ms: i64,
            charge: &mut dyn FnMut(&Report) -> Vec<GpuCharge>,
        ) -> Result<Settled> {
            self.settle_pending(until_ms, now_ms, charge)
        }
        fn save_runs(&mut self, runs: &[Run]) -> Result<()> {
            self.put_runs(runs)
        }
        fn load_runs(&self, since_ms: i64) -> Result<Vec<Run>> {
            self.get_runs(since_ms)
        }
        fn save_findings(&mut self, findings: &[(Finding, Option<i64>)]) -> Result<()> {
            self.put_findings(findings)
        }
        fn load_findings(&self, since_ms: i64) -> Result<Vec<(Finding, Option<i64>)>> {
            self.get_findings(since_ms)
        }
        fn findings_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Finding>> {
            self.get_findings_between(from_ms, to_ms)
        }
        fn outbox_push(&mut self, items: &[(String, String)], now_ms: i64, max: usize) -> Result<u64> {
            self.push_outbox(items, now_ms, max)
        }
        fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxItem>> {
            self.due_outbox(now_ms, limit)
        }
        fn outbox_update(&mut self, id: i64, next_ms: Option<i64>, error: Option<&str>) -> Result<()> {
            self.update_outbox(id, next_ms, error)
        }
        fn usage(&self, from_s: i64, to_s: i64, group: GroupBy, filter: &Filter) -> Result<Vec<UsageRow>> {
            self.usage_rows(from_s, to_s, group, filter)
        }
        fn use_rows(&self, institute: &str, from_s: i64, to_s: i64) -> Result<Vec<UseRow>> {
            self.institute_rows(institute, from_s, to_s)
        }
        fn ledger_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<Charge>> {
            self.fine_rows(from_s, to_s)
        }
        fn data_since(&self) -> Result<Option<i64>> {
            self.oldest_data()
        }
        fn day_rows(&self, from_s: i64, to_s: i64, institute: Option<&str>) -> Result<Vec<DayRow>> {
            self.days(from_s, to_s, institute)
        }
        fn hour_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<HourRow>> {
            self.hours(from_s, to_s)
        }
        fn coverage(&self, from_s: i64, to_s: i64) -> Result<Vec<CoverageRow>> {
            self.coverage_rows(from_s, to_s)
        }
        fn coverage_input(&self, from_s: i64, to_s: i64) -> Result<CoverageInput> {
            self.report_coverage(from_s, to_s)
        }
        fn coverage_hours(&self, from_s: i64, to_s: i64) -> Result<Vec<CoveredHour>> {
            self.hourly_coverage(from_s, to_s)
        }
        fn history(
            &self,
            resolution: Resolution,
            from_ms: i64,
            to_ms: i64,
            node: Option<&str>,
            gpu: Option<&str>,
            limit: usize,
        ) -> Result<Vec<HistoryPoint>> {
            self.history_points(resolution, from_ms, to_ms, node, gpu, limit)
        }
        fn downsample_and_prune(&mut self, now_ms: i64, keep: &Keep) -> Result<usize> {
            self.prune(now_ms, keep)
        }
    };
}
pub(crate) use store_methods;

/// Opens the store at `location`: a `postgres://` URL, else a SQLite file
/// path (created if needed).
pub fn open(location: &Path) -> Result<Box<dyn Store>> {
    match location.to_str() {
        Some(url) if postgres::is_url(url) => Ok(Box::new(postgres::PgStore::open(url)?)),
        _ => Ok(Box::new(sqlite::SqliteStore::open(location)?)),
    }
}

/// Another connection to a store that [`open`] opened in this process (its
/// schema is up to date): a SQLite reader then takes no write lock to check it.
pub fn open_again(location: &Path) -> Result<Box<dyn Store>> {
    match location.to_str() {
        Some(url) if postgres::is_url(url) => Ok(Box::new(postgres::PgStore::open(url)?)),
        _ => Ok(Box::new(sqlite::SqliteStore::open_again(location)?)),
    }
}

/// The store's location as messages and logs show it (never a password).
pub fn describe(location: &Path) -> String {
    postgres::redact(&location.to_string_lossy())
}

/// A store error, naming the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error(
        "store {path}: the folder {dir} does not exist and cannot be made ({source}); create it or give another --store"
    )]
    NoDir { path: PathBuf, dir: PathBuf, source: std::io::Error },
    #[error("store {store}: {source}")]
    Postgres { store: String, source: ::postgres::Error },
    #[error("store {store}: {message}")]
    Config { store: String, message: String },
    #[error("store {path} has schema version {found}, newer than this build ({supported}); upgrade jazari")]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("cannot start a store thread: {0}")]
    Thread(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A stored token (never the secret).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub hash: Vec<u8>,
    pub role: String,
    pub scope: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// What a usage query is limited to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub institute: Option<&'a str>,
    pub nodes: Option<&'a [String]>,
}

/// One row of a usage query: the group's value (empty for idle capacity) and the sums.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub key: String,
    pub amounts: Amounts,
}

/// What applying one batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    pub outcome: BatchOutcome,
    /// Positions in the batch of the reports already held (nothing was done with them).
    pub duplicates: Vec<usize>,
    /// Nodes whose reports overlapped time already charged, and the GPU-seconds
    /// (and node-seconds) not charged again.
    pub overlaps: Vec<(String, f64)>,
}

/// What settling pending reports did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settled {
    pub charged: usize,
    /// Nodes whose reports overlapped time already charged, and the seconds not charged again.
    pub overlaps: Vec<(String, f64)>,
}

/// Retention, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub raw_ms: i64,
    pub minute_ms: i64,
    pub hour_ms: i64,
    /// Reports older than this cannot be deduplicated and are refused.
    pub dedup_ms: i64,
}
