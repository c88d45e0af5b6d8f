//! SQLite store: tokens, the deduplication record, the ledger, coverage,
//! history and the last report of each node.
//!
//! Exactly-once: a report's dedup row, its ledger charges, coverage and
//! history are written in one transaction; a report whose (node, instance,
//! seq) is already there changes nothing.

use crate::accounting::{Amounts, Charge, split_hours};
use jazari_agent::wire::Report;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(
  id TEXT PRIMARY KEY, hash BLOB NOT NULL, role TEXT NOT NULL, scope TEXT NOT NULL,
  created_ms INTEGER NOT NULL, revoked_ms INTEGER);
CREATE TABLE IF NOT EXISTS seen(
  node TEXT NOT NULL, instance TEXT NOT NULL, upto INTEGER NOT NULL, extra TEXT NOT NULL, last_ms INTEGER NOT NULL,
  PRIMARY KEY(node, instance)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger(
  hour INTEGER NOT NULL, institute TEXT NOT NULL, account TEXT NOT NULL, user TEXT NOT NULL,
  job TEXT NOT NULL, node TEXT NOT NULL, gpu TEXT NOT NULL,
  capacity_s REAL NOT NULL, allocated_s REAL NOT NULL, busy_s REAL NOT NULL,
  idle_allocated_s REAL NOT NULL, unscheduled_s REAL NOT NULL, energy_j REAL NOT NULL,
  PRIMARY KEY(hour, institute, account, user, job, node, gpu)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_day(
  day INTEGER NOT NULL, institute TEXT NOT NULL, account TEXT NOT NULL, user TEXT NOT NULL, job TEXT NOT NULL,
  capacity_s REAL NOT NULL, allocated_s REAL NOT NULL, busy_s REAL NOT NULL,
  idle_allocated_s REAL NOT NULL, unscheduled_s REAL NOT NULL, energy_j REAL NOT NULL,
  PRIMARY KEY(day, institute, account, user, job)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_hour(
  hour INTEGER NOT NULL, institute TEXT NOT NULL,
  capacity_s REAL NOT NULL, allocated_s REAL NOT NULL, busy_s REAL NOT NULL,
  idle_allocated_s REAL NOT NULL, unscheduled_s REAL NOT NULL, energy_j REAL NOT NULL,
  PRIMARY KEY(hour, institute)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage(
  hour INTEGER NOT NULL, node TEXT NOT NULL, covered_s REAL NOT NULL, reports INTEGER NOT NULL,
  PRIMARY KEY(hour, node)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coverage_node ON coverage(node, hour);
CREATE TABLE IF NOT EXISTS coverage_day(
  day INTEGER NOT NULL, node TEXT NOT NULL, covered_s REAL NOT NULL,
  PRIMARY KEY(day, node)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes(
  node TEXT PRIMARY KEY, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, last_report TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history_raw(
  node TEXT NOT NULL, ts_ms INTEGER NOT NULL, gpus TEXT NOT NULL,
  PRIMARY KEY(node, ts_ms)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_raw_ts ON history_raw(ts_ms);
CREATE TABLE IF NOT EXISTS history(
  resolution TEXT NOT NULL, node TEXT NOT NULL, gpu TEXT NOT NULL, ts_ms INTEGER NOT NULL,
  util REAL, mem_used REAL, power_w REAL, temp REAL, allocated REAL,
  PRIMARY KEY(resolution, node, gpu, ts_ms)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_ts ON history(resolution, ts_ms);
";

/// A store error, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("store {path}: the folder {dir} does not exist; create it or give another --store")]
    NoDir { path: PathBuf, dir: PathBuf },
    #[error("store {path} has schema version {found}, newer than this build ({SCHEMA_VERSION}); upgrade jazari")]
    TooNew { path: PathBuf, found: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One open store connection.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A stored token (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub id: String,
    #[serde(skip)]
    pub hash: Vec<u8>,
    pub role: String,
    pub scope: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// One row of a usage query.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UsageRow {
    pub key: String,
    #[serde(flatten)]
    pub amounts: Amounts,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    pub accepted: usize,
    pub duplicates: usize,
}

/// One bucket of a cluster-wide series.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SeriesPoint {
    pub ts_ms: i64,
    pub util_pct: Option<f64>,
    pub power_w: f64,
    pub allocated_gpus: f64,
    pub gpus: u64,
}

/// One row of the daily roll-up.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DayRow {
    pub day: i64,
    pub institute: String,
    pub account: String,
    pub user: String,
    pub job: String,
    pub amounts: Amounts,
}

/// Reports received from one node.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CoverageRow {
    pub node: String,
    pub reports: i64,
    pub covered_s: f64,
    pub first_hour: i64,
    pub last_hour: i64,
}

/// One point of history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    pub node: String,
    pub gpu: String,
    pub ts_ms: i64,
    pub util: Option<f64>,
    pub mem_used: Option<f64>,
    pub power_w: Option<f64>,
    pub temp: Option<f64>,
    pub allocated: Option<f64>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            return Err(StoreError::NoDir { path: path.to_path_buf(), dir: dir.to_path_buf() });
        }
        let err = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(err)?;
        let s = Self { conn, path: path.to_path_buf() };
        s.conn
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;")
            .map_err(err)?;
        s.migrate()?;
        Ok(s)
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

    fn migrate(&self) -> Result<()> {
        self.conn.execute_batch(SCHEMA).map_err(self.err())?;
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key='schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::TooNew { path: self.path.clone(), found: v }),
            Some(_) => Ok(()),
            None => self
                .conn
                .execute("INSERT INTO meta(key, value) VALUES('schema_version', ?1)", [SCHEMA_VERSION.to_string()])
                .map(|_| ())
                .map_err(self.err()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(())).map_err(self.err())
    }

    // ---- tokens ----

    pub fn insert_token(&self, t: &TokenRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO tokens(id, hash, role, scope, created_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
                params![t.id, t.hash, t.role, t.scope, t.created_ms],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        self.conn
            .query_row(
                "SELECT id, hash, role, scope, created_ms, revoked_ms FROM tokens WHERE id = ?1",
                [id],
                token_row,
            )
            .optional()
            .map_err(self.err())
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        self.query(
            "SELECT id, hash, role, scope, created_ms, revoked_ms FROM tokens ORDER BY created_ms, id",
            [],
            token_row,
        )
    }

    /// Revokes a token; false when there is no such (unrevoked) token.
    pub fn revoke_token(&self, id: &str, now_ms: i64) -> Result<bool> {
        self.conn
            .execute("UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL", params![id, now_ms])
            .map(|n| n > 0)
            .map_err(self.err())
    }

    // ---- ingest ----

    /// Applies several batches in one transaction (group commit). Each batch
    /// gets its own outcome. Nothing is written unless everything is.
    pub fn apply(&mut self, batches: &[Vec<Prepared>]) -> Result<Vec<BatchOutcome>> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        let mut outcomes = Vec::with_capacity(batches.len());
        {
            let mut seen_get =
                tx.prepare_cached("SELECT upto, extra FROM seen WHERE node = ?1 AND instance = ?2").map_err(err)?;
            let mut seen_put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO seen(node, instance, upto, extra, last_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            // What each agent instance has delivered, loaded once per group.
            let mut marks: HashMap<(&str, &str), Seen> = HashMap::new();
            let mut ledger = tx
                .prepare_cached(
                    "INSERT INTO ledger(hour, institute, account, user, job, node, gpu,
                       capacity_s, allocated_s, busy_s, idle_allocated_s, unscheduled_s, energy_j)
                     VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT(hour, institute, account, user, job, node, gpu) DO UPDATE SET
                       capacity_s = capacity_s + excluded.capacity_s,
                       allocated_s = allocated_s + excluded.allocated_s,
                       busy_s = busy_s + excluded.busy_s,
                       idle_allocated_s = idle_allocated_s + excluded.idle_allocated_s,
                       unscheduled_s = unscheduled_s + excluded.unscheduled_s,
                       energy_j = energy_j + excluded.energy_j",
                )
                .map_err(err)?;
            let mut coverage = tx
                .prepare_cached(
                    "INSERT INTO coverage(hour, node, covered_s, reports) VALUES(?1, ?2, ?3, ?4)
                     ON CONFLICT(hour, node) DO UPDATE SET covered_s = covered_s + excluded.covered_s,
                       reports = reports + excluded.reports",
                )
                .map_err(err)?;
            let mut history = tx
                .prepare_cached("INSERT OR REPLACE INTO history_raw(node, ts_ms, gpus) VALUES(?1, ?2, ?3)")
                .map_err(err)?;
            let mut node = tx
                .prepare_cached(
                    "INSERT INTO nodes(node, first_seen_ms, last_seen_ms, last_report) VALUES(?1, ?2, ?2, ?3)
                     ON CONFLICT(node) DO UPDATE SET last_seen_ms = excluded.last_seen_ms,
                       last_report = excluded.last_report WHERE excluded.last_seen_ms >= nodes.last_seen_ms",
                )
                .map_err(err)?;
            // Charges and coverage of the fresh reports, summed per bucket and
            // key before they touch the tables: a node replaying its spool
            // sends many reports for the same GPUs and hours.
            let mut sums: HashMap<(i64, &crate::accounting::LedgerKey), Amounts> = HashMap::new();
            let mut cov: HashMap<(i64, &str), (f64, i64)> = HashMap::new();
            for batch in batches {
                let mut out = BatchOutcome::default();
                for Prepared { report: r, charges, history: raw, .. } in batch {
                    let key = (r.node.as_str(), r.instance.as_str());
                    if let std::collections::hash_map::Entry::Vacant(e) = marks.entry(key) {
                        let row: Option<(i64, String)> = seen_get
                            .query_row(params![key.0, key.1], |x| Ok((x.get(0)?, x.get(1)?)))
                            .optional()
                            .map_err(err)?;
                        let mark = row.map(|(upto, extra)| Seen::from_row(upto, &extra)).unwrap_or_default();
                        e.insert(mark);
                    }
                    let mark = marks.get_mut(&key).expect("loaded");
                    mark.last_ms = mark.last_ms.max(r.interval_end_ms);
                    if !mark.insert(r.seq as i64) {
                        out.duplicates += 1;
                        continue;
                    }
                    out.accepted += 1;
                    for c in charges {
                        sums.entry((c.hour, &c.key)).or_default().add(&c.amounts);
                    }
                    let dt = r.interval_s();
                    // A report counts once, in the hour its interval ends.
                    let end_hour = (r.interval_end_ms - 1).div_euclid(3_600_000) * 3600;
                    split_hours(r.interval_start_ms, r.interval_end_ms, |h, f| {
                        let e = cov.entry((h, r.node.as_str())).or_default();
                        e.0 += f * dt;
                        e.1 += i64::from(h == end_hour);
                    });
                    history.execute(params![r.node, r.interval_end_ms, raw]).map_err(err)?;
                }
                outcomes.push(out);
            }
            for ((node_name, instance), mark) in &marks {
                let (upto, extra) = mark.to_row();
                seen_put.execute(params![node_name, instance, upto, extra, mark.last_ms]).map_err(err)?;
            }
            for ((hour, k), a) in &sums {
                ledger
                    .execute(params![
                        hour,
                        k.institute,
                        k.account,
                        k.user,
                        k.job,
                        k.node,
                        k.gpu,
                        a.capacity_s,
                        a.allocated_s,
                        a.busy_s,
                        a.idle_allocated_s,
                        a.unscheduled_s,
                        a.energy_j
                    ])
                    .map_err(err)?;
            }
            let mut cov_day: HashMap<(i64, &str), f64> = HashMap::new();
            for ((hour, node), (secs, n)) in &cov {
                coverage.execute(params![hour, node, secs, n]).map_err(err)?;
                *cov_day.entry((hour.div_euclid(86400) * 86400, node)).or_default() += secs;
            }
            let mut up_cov_day = tx
                .prepare_cached(
                    "INSERT INTO coverage_day(day, node, covered_s) VALUES(?1, ?2, ?3)
                     ON CONFLICT(day, node) DO UPDATE SET covered_s = covered_s + excluded.covered_s",
                )
                .map_err(err)?;
            for ((day, node), secs) in &cov_day {
                up_cov_day.execute(params![day, node, secs]).map_err(err)?;
            }
            // Roll-ups the reports read: per day and job (no node or GPU), and per hour and institute.
            let mut day: HashMap<(i64, &str, &str, &str, &str), Amounts> = HashMap::new();
            let mut hour: HashMap<(i64, &str), Amounts> = HashMap::new();
            for ((h, k), a) in &sums {
                day.entry((h.div_euclid(86400) * 86400, &k.institute, &k.account, &k.user, &k.job)).or_default().add(a);
                hour.entry((*h, &k.institute)).or_default().add(a);
            }
            let mut up_day = tx
                .prepare_cached(
                    "INSERT INTO ledger_day(day, institute, account, user, job, capacity_s, allocated_s, busy_s,
                       idle_allocated_s, unscheduled_s, energy_j) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT(day, institute, account, user, job) DO UPDATE SET
                       capacity_s = capacity_s + excluded.capacity_s, allocated_s = allocated_s + excluded.allocated_s,
                       busy_s = busy_s + excluded.busy_s, idle_allocated_s = idle_allocated_s + excluded.idle_allocated_s,
                       unscheduled_s = unscheduled_s + excluded.unscheduled_s, energy_j = energy_j + excluded.energy_j",
                )
                .map_err(err)?;
            for ((d, i, acc, u, j), a) in &day {
                up_day
                    .execute(params![
                        d,
                        i,
                        acc,
                        u,
                        j,
                        a.capacity_s,
                        a.allocated_s,
                        a.busy_s,
                        a.idle_allocated_s,
                        a.unscheduled_s,
                        a.energy_j
                    ])
                    .map_err(err)?;
            }
            let mut up_hour = tx
                .prepare_cached(
                    "INSERT INTO ledger_hour(hour, institute, capacity_s, allocated_s, busy_s, idle_allocated_s,
                       unscheduled_s, energy_j) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT(hour, institute) DO UPDATE SET
                       capacity_s = capacity_s + excluded.capacity_s, allocated_s = allocated_s + excluded.allocated_s,
                       busy_s = busy_s + excluded.busy_s, idle_allocated_s = idle_allocated_s + excluded.idle_allocated_s,
                       unscheduled_s = unscheduled_s + excluded.unscheduled_s, energy_j = energy_j + excluded.energy_j",
                )
                .map_err(err)?;
            for ((h, i), a) in &hour {
                up_hour
                    .execute(params![
                        h,
                        i,
                        a.capacity_s,
                        a.allocated_s,
                        a.busy_s,
                        a.idle_allocated_s,
                        a.unscheduled_s,
                        a.energy_j
                    ])
                    .map_err(err)?;
            }
            // The newest report of each node, once per group.
            let mut last: HashMap<&str, (i64, &str)> = HashMap::new();
            for p in batches.iter().flatten() {
                let Some(text) = &p.snapshot else { continue };
                let r = &p.report;
                let e = last.entry(r.node.as_str()).or_insert((r.interval_end_ms, text));
                if r.interval_end_ms > e.0 {
                    *e = (r.interval_end_ms, text);
                }
            }
            for (node_name, (end_ms, text)) in last {
                node.execute(params![node_name, end_ms, text]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(outcomes)
    }

    /// The last report of every node known to the store.
    pub fn last_reports(&self) -> Result<Vec<(Report, i64)>> {
        let mut st = self.conn.prepare("SELECT last_report, first_seen_ms FROM nodes").map_err(self.err())?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.err())?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(self.err())?;
        Ok(rows.into_iter().filter_map(|(t, first)| serde_json::from_str(&t).ok().map(|r| (r, first))).collect())
    }

    // ---- reads ----

    /// Ledger sums for buckets starting in [from_s, to_s), grouped by `group`
    /// (a ledger key column), optionally for one institute.
    pub fn usage(&self, from_s: i64, to_s: i64, group: GroupBy, institute: Option<&str>) -> Result<Vec<UsageRow>> {
        let col = group.column();
        let sql = format!(
            "SELECT {col}, SUM(capacity_s), SUM(allocated_s), SUM(busy_s), SUM(idle_allocated_s),
                    SUM(unscheduled_s), SUM(energy_j)
             FROM ledger WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR institute = ?3)
             GROUP BY {col} ORDER BY {col}"
        );
        self.query(&sql, params![from_s, to_s, institute], |r| {
            Ok(UsageRow { key: r.get(0)?, amounts: amounts_at(r, 1)? })
        })
    }

    /// Per node: reports received and seconds covered, for buckets starting in [from_s, to_s).
    pub fn coverage(&self, from_s: i64, to_s: i64) -> Result<Vec<CoverageRow>> {
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
    pub fn coverage_input(&self, from_s: i64, to_s: i64) -> Result<crate::report::CoverageInput> {
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
        let mut out = crate::report::CoverageInput::default();
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
    pub fn coverage_hours(&self, from_s: i64, to_s: i64) -> Result<Vec<(String, i64, f64)>> {
        self.query(
            "SELECT node, hour, covered_s FROM coverage WHERE hour >= ?1 AND hour < ?2 ORDER BY node, hour",
            params![from_s, to_s],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// An institute's ledger in [from_s, to_s), summed over nodes and GPUs.
    pub fn use_rows(&self, institute: &str, from_s: i64, to_s: i64) -> Result<Vec<crate::quota::UseRow>> {
        self.query(
            "SELECT hour, account, user, job, SUM(capacity_s), SUM(allocated_s), SUM(busy_s), SUM(idle_allocated_s),
                        SUM(unscheduled_s), SUM(energy_j)
                 FROM ledger WHERE institute = ?1 AND hour >= ?2 AND hour < ?3
                 GROUP BY hour, account, user, job",
            params![institute, from_s, to_s],
            |r| {
                Ok(crate::quota::UseRow {
                    hour: r.get(0)?,
                    account: r.get(1)?,
                    user: r.get(2)?,
                    job: r.get(3)?,
                    amounts: amounts_at(r, 4)?,
                })
            },
        )
    }

    /// Daily roll-up rows (day, institute, account, user, job) for days starting in [from_s, to_s).
    pub fn day_rows(&self, from_s: i64, to_s: i64, institute: Option<&str>) -> Result<Vec<DayRow>> {
        self.query(
            "SELECT day, institute, account, user, job, capacity_s, allocated_s, busy_s, idle_allocated_s,
                        unscheduled_s, energy_j
                 FROM ledger_day WHERE day >= ?1 AND day < ?2 AND (?3 IS NULL OR institute = ?3)",
            params![from_s, to_s, institute],
            |r| {
                Ok(DayRow {
                    day: r.get(0)?,
                    institute: r.get(1)?,
                    account: r.get(2)?,
                    user: r.get(3)?,
                    job: r.get(4)?,
                    amounts: amounts_at(r, 5)?,
                })
            },
        )
    }

    /// Hourly roll-up per institute for hours starting in [from_s, to_s).
    pub fn hour_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<(i64, String, Amounts)>> {
        self.query(
            "SELECT hour, institute, capacity_s, allocated_s, busy_s, idle_allocated_s, unscheduled_s, energy_j
                 FROM ledger_hour WHERE hour >= ?1 AND hour < ?2",
            params![from_s, to_s],
            |r| Ok((r.get(0)?, r.get(1)?, amounts_at(r, 2)?)),
        )
    }

    /// Raw ledger rows in [from_s, to_s) (reports, tests).
    pub fn ledger_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<Charge>> {
        self.query(
            "SELECT hour, institute, account, user, job, node, gpu, capacity_s, allocated_s, busy_s,
                        idle_allocated_s, unscheduled_s, energy_j
                 FROM ledger WHERE hour >= ?1 AND hour < ?2 ORDER BY hour, institute, account, user, job, node, gpu",
            params![from_s, to_s],
            |r| {
                Ok(Charge {
                    hour: r.get(0)?,
                    key: crate::accounting::LedgerKey {
                        institute: r.get(1)?,
                        account: r.get(2)?,
                        user: r.get(3)?,
                        job: r.get(4)?,
                        node: r.get(5)?,
                        gpu: r.get(6)?,
                    },
                    amounts: amounts_at(r, 7)?,
                })
            },
        )
    }

    /// History points at a resolution ("raw", "minute" or "hour").
    pub fn history(
        &self,
        resolution: &str,
        from_ms: i64,
        to_ms: i64,
        node: Option<&str>,
        gpu: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryPoint>> {
        if resolution == "raw" {
            let mut out = Vec::new();
            self.raw_history(from_ms, to_ms, node, |p| {
                if gpu.is_none_or(|g| g == p.gpu) && out.len() < limit {
                    out.push(p);
                }
            })?;
            out.sort_by(|a, b| (a.ts_ms, &a.node, &a.gpu).cmp(&(b.ts_ms, &b.node, &b.gpu)));
            return Ok(out);
        }
        self.query(
            "SELECT node, gpu, ts_ms, util, mem_used, power_w, temp, allocated FROM history
                 WHERE resolution = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND (?4 IS NULL OR node = ?4)
                   AND (?5 IS NULL OR gpu = ?5)
                 ORDER BY ts_ms, node, gpu LIMIT ?6",
            params![resolution, from_ms, to_ms, node, gpu, limit as i64],
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

    /// Cluster-wide series in buckets of `bucket_ms`: mean utilisation, power
    /// and allocated GPUs, from history at `resolution`.
    pub fn cluster_series(
        &self,
        resolution: &str,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<SeriesPoint>> {
        #[derive(Default)]
        struct Acc {
            n: f64,
            util: f64,
            util_n: f64,
            power: f64,
            allocated: f64,
            gpus: std::collections::HashSet<(String, String)>,
        }
        let mut acc: std::collections::BTreeMap<i64, Acc> = Default::default();
        let mut add = |p: HistoryPoint| {
            let a = acc.entry(p.ts_ms.div_euclid(bucket_ms) * bucket_ms).or_default();
            a.n += 1.0;
            if let Some(u) = p.util {
                a.util += u;
                a.util_n += 1.0;
            }
            a.power += p.power_w.unwrap_or(0.0);
            a.allocated += p.allocated.unwrap_or(0.0);
            a.gpus.insert((p.node, p.gpu));
        };
        if resolution == "raw" {
            self.raw_history(from_ms, to_ms, None, &mut add)?;
        } else {
            for p in self.history(resolution, from_ms, to_ms, None, None, usize::MAX)? {
                add(p);
            }
        }
        Ok(acc
            .into_iter()
            .map(|(ts_ms, a)| {
                let gpus = a.gpus.len() as f64;
                SeriesPoint {
                    ts_ms,
                    util_pct: (a.util_n > 0.0).then(|| a.util / a.util_n),
                    power_w: a.power / a.n * gpus,
                    allocated_gpus: a.allocated / a.n * gpus,
                    gpus: gpus as u64,
                }
            })
            .collect())
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
            let Ok(gpus) = serde_json::from_str::<Vec<RawGpu>>(&text) else { continue };
            for g in gpus {
                f(HistoryPoint {
                    node: node.clone(),
                    gpu: g.0,
                    ts_ms,
                    util: g.1,
                    mem_used: g.2,
                    power_w: g.3,
                    temp: g.4,
                    allocated: g.5,
                });
            }
        }
        Ok(())
    }

    /// Downsamples raw history into minutes and minutes into hours (complete
    /// buckets only), then prunes each resolution past its retention and the
    /// dedup record past the dedup horizon. Returns rows deleted.
    pub fn downsample_and_prune(&mut self, now_ms: i64, keep: &Keep) -> Result<usize> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(err)?;
        // Raw → minute, in Rust (raw rows hold all GPUs of a report).
        let done: i64 = tx
            .query_row("SELECT COALESCE(MAX(ts_ms) + 60000, 0) FROM history WHERE resolution = 'minute'", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        let upto = now_ms.div_euclid(60_000) * 60_000;
        let mut acc: HashMap<(String, String, i64), [(f64, u32); 5]> = HashMap::new();
        {
            let mut st = tx
                .prepare("SELECT node, ts_ms, gpus FROM history_raw WHERE ts_ms >= ?1 AND ts_ms < ?2")
                .map_err(err)?;
            let mut rows = st.query(params![done, upto]).map_err(err)?;
            while let Some(r) = rows.next().map_err(err)? {
                let node: String = r.get(0).map_err(err)?;
                let ts: i64 = r.get(1).map_err(err)?;
                let text: String = r.get(2).map_err(err)?;
                let Ok(gpus) = serde_json::from_str::<Vec<RawGpu>>(&text) else { continue };
                for g in gpus {
                    let e = acc.entry((node.clone(), g.0.clone(), ts.div_euclid(60_000) * 60_000)).or_default();
                    for (slot, v) in e.iter_mut().zip([g.1, g.2, g.3, g.4, g.5]) {
                        if let Some(v) = v {
                            slot.0 += v;
                            slot.1 += 1;
                        }
                    }
                }
            }
        }
        {
            let mut ins = tx
                .prepare(
                    "INSERT OR REPLACE INTO history(resolution, node, gpu, ts_ms, util, mem_used, power_w, temp, allocated)
                     VALUES('minute', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            let mean = |s: (f64, u32)| (s.1 > 0).then(|| s.0 / s.1 as f64);
            for ((node, gpu, ts), v) in &acc {
                ins.execute(params![node, gpu, ts, mean(v[0]), mean(v[1]), mean(v[2]), mean(v[3]), mean(v[4])])
                    .map_err(err)?;
            }
        }
        // Minute → hour, in SQL.
        let done: i64 = tx
            .query_row("SELECT COALESCE(MAX(ts_ms) + 3600000, 0) FROM history WHERE resolution = 'hour'", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        let upto = now_ms.div_euclid(3_600_000) * 3_600_000;
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
        deleted += tx.execute("DELETE FROM seen WHERE last_ms < ?1", params![now_ms - keep.dedup_ms]).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(deleted)
    }
}

/// One GPU in a raw history row: key, utilisation, memory used, power (W),
/// temperature, allocated (1 or 0).
#[derive(Debug, Serialize, serde::Deserialize)]
struct RawGpu(String, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>);

/// The sequence numbers one agent instance has delivered: all up to `upto`,
/// and the few beyond it that came early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub upto: i64,
    pub extra: std::collections::BTreeSet<i64>,
    pub last_ms: i64,
}

impl Default for Seen {
    fn default() -> Self {
        Self { upto: -1, extra: Default::default(), last_ms: 0 }
    }
}

impl Seen {
    fn from_row(upto: i64, extra: &str) -> Self {
        let extra = extra.split(',').filter_map(|x| x.parse().ok()).collect();
        Self { upto, extra, last_ms: 0 }
    }

    fn to_row(&self) -> (i64, String) {
        (self.upto, self.extra.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
    }

    /// Records `seq`; false when it was already delivered.
    pub fn insert(&mut self, seq: i64) -> bool {
        if seq <= self.upto || !self.extra.insert(seq) {
            return false;
        }
        while self.extra.remove(&(self.upto + 1)) {
            self.upto += 1;
        }
        true
    }
}

/// Adds [start, end) to sorted runs, merging with the last when they touch.
fn push_run(runs: &mut Vec<(i64, i64)>, start: i64, end: i64) {
    match runs.last_mut() {
        Some(last) if last.1 >= start => last.1 = last.1.max(end),
        _ => runs.push((start, end)),
    }
}

/// A report ready for the writer: decoded, charged, and with the text the
/// store keeps made outside the writer thread.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub report: Report,
    pub charges: Vec<Charge>,
    /// Raw history row (all GPUs of the report).
    pub history: String,
    /// The report as JSON, for the newest report of each node in a batch.
    pub snapshot: Option<String>,
}

impl Prepared {
    /// Prepares a batch; the newest report of each node carries its snapshot.
    pub fn batch(reports: Vec<Report>, charge: impl Fn(&Report) -> Vec<Charge>) -> Vec<Prepared> {
        let mut newest: HashMap<&str, (i64, usize)> = HashMap::new();
        for (i, r) in reports.iter().enumerate() {
            let e = newest.entry(r.node.as_str()).or_insert((r.interval_end_ms, i));
            if r.interval_end_ms > e.0 {
                *e = (r.interval_end_ms, i);
            }
        }
        let keep: std::collections::HashSet<usize> = newest.values().map(|v| v.1).collect();
        reports
            .into_iter()
            .enumerate()
            .map(|(i, report)| Prepared {
                charges: charge(&report),
                history: raw_history(&report),
                snapshot: keep.contains(&i).then(|| serde_json::to_string(&report).expect("reports serialise")),
                report,
            })
            .collect()
    }
}

fn raw_history(r: &Report) -> String {
    let gpus: Vec<RawGpu> = r
        .gpus
        .iter()
        .map(|g| {
            RawGpu(
                crate::accounting::gpu_key(g),
                g.util_gpu_pct.map(f64::from),
                g.mem_used_bytes.map(|b| b as f64),
                g.power_mw.map(|p| p as f64 / 1000.0),
                g.temperature_c.map(f64::from),
                Some(if crate::accounting::allocation(r, g).is_some() { 1.0 } else { 0.0 }),
            )
        })
        .collect();
    serde_json::to_string(&gpus).expect("history serialises")
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

/// The six ledger amounts, in table order, from column `first` on.
fn amounts_at(r: &rusqlite::Row, first: usize) -> rusqlite::Result<Amounts> {
    Ok(Amounts {
        capacity_s: r.get(first)?,
        allocated_s: r.get(first + 1)?,
        busy_s: r.get(first + 2)?,
        idle_allocated_s: r.get(first + 3)?,
        unscheduled_s: r.get(first + 4)?,
        energy_j: r.get(first + 5)?,
    })
}

fn token_row(r: &rusqlite::Row) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        hash: r.get(1)?,
        role: r.get(2)?,
        scope: r.get(3)?,
        created_ms: r.get(4)?,
        revoked_ms: r.get(5)?,
    })
}

/// The ledger column a usage query groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Institute,
    Account,
    User,
    Job,
    Node,
    Gpu,
    Hour,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "institute" => Self::Institute,
            "account" => Self::Account,
            "user" => Self::User,
            "job" => Self::Job,
            "node" => Self::Node,
            "gpu" => Self::Gpu,
            "hour" => Self::Hour,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Institute => "institute",
            Self::Account => "account",
            Self::User => "user",
            Self::Job => "job",
            Self::Node => "node",
            Self::Gpu => "gpu",
            Self::Hour => "hour",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Hour => "CAST(hour AS TEXT)",
            other => other.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_downsampled_to_minutes_and_hours_then_pruned() {
        use jazari_agent::wire::{Gpu, Host, WIRE_VERSION};
        let dir = std::env::temp_dir().join(format!("jazari-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir.join("s.sqlite")).unwrap();
        let t0 = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
        // Two minutes of reports every 10 s: utilisation 10, 20, … in the first minute, 70 in the second.
        let reports: Vec<Report> = (0..12)
            .map(|k| Report {
                version: WIRE_VERSION,
                node: "n1".into(),
                instance: "i".into(),
                seq: k as u64,
                interval_start_ms: t0 + k * 10_000,
                interval_end_ms: t0 + (k + 1) * 10_000 - 1,
                host: Host::default(),
                gpus: vec![Gpu {
                    index: 0,
                    uuid: Some("GPU-a".into()),
                    util_gpu_pct: Some(if k < 6 { 10 * (k as u32 + 1) } else { 70 }),
                    power_mw: Some(100_000),
                    ..Default::default()
                }],
                jobs: vec![],
                events: vec![],
            })
            .collect();
        store.apply(&[Prepared::batch(reports, |_| vec![])]).unwrap();
        let keep =
            Keep { raw_ms: 3_600_000, minute_ms: 48 * 3_600_000, hour_ms: 400 * 86_400_000, dedup_ms: 30 * 86_400_000 };
        // Ten minutes later: minutes are done, the hour is not, raw is kept.
        store.downsample_and_prune(t0 + 600_000, &keep).unwrap();
        let minutes = store.history("minute", t0, t0 + 3_600_000, None, None, 100).unwrap();
        assert_eq!(minutes.len(), 2);
        assert_eq!(minutes[0].util, Some(35.0), "mean of 10..60");
        assert_eq!(minutes[1].util, Some(70.0));
        assert_eq!(minutes[0].power_w, Some(100.0));
        assert!(store.history("hour", t0, t0 + 7_200_000, None, None, 100).unwrap().is_empty());
        assert_eq!(store.history("raw", t0, t0 + 3_600_000, None, None, 100).unwrap().len(), 12);
        // Two hours later: the hour is done and raw history past its hour of retention is gone.
        let n = store.downsample_and_prune(t0 + 2 * 3_600_000 + 60_000, &keep).unwrap();
        let hours = store.history("hour", t0, t0 + 7_200_000, None, None, 100).unwrap();
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].util, Some(52.5), "mean of the two minutes");
        assert!(store.history("raw", t0, t0 + 3_600_000, None, None, 100).unwrap().is_empty());
        assert!(n >= 12);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn coverage_from_the_daily_roll_up_matches_the_hours() {
        use jazari_agent::wire::{Host, WIRE_VERSION};
        let dir = std::env::temp_dir().join(format!("jazari-cov-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir.join("s.sqlite")).unwrap();
        let day0 = 1_767_225_600; // 2026-01-01
        let mut batch = vec![];
        let mut t = day0 * 1000;
        let mut seq = 0;
        // Four days every 10 minutes, with a 5-hour hole on day 2 and a short hour on day 3.
        while t < (day0 + 4 * 86_400) * 1000 {
            let next = t + 600_000;
            let h = (t / 1000 - day0) / 3600;
            let hole = (30..35).contains(&h);
            let short = h == 60 && (t / 1000) % 3600 >= 1800;
            if !hole && !short {
                let report = Report {
                    version: WIRE_VERSION,
                    node: "n1".into(),
                    instance: "i".into(),
                    seq,
                    interval_start_ms: t,
                    interval_end_ms: next,
                    host: Host::default(),
                    gpus: vec![],
                    jobs: vec![],
                    events: vec![],
                };
                seq += 1;
                batch.push(Prepared { report, charges: vec![], history: "[]".into(), snapshot: None });
            }
            t = next;
        }
        store.apply(&[batch]).unwrap();
        let (from, to) = (day0, day0 + 4 * 86_400);
        let mut fast = store.coverage_input(from, to).unwrap();
        let mut slow = crate::report::CoverageInput::from_hours(&store.coverage_hours(from, to).unwrap());
        for c in [&mut fast, &mut slow] {
            c.short.sort_by_key(|a| a.1);
            c.holes.sort();
        }
        assert_eq!(fast, slow);
        assert_eq!(fast.holes, vec![("n1".to_string(), day0 + 29 * 3600, day0 + 35 * 3600)]);
        assert_eq!(fast.short.len(), 1);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn seen_counts_each_sequence_number_once_whatever_the_order() {
        let mut s = Seen::default();
        assert!(s.insert(0));
        assert!(s.insert(2));
        assert!(!s.insert(2));
        assert!(!s.insert(0));
        assert_eq!((s.upto, s.extra.len()), (0, 1));
        assert!(s.insert(1));
        assert_eq!((s.upto, s.extra.len()), (2, 0));
        let (upto, extra) = s.to_row();
        let mut back = Seen::from_row(upto, &extra);
        assert!(!back.insert(1));
        assert!(back.insert(7));
        let (u, e) = back.to_row();
        assert_eq!((u, e.as_str()), (2, "7"));
        assert_eq!(Seen::from_row(u, &e).extra.len(), 1);
    }
}
