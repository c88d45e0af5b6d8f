//! The ledger and its roll-ups: the one SQL shape that adds amounts to a
//! row, and the reads (usage, an institute's rows, daily and hourly roll-ups).

use super::SqliteStore;
use crate::accounting::{Amounts, Charge, DayRow, HourRow, LedgerKey};
use crate::quota::UseRow;
use crate::store::shared::{AMOUNTS, amount_values, amounts_from, data_since};
use crate::store::{Filter, GroupBy, Result, UsageRow};
use rusqlite::params;

/// `INSERT INTO table(keys…, amounts…) … ON CONFLICT(keys…) DO UPDATE SET a = a + excluded.a, …`:
/// adds amounts to the row with these keys, creating it if needed.
pub(super) fn add_amounts_sql(table: &str, keys: &[&str]) -> String {
    let cols: Vec<&str> = keys.iter().chain(AMOUNTS.iter()).copied().collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sets: Vec<String> = AMOUNTS.iter().map(|a| format!("{a} = {a} + excluded.{a}")).collect();
    format!(
        "INSERT INTO {table}({}) VALUES({}) ON CONFLICT({}) DO UPDATE SET {}",
        cols.join(", "),
        marks.join(", "),
        keys.join(", "),
        sets.join(", ")
    )
}

/// Runs an [`add_amounts_sql`] statement with its key values and amounts.
pub(super) fn add_amounts(
    st: &mut rusqlite::CachedStatement,
    keys: &[&dyn rusqlite::ToSql],
    a: &Amounts,
) -> rusqlite::Result<()> {
    let v = amount_values(a);
    let params: Vec<&dyn rusqlite::ToSql> = keys.iter().copied().chain(v.iter().map(|x| x as _)).collect();
    st.execute(params.as_slice()).map(drop)
}

/// The amounts, in [`AMOUNTS`] order, from column `first` on.
pub(super) fn amounts_at(r: &rusqlite::Row, first: usize) -> rusqlite::Result<Amounts> {
    let mut v = [0.0; 9];
    for (k, slot) in v.iter_mut().enumerate() {
        *slot = r.get(first + k)?;
    }
    Ok(amounts_from(v))
}

const SUMS: &str = "SUM(capacity_s), SUM(allocated_s), SUM(busy_s), SUM(idle_allocated_s), SUM(unscheduled_s), \
                    SUM(energy_j), SUM(gpm_s), SUM(sm_active_s), SUM(tensor_active_s)";

fn column(g: GroupBy) -> &'static str {
    match g {
        GroupBy::Hour => "CAST(hour AS TEXT)",
        other => other.name(),
    }
}

impl SqliteStore {
    pub(super) fn usage_rows(&self, from_s: i64, to_s: i64, group: GroupBy, filter: &Filter) -> Result<Vec<UsageRow>> {
        let col = column(group);
        // Nodes, when limited, go in as a JSON array (one statement whatever their number).
        let nodes = filter.nodes.map(|n| serde_json::to_string(n).expect("names serialise"));
        let sql = format!(
            "SELECT {col}, {SUMS} FROM ledger WHERE hour >= ?1 AND hour < ?2 AND (?3 IS NULL OR institute = ?3)
               AND (?4 IS NULL OR node IN (SELECT value FROM json_each(?4)))
             GROUP BY {col} ORDER BY {col}"
        );
        self.query(&sql, params![from_s, to_s, filter.institute, nodes], |r| {
            Ok(UsageRow { key: r.get(0)?, amounts: amounts_at(r, 1)? })
        })
    }

    pub(super) fn institute_rows(&self, institute: &str, from_s: i64, to_s: i64) -> Result<Vec<UseRow>> {
        self.query(
            &format!(
                "SELECT hour, account, user, job, {SUMS} FROM ledger WHERE institute = ?1 AND hour >= ?2 AND hour < ?3
                 GROUP BY hour, account, user, job"
            ),
            params![institute, from_s, to_s],
            |r| {
                Ok(UseRow {
                    hour: r.get(0)?,
                    account: r.get(1)?,
                    user: r.get(2)?,
                    job: r.get(3)?,
                    amounts: amounts_at(r, 4)?,
                })
            },
        )
    }

    pub(super) fn days(&self, from_s: i64, to_s: i64, institute: Option<&str>) -> Result<Vec<DayRow>> {
        self.query(
            &format!(
                "SELECT day, institute, account, user, job, {} FROM ledger_day
                 WHERE day >= ?1 AND day < ?2 AND (?3 IS NULL OR institute = ?3)",
                AMOUNTS.join(", ")
            ),
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

    pub(super) fn hours(&self, from_s: i64, to_s: i64) -> Result<Vec<HourRow>> {
        self.query(
            &format!(
                "SELECT hour, institute, {}, peak_held_gpus, peak_busy_gpus FROM ledger_hour WHERE hour >= ?1 AND hour < ?2",
                AMOUNTS.join(", ")
            ),
            params![from_s, to_s],
            |r| {
                Ok(HourRow {
                    hour: r.get(0)?,
                    institute: r.get(1)?,
                    amounts: amounts_at(r, 2)?,
                    peak_held_gpus: r.get(2 + AMOUNTS.len())?,
                    peak_busy_gpus: r.get(3 + AMOUNTS.len())?,
                })
            },
        )
    }

    pub(super) fn fine_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<Charge>> {
        self.query(
            &format!(
                "SELECT hour, institute, account, user, job, node, gpu, {} FROM ledger WHERE hour >= ?1 AND hour < ?2
                 ORDER BY hour, institute, account, user, job, node, gpu",
                AMOUNTS.join(", ")
            ),
            params![from_s, to_s],
            |r| {
                Ok(Charge {
                    hour: r.get(0)?,
                    key: LedgerKey {
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

    pub(super) fn oldest_data(&self) -> Result<Option<i64>> {
        let charged: Option<i64> = self.query("SELECT MIN(first_ms) FROM charged", [], |r| r.get(0))?.pop().flatten();
        let hour: Option<i64> = self.query("SELECT MIN(hour) FROM ledger", [], |r| r.get(0))?.pop().flatten();
        Ok(data_since(charged, hour))
    }
}
