-- The SQLite store's schema, version 3, for a new store. An older store is
-- brought here by the steps in migrate.rs; every statement is safe to run twice.
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(
  id TEXT PRIMARY KEY, hash BLOB NOT NULL, role TEXT NOT NULL, scope TEXT NOT NULL,
  created_ms INTEGER NOT NULL, revoked_ms INTEGER);
-- Sequence numbers each agent instance delivered, as ranges `a-b,c-d`.
CREATE TABLE IF NOT EXISTS delivered(
  node TEXT NOT NULL, instance TEXT NOT NULL, ranges TEXT NOT NULL, last_ms INTEGER NOT NULL,
  PRIMARY KEY(node, instance)) WITHOUT ROWID;
-- Time already charged on a node and each of its GPUs (JSON interval sets).
CREATE TABLE IF NOT EXISTS charged(
  node TEXT PRIMARY KEY, sets TEXT NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledger(
  hour INTEGER NOT NULL, institute TEXT NOT NULL, account TEXT NOT NULL, user TEXT NOT NULL,
  job TEXT NOT NULL, node TEXT NOT NULL, gpu TEXT NOT NULL,
  capacity_s REAL NOT NULL, allocated_s REAL NOT NULL, busy_s REAL NOT NULL,
  idle_allocated_s REAL NOT NULL, unscheduled_s REAL NOT NULL, energy_j REAL NOT NULL,
  gpm_s REAL NOT NULL DEFAULT 0, sm_active_s REAL NOT NULL DEFAULT 0, tensor_active_s REAL NOT NULL DEFAULT 0,
  PRIMARY KEY(hour, institute, account, user, job, node, gpu)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_day(
  day INTEGER NOT NULL, institute TEXT NOT NULL, account TEXT NOT NULL, user TEXT NOT NULL, job TEXT NOT NULL,
  capacity_s REAL NOT NULL, allocated_s REAL NOT NULL, busy_s REAL NOT NULL,
  idle_allocated_s REAL NOT NULL, unscheduled_s REAL NOT NULL, energy_j REAL NOT NULL,
  gpm_s REAL NOT NULL DEFAULT 0, sm_active_s REAL NOT NULL DEFAULT 0, tensor_active_s REAL NOT NULL DEFAULT 0,
  PRIMARY KEY(day, institute, account, user, job)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_hour(
  hour INTEGER NOT NULL, institute TEXT NOT NULL,
  capacity_s REAL NOT NULL, allocated_s REAL NOT NULL, busy_s REAL NOT NULL,
  idle_allocated_s REAL NOT NULL, unscheduled_s REAL NOT NULL, energy_j REAL NOT NULL,
  gpm_s REAL NOT NULL DEFAULT 0, sm_active_s REAL NOT NULL DEFAULT 0, tensor_active_s REAL NOT NULL DEFAULT 0,
  peak_held_gpus REAL NOT NULL DEFAULT 0, peak_busy_gpus REAL NOT NULL DEFAULT 0,
  PRIMARY KEY(hour, institute)) WITHOUT ROWID;
-- GPU-seconds held (allocated or unscheduled) and busy per minute and institute,
-- for the peaks of ledger_hour; kept for the deduplication horizon.
CREATE TABLE IF NOT EXISTS ledger_minute(
  minute INTEGER NOT NULL, institute TEXT NOT NULL, held_s REAL NOT NULL, busy_s REAL NOT NULL,
  PRIMARY KEY(minute, institute)) WITHOUT ROWID;
-- Per hour and node: time covered by reports (each second once), reports
-- ending in the hour, and the earliest start and latest end of that time.
CREATE TABLE IF NOT EXISTS coverage(
  hour INTEGER NOT NULL, node TEXT NOT NULL, covered_s REAL NOT NULL, reports INTEGER NOT NULL,
  first_ms INTEGER NOT NULL DEFAULT 0, last_ms INTEGER NOT NULL DEFAULT 0,
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
-- Reports taken in but not charged yet: with a scheduler, a report is charged
-- once the scheduler's view of its time is complete (its jobs' starts and ends).
CREATE TABLE IF NOT EXISTS pending(
  node TEXT NOT NULL, instance TEXT NOT NULL, seq INTEGER NOT NULL, end_ms INTEGER NOT NULL, report TEXT NOT NULL,
  PRIMARY KEY(node, instance, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_end ON pending(end_ms);
-- Every run of every job the scheduler told of, with its start and end (JSON).
CREATE TABLE IF NOT EXISTS sched_runs(
  job TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER, run TEXT NOT NULL,
  PRIMARY KEY(job, start_ms)) WITHOUT ROWID;
-- Findings the rules raised, active (cleared_ms NULL) and cleared, with when
-- each was last notified (JSON of the finding).
CREATE TABLE IF NOT EXISTS findings(
  id TEXT NOT NULL, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, cleared_ms INTEGER,
  notified_ms INTEGER, finding TEXT NOT NULL,
  PRIMARY KEY(id, first_ms)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS findings_cleared ON findings(cleared_ms);
-- Notifications waiting for their receiver, retried with backoff, kept across restarts.
CREATE TABLE IF NOT EXISTS outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT, receiver TEXT NOT NULL, body TEXT NOT NULL,
  created_ms INTEGER NOT NULL, next_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT);
CREATE INDEX IF NOT EXISTS outbox_next ON outbox(next_ms);
