//! Reads of the ledger and its roll-ups, coverage, and API tokens.

use super::{C, PgStore, col};
use crate::accounting::{Amounts, Charge, DayRow, HourRow, LedgerKey};
use crate::quota::UseRow;
use crate::report::coverage::{CoverageInput, CoveredHour};
use crate::store::shared::{AMOUNTS, amounts_from, coverage_of_days, data_since};
use crate::store::{CoverageRow, Filter, GroupBy, Result, TokenRow, UsageRow};
use postgres::Row;

/// The amounts, in [`AMOUNTS`] order, from column `first` on.
fn amounts_at(r: &Row, first: usize) -> Amounts {
    let mut v = [0.0; 9];
    for (k, slot) in v.iter_mut().enumerate() {
        *slot = r.get(first + k);
    }
    amounts_from(v)
}

fn sums() -> String {
    AMOUNTS.iter().map(|a| format!("SUM({a})")).collect::<Vec<_>>().join(", ")
}

const TOKEN_COLUMNS: &str = "id, hash, role, scope, created_ms, revoked_ms";

fn token_row(r: &Row) -> TokenRow {
    TokenRow {
        id: r.get(0),
        hash: r.get(1),
        role: r.get(2),
        scope: r.get(3),
        created_ms: r.get(4),
        revoked_ms: r.get(5),
    }
}

impl PgStore {
    pub(super) fn usage_rows(&self, from_s: i64, to_s: i64, group: GroupBy, filter: &Filter) -> Result<Vec<UsageRow>> {
        let column = match group {
            GroupBy::Hour => "hour::text".to_string(),
            other => col(other.name()).to_string(),
        };
        let sql = format!(
            "SELECT {column}, {} FROM ledger WHERE hour >= $1 AND hour < $2
               AND ($3::text IS NULL OR institute = $3) AND ($4::text[] IS NULL OR node = ANY($4))
             GROUP BY 1 ORDER BY {column} {C}",
            sums()
        );
        let nodes: Option<Vec<&str>> = filter.nodes.map(|n| n.iter().map(String::as_str).collect());
        let rows = self.with(|c| c.query(sql.as_str(), &[&from_s, &to_s, &filter.institute, &nodes]))?;
        Ok(rows.iter().map(|r| UsageRow { key: r.get(0), amounts: amounts_at(r, 1) }).collect())
    }

    pub(super) fn institute_rows(&self, institute: &str, from_s: i64, to_s: i64) -> Result<Vec<UseRow>> {
        let sql = format!(
            "SELECT hour, account, \"user\", job, {} FROM ledger WHERE institute = $1 AND hour >= $2 AND hour < $3
             GROUP BY hour, account, \"user\", job",
            sums()
        );
        let rows = self.with(|c| c.query(sql.as_str(), &[&institute, &from_s, &to_s]))?;
        Ok(rows
            .iter()
            .map(|r| UseRow {
                hour: r.get(0),
                account: r.get(1),
                user: r.get(2),
                job: r.get(3),
                amounts: amounts_at(r, 4),
            })
            .collect())
    }

    pub(super) fn days(&self, from_s: i64, to_s: i64, institute: Option<&str>) -> Result<Vec<DayRow>> {
        let sql = format!(
            "SELECT day, institute, account, \"user\", job, {} FROM ledger_day
             WHERE day >= $1 AND day < $2 AND ($3::text IS NULL OR institute = $3)",
            AMOUNTS.join(", ")
        );
        let rows = self.with(|c| c.query(sql.as_str(), &[&from_s, &to_s, &institute]))?;
        Ok(rows
            .iter()
            .map(|r| DayRow {
                day: r.get(0),
                institute: r.get(1),
                account: r.get(2),
                user: r.get(3),
                job: r.get(4),
                amounts: amounts_at(r, 5),
            })
            .collect())
    }

    pub(super) fn hours(&self, from_s: i64, to_s: i64) -> Result<Vec<HourRow>> {
        let sql = format!(
            "SELECT hour, institute, {}, peak_held_gpus, peak_busy_gpus FROM ledger_hour WHERE hour >= $1 AND hour < $2",
            AMOUNTS.join(", ")
        );
        let rows = self.with(|c| c.query(sql.as_str(), &[&from_s, &to_s]))?;
        Ok(rows
            .iter()
            .map(|r| HourRow {
                hour: r.get(0),
                institute: r.get(1),
                amounts: amounts_at(r, 2),
                peak_held_gpus: r.get(2 + AMOUNTS.len()),
                peak_busy_gpus: r.get(3 + AMOUNTS.len()),
            })
            .collect())
    }

