//! Schema versions: a new store gets `schema.sql`; an older one is upgraded
//! step by step in one transaction; a newer one is refused (upgrade jazari).

use super::SqliteStore;
use crate::store::seen::Seen;
use crate::store::{Result, StoreError};
use rusqlite::{OptionalExtension, params};

/// The version this build writes.
pub const SCHEMA_VERSION: i64 = 3;
const SCHEMA: &str = include_str!("schema.sql");

impl SqliteStore {
    pub(super) fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);").map_err(err)?;
        let found: Option<i64> = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get::<_, String>(0))
            .optional()
            .map_err(err)?
            .and_then(|v| v.parse().ok());
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::TooNew { path: path.clone(), found: v, supported: SCHEMA_VERSION });
            }
            Some(v @ (1 | 2)) => {
                if v == 1 {
                    from_1_to_2(&tx).map_err(err)?;
                }
                from_2_to_3(&tx).map_err(err)?;
                tracing::info!(store = %path.display(), from = v, to = SCHEMA_VERSION, "store upgraded");
            }
            _ => {}
        }
        tx.execute_batch(SCHEMA).map_err(err)?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES('schema_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}

/// Version 3: GPM activity in the ledger and its roll-ups (0 for the time before).
fn from_2_to_3(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    for table in ["ledger", "ledger_day", "ledger_hour"] {
        for col in ["gpm_s", "sm_active_s", "tensor_active_s"] {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {col} REAL NOT NULL DEFAULT 0;"))?;
        }
    }
    Ok(())
}

/// Version 2: exactly-once in time (charged time per node and GPU), the
/// delivered sequence numbers as ranges, peaks per hour from minutes.
fn from_1_to_2(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS delivered(
           node TEXT NOT NULL, instance TEXT NOT NULL, ranges TEXT NOT NULL, last_ms INTEGER NOT NULL,
           PRIMARY KEY(node, instance)) WITHOUT ROWID;
         ALTER TABLE ledger_hour ADD COLUMN peak_held_gpus REAL NOT NULL DEFAULT 0;
         ALTER TABLE ledger_hour ADD COLUMN peak_busy_gpus REAL NOT NULL DEFAULT 0;
         ALTER TABLE coverage ADD COLUMN first_ms INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE coverage ADD COLUMN last_ms INTEGER NOT NULL DEFAULT 0;
         UPDATE coverage SET first_ms = hour * 1000, last_ms = hour * 1000 + 3600000;",
    )?;
    let old: Vec<(String, String, i64, String, i64)> = {
        let mut st = tx.prepare("SELECT node, instance, upto, extra, last_ms FROM seen")?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<std::result::Result<_, _>>()?
    };
    let mut put =
        tx.prepare("INSERT OR REPLACE INTO delivered(node, instance, ranges, last_ms) VALUES(?1, ?2, ?3, ?4)")?;
    for (node, instance, upto, extra, last_ms) in old {
        let text = if upto >= 0 { format!("0-{upto},{extra}") } else { extra };
        put.execute(params![node, instance, Seen::parse(&text, last_ms).to_text(), last_ms])?;
    }
    tx.execute_batch("DROP TABLE seen;")
}
