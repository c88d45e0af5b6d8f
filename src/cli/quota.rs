//! `jazari quota`: the burn-down of each institute, as a table or JSON; for
//! several clusters, see [`super::quota_network`].

use super::ClientArgs;
use super::quota_table::{By, check_lines, table};
use crate::api::paths;
use crate::api::quota::{QuotaQuery, QuotasResponse};
use crate::client::Client;
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
    /// or 2 (a grant exceeded); 3 when a collector cannot answer. With several
    /// clusters, institutes are named CLUSTER/INSTITUTE.
    #[arg(long, conflicts_with_all = ["format", "by"])]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum QuotaFormat {
    Table,
    Json,
}

pub fn run(a: QuotaArgs) -> Result<()> {
    let query = QuotaQuery { institute: a.institute.clone(), at: a.at.clone() };
    if a.check {
        let (code, text) = match a.client.targets() {
            Ok(t) if t.len() > 1 => super::quota_network::check(&t, &query),
            Ok(t) => check(&t[0].client, &query).unwrap_or_else(|e| (3, format!("UNKNOWN: {e:#}\n"))),
            Err(e) => (3, format!("UNKNOWN: {e:#}\n")),
        };
        print!("{text}");
        std::process::exit(code);
    }
    let targets = a.client.targets()?;
    if let Some(at) = &a.at {
        crate::time::parse_instant(at).map_err(|e| anyhow::anyhow!("--at: {e}"))?;
    }
    let json = matches!(a.format, QuotaFormat::Json);
    if targets.len() > 1 {
        return super::quota_network::run(&targets, &query, json, a.by);
    }
    let q: QuotasResponse = targets[0].client.get_with(paths::QUOTAS, &query)?;
    match a.format {
        QuotaFormat::Json => println!("{}", serde_json::to_string_pretty(&q)?),
        QuotaFormat::Table => print!("{}", table(&q.institutes, a.by)),
    }
    Ok(())
}

/// The check's lines and exit status.
fn check(client: &Client, query: &QuotaQuery) -> Result<(i32, String)> {
    let q: QuotasResponse = client.get_with(paths::QUOTAS, query)?;
    Ok(check_lines(&q.institutes))
}
