//! `jazari report`: a usage report for a period, through the API or, on the
//! collector host, straight from the store; written atomically.

use super::ClientArgs;
use crate::api::paths;
use crate::api::report::{Report, ReportPeriod, ReportQuery};
use crate::config::Config;
use crate::report::{Format, Options, render};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["period", "from"])))]
pub struct ReportArgs {
    /// A year, quarter or month: 2026, 2026-Q1, 2026-03.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub period: Option<String>,
    /// First day (YYYY-MM-DD); with --to.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Only this institute.
    #[arg(long, value_name = "ID")]
    pub institute: Option<String>,
    /// Replace user names with stable pseudonyms.
    #[arg(long)]
    pub anonymise: bool,
    /// Output format: csv (one long table), json (everything), md, or html (self-contained, with charts).
    #[arg(long, value_enum)]
    pub format: Format,
    /// Write here (atomically: nothing is left behind on failure) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Read the store directly on the collector host, with this collector config, instead of the API.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["url", "token_file"])]
    pub config: Option<PathBuf>,
    /// With --config: the store (overrides the config's).
    #[arg(long, value_name = "FILE", requires = "config")]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(a: ReportArgs) -> Result<()> {
    let query = ReportQuery {
        period: a.period.clone(),
        from: a.from.clone(),
        to: a.to.clone(),
        institute: a.institute.clone(),
        anonymise: a.anonymise.then_some(true),
    };
    let period = match (&a.period, &a.from, &a.to) {
        (Some(p), _, _) => ReportPeriod::named(p),
        (None, Some(f), Some(t)) => ReportPeriod::dates(f, t),
        _ => Err("give --period, or --from and --to".into()),
    }
    .map_err(anyhow::Error::msg)?;
    let started = std::time::Instant::now();
    eprintln!("jazari report: {} ({} to {}), reading the ledger…", period.label, period.first_day, period.last_day);
    let data: Report = match &a.config {
        Some(cfg_path) => {
            let cfg = Config::load(cfg_path)?;
            if let Some(i) = &a.institute
                && cfg.institute(i).is_none()
                && i != crate::accounting::UNASSIGNED
            {
                bail!("no institute `{i}` in {}; known institutes: {}", cfg_path.display(), cfg.institute_ids());
            }
            let path = a.store.clone().unwrap_or_else(|| cfg.store.clone());
            let store = crate::store::open(&path).context("opening the store")?;
            let opts = Options { institute: a.institute.clone(), anonymise: a.anonymise, key: String::new() };
            crate::server::reports::build_from_store(store.as_ref(), &cfg, &period, &opts)?
        }
        None => {
            let client = a.client.client()?;
            let query = if a.period.is_some() {
                query
            } else {
                ReportQuery { from: Some(period.first_day.clone()), to: Some(period.last_day.clone()), ..query }
            };
            client.get_with(paths::REPORT, &query)?
        }
    };
    if data.total.allocated_gpu_hours == 0.0
        && data.total.unscheduled_gpu_hours == 0.0
        && data.cluster.figures.capacity_gpu_hours == 0.0
    {
        eprintln!("jazari report: warning: the ledger holds no data for {}; the report is empty", period.label);
    }
    eprintln!("jazari report: {} institutes, rendering {:?}…", data.institutes.len(), a.format);
    let text = render(&data, a.format);
    match &a.out {
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            eprintln!(
                "jazari report: wrote {} ({} bytes) in {:.2} s",
                path.display(),
                text.len(),
                started.elapsed().as_secs_f64()
            );
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

/// Writes a temporary file beside `path`, then renames it: a reader never
/// sees half a file, and a failure leaves nothing behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let res = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}
