//! `jazari report`: a usage report for a period, through the API or, on the
//! collector host, straight from the store; written atomically. With several
//! collectors, one report per cluster and the network's summary
//! ([`crate::report::network`]).

use super::{ClientArgs, Incomplete, failed_line};
use crate::api::paths;
use crate::api::report::{Report, ReportPeriod, ReportQuery};
use crate::client::network::{Target, each};
use crate::config::Config;
use crate::report::network::{self, Missing};
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
            let targets = a.client.targets()?;
            let query = if a.period.is_some() {
                query
            } else {
                ReportQuery { from: Some(period.first_day.clone()), to: Some(period.last_day.clone()), ..query }
            };
            if targets.len() > 1 {
                return several(&a, &targets, &query, &period, started);
            }
            targets[0].client.get_with(paths::REPORT, &query)?
        }
    };
    if data.total.allocated_gpu_hours == 0.0
        && data.total.unscheduled_gpu_hours == 0.0
        && data.cluster.figures.capacity_gpu_hours == 0.0
    {
        eprintln!("jazari report: warning: the ledger holds no data for {}; the report is empty", period.label);
    }
    eprintln!("jazari report: {} institutes, rendering {:?}…", data.institutes.len(), a.format);
    output(&a, &render(&data, a.format), started)
}

/// Writes the report to `--out` (atomically), else to stdout.
fn output(a: &ReportArgs, text: &str, started: std::time::Instant) -> Result<()> {
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

/// Several collectors: their reports, asked at once, with the network's
/// summary; the others when one does not answer, and an [`Incomplete`] error.
fn several(
    a: &ReportArgs,
    targets: &[Target],
    query: &ReportQuery,
    period: &ReportPeriod,
    started: std::time::Instant,
) -> Result<()> {
    let answers = each(targets, |c| c.get_with::<_, Report>(paths::REPORT, query));
    let mut reports = vec![];
    let (mut missing, mut failed) = (vec![], vec![]);
    for (t, answer) in targets.iter().zip(answers) {
        match answer {
            Ok(r) => reports.push(r),
            Err(e) => {
                let line = failed_line(t, &e);
                let error = line.strip_prefix(&format!("cluster {} ", t.label())).unwrap_or(&line).to_string();
                missing.push(Missing { cluster: t.label().to_string(), url: t.client.base().to_string(), error });
                failed.push(line);
            }
        }
    }
    let Some(n) = network::build(reports, &missing, crate::time::now_ms()) else {
        return Err(Incomplete(failed).into());
    };
    if n.clusters.iter().all(|r| r.total.allocated_gpu_hours == 0.0 && r.cluster.figures.capacity_gpu_hours == 0.0) {
        eprintln!("jazari report: warning: no cluster's ledger holds data for {}; the report is empty", period.label);
    }
    eprintln!("jazari report: {} clusters, rendering {:?}…", n.clusters.len(), a.format);
    output(a, &network::render(&n, a.format), started)?;
    if failed.is_empty() { Ok(()) } else { Err(Incomplete(failed).into()) }
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
