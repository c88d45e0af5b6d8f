//! `jazari-agent`: the node agent binary.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use jazari_agent::sampler::{Sampler, SamplerOptions};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Jazari node agent: reads the GPUs (NVML), the host and the jobs on this
/// node and reports them to the Jazari collector.
#[derive(Parser, Debug)]
#[command(name = "jazari-agent", version, about, long_about = None)]
#[command(after_help = "\
Environment:
  JAZARI_NVML_LIB    NVML library to load (same as --nvml-lib)
  JAZARI_PROC_ROOT   process table to read (same as --proc-root)
  JAZARI_LOG         log filter, for example `info` or `jazari_agent=debug` (default: info)

Logs go to stderr. Reports go to stdout (`once`, `run --stdout`) or to the collector (`run`).")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// NVML library to load instead of the system's libnvidia-ml.so.
    #[arg(long, global = true, env = "JAZARI_NVML_LIB", value_name = "PATH")]
    nvml_lib: Option<OsString>,
    /// Node name to report (default: the host name without its domain).
    #[arg(long, global = true, value_name = "NAME")]
    node: Option<String>,
    /// Root of the process table used to attribute GPU processes to users and jobs.
    #[arg(long, global = true, env = "JAZARI_PROC_ROOT", value_name = "DIR", default_value = "/proc")]
    proc_root: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Take one sample and print it as a JSON report on stdout.
    Once {
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// Sample on a fixed schedule and print each report as one JSON line on stdout.
    Run(RunArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Time between samples, for example 10s, 500ms or 1m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    interval: Duration,
    /// Print each report as a JSON line on stdout.
    #[arg(long)]
    stdout: bool,
    /// Stop after this many reports (default: run until stopped).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// Parses "10s", "500ms", "2m", "1h" or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration: write for example 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}`; use ms, s, m or h")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("`{s}`: a duration must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging();
    let opts = |interval| SamplerOptions {
        node: cli.common.node.clone().unwrap_or_else(jazari_agent::host::node_name),
        nvml_lib: cli.common.nvml_lib.clone(),
        proc_root: cli.common.proc_root.clone(),
        interval,
    };
    match &cli.command {
        Command::Once { pretty } => {
            let mut sampler = Sampler::new(opts(Duration::from_secs(10)));
            sampler.settle();
            let report = sampler.sample();
            let mut out = std::io::stdout().lock();
            if *pretty {
                serde_json::to_writer_pretty(&mut out, &report)?;
            } else {
                serde_json::to_writer(&mut out, &report)?;
            }
            writeln!(out).context("writing the report to stdout")?;
        }
        Command::Run(args) => {
            anyhow::ensure!(args.stdout, "give --stdout: pushing to a collector is not built yet");
            let mut sampler = Sampler::new(opts(args.interval));
            let mut next = Instant::now();
            let mut sent = 0u64;
            loop {
                let report = sampler.sample();
                let mut out = std::io::stdout().lock();
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
                out.flush()?;
                sent += 1;
                if args.count.is_some_and(|c| sent >= c) {
                    break;
                }
                next += args.interval;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        }
    }
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("JAZARI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
    }
}
