-- The PostgreSQL store's schema, version 3 (the same tables and meaning as
-- the SQLite store's). Every statement is safe to run twice; a newer schema
-- is refused by an older collector (see migrate in mod.rs).
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(
  id TEXT PRIMARY KEY, hash BYTEA NOT NULL, role TEXT NOT NULL, scope TEXT NOT NULL,
  created_ms BIGINT NOT NULL, revoked_ms BIGINT);
-- Sequence numbers each agent instance delivered, as ranges `a-b,c-d`.
CREATE TABLE IF NOT EXISTS delivered(
  node TEXT NOT NULL, instance TEXT NOT NULL, ranges TEXT NOT NULL, last_ms BIGINT NOT NULL,
  PRIMARY KEY(node, instance));
-- Time already charged on a node and each of its GPUs (JSON interval sets).
CREATE TABLE IF NOT EXISTS charged(
  node TEXT PRIMARY KEY, sets TEXT NOT NULL, first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger(
  hour BIGINT NOT NULL, institute TEXT NOT NULL, account TEXT NOT NULL, "user" TEXT NOT NULL,
  job TEXT NOT NULL, node TEXT NOT NULL, gpu TEXT NOT NULL,
  capacity_s DOUBLE PRECISION NOT NULL, allocated_s DOUBLE PRECISION NOT NULL, busy_s DOUBLE PRECISION NOT NULL,
  idle_allocated_s DOUBLE PRECISION NOT NULL, unscheduled_s DOUBLE PRECISION NOT NULL,
  energy_j DOUBLE PRECISION NOT NULL, gpm_s DOUBLE PRECISION NOT NULL DEFAULT 0,
  sm_active_s DOUBLE PRECISION NOT NULL DEFAULT 0, tensor_active_s DOUBLE PRECISION NOT NULL DEFAULT 0,
  PRIMARY KEY(hour, institute, account, "user", job, node, gpu));
CREATE TABLE IF NOT EXISTS ledger_day(
  day BIGINT NOT NULL, institute TEXT NOT NULL, account TEXT NOT NULL, "user" TEXT NOT NULL, job TEXT NOT NULL,
  capacity_s DOUBLE PRECISION NOT NULL, allocated_s DOUBLE PRECISION NOT NULL, busy_s DOUBLE PRECISION NOT NULL,
  idle_allocated_s DOUBLE PRECISION NOT NULL, unscheduled_s DOUBLE PRECISION NOT NULL,
  energy_j DOUBLE PRECISION NOT NULL, gpm_s DOUBLE PRECISION NOT NULL DEFAULT 0,
  sm_active_s DOUBLE PRECISION NOT NULL DEFAULT 0, tensor_active_s DOUBLE PRECISION NOT NULL DEFAULT 0,
  PRIMARY KEY(day, institute, account, "user", job));
CREATE TABLE IF NOT EXISTS ledger_hour(
  hour BIGINT NOT NULL, institute TEXT NOT NULL,
  capacity_s DOUBLE PRECISION NOT NULL, allocated_s DOUBLE PRECISION NOT NULL, busy_s DOUBLE PRECISION NOT NULL,
  idle_allocated_s DOUBLE PRECISION NOT NULL, unscheduled_s DOUBLE PRECISION NOT NULL,
  energy_j DOUBLE PRECISION NOT NULL, gpm_s DOUBLE PRECISION NOT NULL DEFAULT 0,
  sm_active_s DOUBLE PRECISION NOT NULL DEFAULT 0, tensor_active_s DOUBLE PRECISION NOT NULL DEFAULT 0,
  peak_held_gpus DOUBLE PRECISION NOT NULL DEFAULT 0, peak_busy_gpus DOUBLE PRECISION NOT NULL DEFAULT 0,
  PRIMARY KEY(hour, institute));
-- GPU-seconds held (allocated or unscheduled) and busy per minute and institute,
-- for the peaks of ledger_hour; kept for the deduplication horizon.
CREATE TABLE IF NOT EXISTS ledger_minute(
  minute BIGINT NOT NULL, institute TEXT NOT NULL, held_s DOUBLE PRECISION NOT NULL,
  busy_s DOUBLE PRECISION NOT NULL, PRIMARY KEY(minute, institute));
-- Per hour and node: time covered by reports (each second once), reports
-- ending in the hour, and the earliest start and latest end of that time.
CREATE TABLE IF NOT EXISTS coverage(
  hour BIGINT NOT NULL, node TEXT NOT NULL, covered_s DOUBLE PRECISION NOT NULL, reports BIGINT NOT NULL,
  first_ms BIGINT NOT NULL DEFAULT 0, last_ms BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY(hour, node));
CREATE INDEX IF NOT EXISTS coverage_node ON coverage(node, hour);
CREATE TABLE IF NOT EXISTS coverage_day(
  day BIGINT NOT NULL, node TEXT NOT NULL, covered_s DOUBLE PRECISION NOT NULL, PRIMARY KEY(day, node));
-- Each node's last report; stored_ms (the database's clock) tells other
-- collectors which reports are new to them.
CREATE TABLE IF NOT EXISTS nodes(
  node TEXT PRIMARY KEY, first_seen_ms BIGINT NOT NULL, last_seen_ms BIGINT NOT NULL, last_report TEXT NOT NULL,
  stored_ms BIGINT NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS nodes_stored ON nodes(stored_ms);
CREATE TABLE IF NOT EXISTS history_raw(
  node TEXT NOT NULL, ts_ms BIGINT NOT NULL, gpus TEXT NOT NULL, PRIMARY KEY(node, ts_ms));
CREATE INDEX IF NOT EXISTS history_raw_ts ON history_raw(ts_ms);
CREATE TABLE IF NOT EXISTS history(
  resolution TEXT NOT NULL, node TEXT NOT NULL, gpu TEXT NOT NULL, ts_ms BIGINT NOT NULL,
  util DOUBLE PRECISION, mem_used DOUBLE PRECISION, power_w DOUBLE PRECISION, temp DOUBLE PRECISION,
  allocated DOUBLE PRECISION, PRIMARY KEY(resolution, node, gpu, ts_ms));
CREATE INDEX IF NOT EXISTS history_ts ON history(resolution, ts_ms);
-- Reports taken in but not charged yet (waiting for the scheduler's view of their time).
CREATE TABLE IF NOT EXISTS pending(
  node TEXT NOT NULL, instance TEXT NOT NULL, seq BIGINT NOT NULL, end_ms BIGINT NOT NULL, report TEXT NOT NULL,
  PRIMARY KEY(node, instance, seq));
CREATE INDEX IF NOT EXISTS pending_end ON pending(end_ms);
-- Every run of every job the scheduler told of, with its start and end (JSON).
CREATE TABLE IF NOT EXISTS sched_runs(
  job TEXT NOT NULL, start_ms BIGINT NOT NULL, end_ms BIGINT, run TEXT NOT NULL, PRIMARY KEY(job, start_ms));
-- Findings the rules raised, active (cleared_ms NULL) and cleared, with when each was last notified.
CREATE TABLE IF NOT EXISTS findings(
  id TEXT NOT NULL, first_ms BIGINT NOT NULL, last_ms BIGINT NOT NULL, cleared_ms BIGINT,
  notified_ms BIGINT, finding TEXT NOT NULL, PRIMARY KEY(id, first_ms));
CREATE INDEX IF NOT EXISTS findings_cleared ON findings(cleared_ms);
-- Notifications waiting for their receiver, retried with backoff, kept across restarts.
CREATE TABLE IF NOT EXISTS outbox(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, receiver TEXT NOT NULL, body TEXT NOT NULL,
  created_ms BIGINT NOT NULL, next_ms BIGINT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, last_error TEXT);
CREATE INDEX IF NOT EXISTS outbox_next ON outbox(next_ms);
