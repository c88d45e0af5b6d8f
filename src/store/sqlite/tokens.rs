//! API tokens: ids, hashes of secrets, roles, revocation.

use super::SqliteStore;
use crate::store::{Result, TokenRow};
use rusqlite::{OptionalExtension, params};

const COLUMNS: &str = "id, hash, role, scope, created_ms, revoked_ms";

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

impl SqliteStore {
    pub(super) fn insert_token_row(&self, t: &TokenRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO tokens(id, hash, role, scope, created_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
                params![t.id, t.hash, t.role, t.scope, t.created_ms],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    pub(super) fn token_row(&self, id: &str) -> Result<Option<TokenRow>> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM tokens WHERE id = ?1"), [id], token_row)
            .optional()
            .map_err(self.err())
    }

    pub(super) fn token_rows(&self) -> Result<Vec<TokenRow>> {
        self.query(&format!("SELECT {COLUMNS} FROM tokens ORDER BY created_ms, id"), [], token_row)
    }

    pub(super) fn revoke(&self, id: &str, now_ms: i64) -> Result<bool> {
        self.conn
            .execute("UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL", params![id, now_ms])
            .map(|n| n > 0)
            .map_err(self.err())
    }
}
