//! `jazari quota`: the burn-down of each institute, as a table or JSON.

use super::ClientArgs;
use super::quota_table::{By, table};
use crate::api::paths;
use crate::api::quota::{QuotaQuery, QuotasResponse};
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
    #[arg(long, value_enum, default_value = "table")]
    pub format: QuotaFormat,
    /// Evaluate at this date (YYYY-MM-DD or an RFC 3339 UTC time) instead of now.
    #[arg(long, value_name = "DATE")]
    pub at: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum QuotaFormat {
    Table,
    Json,
}

pub fn run(a: QuotaArgs) -> Result<()> {
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
