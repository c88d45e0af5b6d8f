//! `jazari-agent`: the node agent binary.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use jazari_agent::push::{PushConfig, sender};
use jazari_agent::sampler::{Sampler, SamplerOptions};
use jazari_agent::spool::Spool;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

Logs go to stderr. Reports go to stdout (`once`, `run --stdout`) or to the collector (`run`).
Example: jazari-agent run --collector http://collector:9470 --token-file /etc/jazari/node.token")]
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
    /// Sample on a fixed schedule and push each report to the collector (or print it with --stdout).
    Run(RunArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Agent configuration file (TOML); flags override it. See config/agent.example.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Collector base URL, for example http://collector:9470.
    #[arg(long, value_name = "URL")]
    collector: Option<String>,
    /// File holding this node's token (from `jazari token add --node NAME`).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Time between samples, for example 10s, 500ms or 1m [default: 10s].
    #[arg(long, value_parser = jazari_wire::duration::parse)]
    interval: Option<Duration>,
    /// Folder of the on-disk spool that holds reports until the collector has them
    /// [default: /var/lib/jazari-agent/spool].
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Largest size of the spool on disk, in MiB; beyond it the oldest reports are dropped [default: 256].
    #[arg(long, value_name = "MIB")]
    spool_max_mib: Option<u64>,
    /// Print each report as a JSON line on stdout instead of pushing it.
    #[arg(long)]
    stdout: bool,
    /// Stop after this many reports (default: run until stopped).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// On stop, how long to keep trying to deliver what the spool holds before exiting
    /// (what is left stays in the spool for the next start).
    #[arg(long, default_value = "10s", value_parser = jazari_wire::duration::parse)]
    linger: Duration,
}

/// The agent configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    collector: Option<String>,
    token_file: Option<PathBuf>,
    interval: Option<String>,
    spool_dir: Option<PathBuf>,
    spool_max_mib: Option<u64>,
    node: Option<String>,
    nvml_lib: Option<PathBuf>,
}

fn load_file_config(path: &std::path::Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    jazari_wire::logging::init(None);
    let opts = |interval| SamplerOptions {
        node: cli.common.node.clone().unwrap_or_else(jazari_agent::host::node_name),
        nvml_lib: cli.common.nvml_lib.clone(),
        proc_root: cli.common.proc_root.clone(),
        interval,
        resume_from_ms: None,
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
        Command::Run(args) => run(&cli.common, args)?,
    }
    Ok(())
}

