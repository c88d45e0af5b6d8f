//! `jazari quota`: the burn-down of each institute, as a table or JSON.

use super::ClientArgs;
use super::quota_table::{By, table};
use crate::api::paths;
use crate::api::quota::{BurnDown, QuotaQuery, QuotasResponse, State};
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct QuotaArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Only this institute.
    #[arg(long, value_name = "ID")]
    pub institute: Option<String>,
    /// Break use down by Slurm account or by user.
    #[arg(long, value_enum)]
    pub by: Option<By>,
    /// Output format: a table for people, or JSON.
    #[arg(long, value_enum, default_value = "table")]
    pub format: QuotaFormat,
    /// Evaluate at this date (YYYY-MM-DD or an RFC 3339 UTC time) instead of now.
    #[arg(long, value_name = "DATE")]
    pub at: Option<String>,
    /// For cron and monitoring: one line per institute, and exit status 0 (all
    /// ok), 1 (a warning: near the grant, projected to run out, over the cap)
    /// or 2 (a grant exceeded); 3 when the collector cannot answer.
    #[arg(long, conflicts_with_all = ["format", "by"])]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum QuotaFormat {
    Table,
    Json,
}

pub fn run(a: QuotaArgs) -> Result<()> {
    if a.check {
        let (code, text) = match check(&a) {
            Ok(x) => x,
            Err(e) => (3, format!("UNKNOWN: {e:#}\n")),
        };
        print!("{text}");
        std::process::exit(code);
    }
    let client = a.client.client()?;
    if let Some(at) = &a.at {
        crate::time::parse_instant(at).map_err(|e| anyhow::anyhow!("--at: {e}"))?;
    }
    let q: QuotasResponse =
        client.get_with(paths::QUOTAS, &QuotaQuery { institute: a.institute.clone(), at: a.at.clone() })?;
    match a.format {
        QuotaFormat::Json => println!("{}", serde_json::to_string_pretty(&q)?),
        QuotaFormat::Table => print!("{}", table(&q.institutes, a.by)),
    }
    Ok(())
}

/// The check's lines and exit status.
fn check(a: &QuotaArgs) -> Result<(i32, String)> {
    let client = a.client.client()?;
    let q: QuotasResponse =
        client.get_with(paths::QUOTAS, &QuotaQuery { institute: a.institute.clone(), at: a.at.clone() })?;
    Ok(check_lines(&q.institutes))
}

/// One line per institute (`OK`, `WARNING`, `OVER`, `NO QUOTA`) and the worst status.
pub fn check_lines(items: &[BurnDown]) -> (i32, String) {
    use crate::format::{exact, hours};
    let mut worst = 0;
    let mut out = String::new();
    for b in items {
        let (word, code) = match b.state {
            State::Ok => ("OK", 0),
            State::Warning => ("WARNING", 1),
            State::Exceeded => ("OVER", 2),
            State::NoQuota => ("NO QUOTA", 0),
        };
        worst = worst.max(code);
        let period = b.period.as_ref().map(|p| p.label.as_str()).unwrap_or("-");
        let used = match (b.granted_gpu_hours, b.used_pct) {
            (Some(g), Some(p)) => {
                format!("{} of {} GPU-h used ({p:.1}%) in {period}", hours(b.used_gpu_hours), exact(g))
            }
            _ => format!("{} GPU-h used in {period}", hours(b.used_gpu_hours)),
        };
        let why = if b.reasons.is_empty() { String::new() } else { format!("; {}", b.reasons.join("; ")) };
        out.push_str(&format!("{word} {}: {used}{why}\n", b.institute));
    }
    (worst, out)
}