    pub(super) fn fine_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<Charge>> {
        let sql = format!(
            "SELECT hour, institute, account, \"user\", job, node, gpu, {} FROM ledger WHERE hour >= $1 AND hour < $2
             ORDER BY hour, institute {C}, account {C}, \"user\" {C}, job {C}, node {C}, gpu {C}",
            AMOUNTS.join(", ")
        );
        let rows = self.with(|c| c.query(sql.as_str(), &[&from_s, &to_s]))?;
        Ok(rows
            .iter()
            .map(|r| Charge {
                hour: r.get(0),
                key: LedgerKey {
                    institute: r.get(1),
                    account: r.get(2),
                    user: r.get(3),
                    job: r.get(4),
                    node: r.get(5),
                    gpu: r.get(6),
                },
                amounts: amounts_at(r, 7),
            })
            .collect())
    }

    pub(super) fn oldest_data(&self) -> Result<Option<i64>> {
        let r = self
            .with(|c| c.query_one("SELECT (SELECT MIN(first_ms) FROM charged), (SELECT MIN(hour) FROM ledger)", &[]))?;
        Ok(data_since(r.get(0), r.get(1)))
    }

    /// Per node: reports received and seconds covered, for buckets starting in [from_s, to_s).
    pub(super) fn coverage_rows(&self, from_s: i64, to_s: i64) -> Result<Vec<CoverageRow>> {
        let sql = format!(
            "SELECT node, SUM(reports)::bigint, SUM(covered_s), MIN(hour), MAX(hour) FROM coverage
             WHERE hour >= $1 AND hour < $2 GROUP BY node ORDER BY node {C}"
        );
        let rows = self.with(|c| c.query(sql.as_str(), &[&from_s, &to_s]))?;
        Ok(rows
            .iter()
            .map(|r| CoverageRow {
                node: r.get(0),
                reports: r.get(1),
                covered_s: r.get(2),
                first_hour: r.get(3),
                last_hour: r.get(4),
            })
            .collect())
    }

    /// Coverage of [from_s, to_s) (whole days) for reports.
    pub(super) fn report_coverage(&self, from_s: i64, to_s: i64) -> Result<CoverageInput> {
        let sql = format!(
            "SELECT node, day, covered_s FROM coverage_day WHERE day >= $1 AND day < $2 ORDER BY node {C}, day"
        );
        let rows = self.with(|c| c.query(sql.as_str(), &[&from_s, &to_s]))?;
        let days: Vec<(String, i64, f64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        coverage_of_days(&days, |node, from, to| {
            let rows = self.with(|c| {
                c.query(
                    "SELECT hour, covered_s, first_ms, last_ms FROM coverage
                     WHERE node = $1 AND hour >= $2 AND hour < $3 ORDER BY hour",
                    &[&node, &from, &to],
                )
            })?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
        })
    }

    /// Per node and hour: seconds covered, and when.
    pub(super) fn hourly_coverage(&self, from_s: i64, to_s: i64) -> Result<Vec<CoveredHour>> {
        let sql = format!(
            "SELECT node, hour, covered_s, reports, first_ms, last_ms FROM coverage WHERE hour >= $1 AND hour < $2
             ORDER BY node {C}, hour"
        );
        let rows = self.with(|c| c.query(sql.as_str(), &[&from_s, &to_s]))?;
        Ok(rows
            .iter()
            .map(|r| CoveredHour {
                node: r.get(0),
                hour: r.get(1),
                covered_s: r.get(2),
                reports: r.get(3),
                first_ms: r.get(4),
                last_ms: r.get(5),
            })
            .collect())
    }

    pub(super) fn insert_token_row(&self, t: &TokenRow) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tokens(id, hash, role, scope, created_ms) VALUES($1, $2, $3, $4, $5)",
                &[&t.id, &t.hash, &t.role, &t.scope, &t.created_ms],
            )
        })
        .map(drop)
    }

    pub(super) fn token_row(&self, id: &str) -> Result<Option<TokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1");
        Ok(self.with(|c| c.query_opt(sql.as_str(), &[&id]))?.as_ref().map(token_row))
    }

    pub(super) fn token_rows(&self) -> Result<Vec<TokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_ms, id {C}");
        Ok(self.with(|c| c.query(sql.as_str(), &[]))?.iter().map(token_row).collect())
    }

    pub(super) fn revoke(&self, id: &str, now_ms: i64) -> Result<bool> {
        let n = self.with(|c| {
            c.execute("UPDATE tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL", &[&id, &now_ms])
        })?;
        Ok(n > 0)
    }

    pub(super) fn shared_secret(&self, name: &str, random: &str) -> Result<String> {
        let key = format!("secret:{name}");
        self.with(|c| {
            c.execute("INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO NOTHING", &[&key, &random])?;
            Ok(c.query_one("SELECT value FROM meta WHERE key = $1", &[&key])?.get(0))
        })
    }
}