fn run(common: &Common, args: &RunArgs) -> Result<()> {
    let file = match &args.config {
        Some(p) => load_file_config(p)?,
        None => FileConfig::default(),
    };
    let interval = match (args.interval, &file.interval) {
        (Some(d), _) => d,
        (None, Some(s)) => {
            jazari_wire::duration::parse(s).map_err(|e| anyhow::anyhow!("interval in the agent config: {e}"))?
        }
        (None, None) => Duration::from_secs(10),
    };
    let node = common.node.clone().or(file.node).unwrap_or_else(jazari_agent::host::node_name);
    let nvml_lib = common.nvml_lib.clone().or(file.nvml_lib.map(Into::into));
    let mut opts =
        SamplerOptions { node, nvml_lib, proc_root: common.proc_root.clone(), interval, resume_from_ms: None };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let _ = signal_flag(sig, stop.clone());
    }
    if args.stdout {
        let mut sampler = Sampler::new(opts);
        return schedule(interval, args.count, &stop, || {
            let report = sampler.sample();
            let mut out = std::io::stdout().lock();
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
            out.flush()?;
            Ok(())
        });
    }
    let collector = args
        .collector
        .clone()
        .or(file.collector)
        .context("give --collector URL (or `collector` in the agent config), or --stdout to print reports")?;
    anyhow::ensure!(
        collector.starts_with("http://") || collector.starts_with("https://"),
        "--collector `{collector}` must start with http:// or https://"
    );
    let token_file =
        args.token_file.clone().or(file.token_file).context("give --token-file FILE with this node's token")?;
    let token = jazari_wire::token::read(&token_file)?;
    let spool_dir = args.spool_dir.clone().or(file.spool_dir).unwrap_or_else(|| "/var/lib/jazari-agent/spool".into());
    let max_mib = args.spool_max_mib.or(file.spool_max_mib).unwrap_or(256);
    let spool =
        Spool::open(&spool_dir, max_mib << 20).with_context(|| format!("opening the spool {}", spool_dir.display()))?;
    let mut spool = spool;
    let waiting = spool.pending().unwrap_or(0);
    if waiting > 0 || spool.stats.torn > 0 {
        tracing::info!(waiting, torn = spool.stats.torn, "spool has reports from an earlier run; replaying them first");
    }
    let spool = Arc::new(Mutex::new(spool));
    // Where the previous run's reports ended, so the first report continues from there.
    let last_sample = spool_dir.join("last-sample");
    opts.resume_from_ms = std::fs::read_to_string(&last_sample).ok().and_then(|t| t.trim().parse().ok());
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    let push = PushConfig {
        collector: collector.clone(),
        token,
        spool_dir,
        max_batch: 200,
        max_backoff: Duration::from_secs(60),
    };
    let sender = {
        let spool = spool.clone();
        let stop = stop.clone();
        std::thread::Builder::new().name("sender".into()).spawn(move || sender(push, spool, wake_rx, stop))?
    };
    let mut sampler = Sampler::new(opts);
    tracing::info!(%collector, interval_s = interval.as_secs_f64(), node = sampler.node(), "agent running");
    schedule(interval, args.count, &stop, || {
        let report = sampler.sample();
        let bytes = serde_json::to_vec(&report)?;
        if let Err(e) = spool.lock().unwrap().append(&bytes) {
            tracing::error!("cannot write to the spool: {e}; this report is lost");
        }
        let tmp = last_sample.with_extension("tmp");
        let _ =
            std::fs::write(&tmp, report.interval_end_ms.to_string()).and_then(|_| std::fs::rename(&tmp, &last_sample));
        let _ = wake_tx.send(());
        Ok(())
    })?;
    // Give the sender a moment to deliver what was sampled.
    let deadline = Instant::now() + args.linger;
    while Instant::now() < deadline && spool.lock().unwrap().pending().unwrap_or(0) > 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = spool.lock().unwrap().pending().unwrap_or(0);
    if left > 0 {
        tracing::info!(left, "stopping with reports in the spool; they are sent at the next start");
    }
    stop.store(true, Ordering::Relaxed);
    drop(wake_tx);
    let _ = sender.join();
    Ok(())
}

/// Runs `f` on a fixed schedule (the next tick does not drift with how long `f` took).
fn schedule(
    interval: Duration,
    count: Option<u64>,
    stop: &AtomicBool,
    mut f: impl FnMut() -> Result<()>,
) -> Result<()> {
    let mut next = Instant::now();
    let mut done = 0u64;
    while !stop.load(Ordering::Relaxed) {
        f()?;
        done += 1;
        if count.is_some_and(|c| done >= c) {
            break;
        }
        next += interval;
        let now = Instant::now();
        if next < now {
            // Fell behind (suspended, overloaded): skip the missed ticks.
            next = now;
        }
        while !stop.load(Ordering::Relaxed) && Instant::now() < next {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(200)));
        }
    }
    Ok(())
}

/// Sets `flag` when the signal arrives.
fn signal_flag(sig: libc::c_int, flag: Arc<AtomicBool>) -> std::io::Result<()> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    let _ = FLAG.set(flag);
    extern "C" fn handler(_: libc::c_int) {
        if let Some(f) = FLAG.get() {
            f.store(true, Ordering::Relaxed);
        }
    }
    let h: extern "C" fn(libc::c_int) = handler;
    if unsafe { libc::signal(sig, h as libc::sighandler_t) } == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
