//! `jazari-agent run`: sample on a schedule; spool and push each report.

use super::settings::{FileConfig, TargetArgs};
use crate::Common;
use anyhow::{Context, Result};
use clap::Args;
use jazari_agent::push::client::Client;
use jazari_agent::push::{PushConfig, sender};
use jazari_agent::sampler::{Sampler, SamplerOptions};
use jazari_agent::spool::Spool;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Time between samples, for example 10s, 500ms or 1m [default: 10s].
    #[arg(long, value_parser = jazari_wire::duration::parse)]
    pub interval: Option<Duration>,
    /// Largest size of the spool on disk, in MiB; beyond it the oldest reports are dropped [default: 256].
    #[arg(long, value_name = "MIB")]
    pub spool_max_mib: Option<u64>,
    /// Largest size of the dead-letter file (reports the collector refused for good), in MiB;
    /// beyond it the oldest are dropped [default: 64].
    #[arg(long, value_name = "MIB")]
    pub dead_letter_max_mib: Option<u64>,
    /// Longest wait between tries while the collector is away [default: 60s].
    #[arg(long, value_parser = jazari_wire::duration::parse)]
    pub max_backoff: Option<Duration>,
    /// Print each report as a JSON line on stdout instead of pushing it.
    #[arg(long)]
    pub stdout: bool,
    /// Stop after this many reports (default: run until stopped).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// On stop, how long to keep trying to deliver what the spool holds before exiting
    /// (what is left stays in the spool for the next start).
    #[arg(long, default_value = "10s", value_parser = jazari_wire::duration::parse)]
    pub linger: Duration,
}

/// How long to wait between tries while the collector refuses this agent, at most.
const REFUSED_MAX_BACKOFF: Duration = Duration::from_secs(300);

pub fn run(common: &Common, args: &RunArgs) -> Result<()> {
    let file = FileConfig::load(args.target.config.as_deref())?;
    let interval = match args.interval {
        Some(d) => d,
        None => file.duration("interval", &file.interval)?.unwrap_or(Duration::from_secs(10)),
    };
    let node = common.node.clone().or(file.node.clone()).unwrap_or_else(jazari_agent::host::node_name);
    let nvml_lib = common.nvml_lib.clone().or(file.nvml_lib.clone().map(Into::into));
    let mut opts = SamplerOptions {
        node,
        nvml_lib,
        proc_root: common.proc_root.clone(),
        interval,
        resume_from_ms: None,
        own_descendants_only: common.proc_scope == crate::ProcScope::Descendants,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let _ = signal_flag(sig, stop.clone());
    }
    if args.stdout {
        let mut sampler = Sampler::new(opts);
        let mut line = Vec::new();
        return schedule(interval, args.count, &stop, || {
            let report = sampler.sample();
            // Made whole, then written at once: stdout is line-buffered, and
            // serde_json's many small writes each had it search for a newline.
            line.clear();
            serde_json::to_writer(&mut line, &report)?;
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            out.write_all(&line)?;
            out.flush()?;
            Ok(())
        });
    }
    let target = args.target.target(&file).context("or give --stdout to print reports")?;
    let token = target.token()?;
    let client = Client::new(&target.collector, &token, &target.tls)?;
    let spool_dir = args.target.spool_dir(&file);
    let max_mib = args.spool_max_mib.or(file.spool_max_mib).unwrap_or(256);
    let mut spool =
        Spool::open(&spool_dir, max_mib << 20).with_context(|| format!("opening the spool {}", spool_dir.display()))?;
    if !spool.is_empty() {
        let waiting = spool.pending().unwrap_or(0);
        tracing::info!(waiting, "spool has reports from an earlier run; sending them first");
    }
    let spool = Arc::new(Mutex::new(spool));
    // Where the previous run's reports ended, so the first report continues from there.
    let last_sample = spool_dir.join("last-sample");
    opts.resume_from_ms = std::fs::read_to_string(&last_sample).ok().and_then(|t| t.trim().parse().ok());
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    let push = PushConfig {
        token_file: target.token_file.clone(),
        spool_dir: spool_dir.clone(),
        dead_letter_max_bytes: args.dead_letter_max_mib.or(file.dead_letter_max_mib).unwrap_or(64) << 20,
        max_batch: 200,
        max_batch_bytes: 256 << 10,
        max_backoff: match args.max_backoff {
            Some(d) => d,
            None => file.duration("max_backoff", &file.max_backoff)?.unwrap_or(Duration::from_secs(60)),
        },
        refused_max_backoff: REFUSED_MAX_BACKOFF,
    };
    // The sender has its own flag: a signal stops sampling, and the sender
    // goes on through the linger below.
    let sender_stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let spool = spool.clone();
        let stop = sender_stop.clone();
        std::thread::Builder::new()
            .name("sender".into())
            .spawn(move || sender(push, client, token, spool, wake_rx, stop))?
    };
    let mut sampler = Sampler::new(opts);
    tracing::info!(
        version = crate::VERSION,
        config = args.target.config.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| {
            let d = std::path::Path::new(super::settings::DEFAULT_CONFIG);
            if d.is_file() { d.display().to_string() } else { "none".into() }
        }),
        collector = %target.collector,
        spool = %spool_dir.display(),
        interval_s = interval.as_secs_f64(),
        node = sampler.node(),
        "agent running"
    );
    schedule(interval, args.count, &stop, || {
        let report = sampler.sample();
        let bytes = serde_json::to_vec(&report)?;
        // A refused write is logged by the spool, and the report kept in memory.
        let _ = spool.lock().unwrap().append(bytes);
        let tmp = last_sample.with_extension("tmp");
        let _ =
            std::fs::write(&tmp, report.interval_end_ms.to_string()).and_then(|_| std::fs::rename(&tmp, &last_sample));
        let _ = wake_tx.send(());
        Ok(())
    })?;
    // Give the sender a moment to deliver what was sampled.
    let deadline = Instant::now() + args.linger;
    while Instant::now() < deadline && !spool.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    sender_stop.store(true, Ordering::Relaxed);
    drop(wake_tx);
    let sent = sender.join().unwrap_or_default();
    let mut spool = spool.lock().unwrap();
    spool.close();
    let left = spool.pending().unwrap_or(0);
    if left > 0 {
        tracing::info!(left, "stopping with reports in the spool; they are sent at the next start");
    }
    tracing::info!(spool = %spool.stats, sender = %sent, "agent stopped");
    Ok(())
}

/// Runs `f` on a fixed schedule (the next tick does not drift with how long `f` took).
pub fn schedule(
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
