//! `jazari sim`: simulated agents pushing real reports (load tests, demos).

use crate::client::Client;
use crate::config::{Config, EXAMPLE};
use crate::sim::prebuilt::{self, BodyFormat};
use crate::sim::{self, drive};
use anyhow::{Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Collector URL (default: the client file's, else http://127.0.0.1:9470).
    #[arg(long, env = "JAZARI_URL")]
    pub url: Option<String>,
    /// A node token valid for every node (`jazari token add --node '*'`).
    #[arg(long, value_name = "FILE", env = "JAZARI_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Collector configuration whose institutes' accounts the jobs run under.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Simulated nodes.
    #[arg(long, default_value_t = 32)]
    pub nodes: usize,
    /// GPUs on each simulated node.
    #[arg(long, default_value_t = 8)]
    pub gpus_per_node: usize,
    /// Report interval of each simulated agent.
    #[arg(long, default_value = "10s", value_parser = jazari_wire::duration::parse)]
    pub interval: std::time::Duration,
    /// Load test: send as fast as the collector takes, simulated time running ahead.
    #[arg(long)]
    pub load: bool,
    /// Load test: reports per request.
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    /// Load test: concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Load test: another collector to send to (repeatable); the connections
    /// are spread over --url and these, as behind a load balancer.
    #[arg(long = "also-url", value_name = "URL", requires = "load")]
    pub also_url: Vec<String>,
    /// Load test: build and compress every request body before the clock
    /// starts (--reports of them), then only send them; the run ends when
    /// they are sent or after --duration.
    #[arg(long, requires = "load")]
    pub prebuilt: bool,
    /// Load test with --prebuilt: reports to build.
    #[arg(long, default_value_t = 100_000, requires = "prebuilt")]
    pub reports: usize,
    /// Load test with --prebuilt: what to send. `prometheus`: the same
    /// reports, every numeric value a sample, as Prometheus text to --url's
    /// /api/v1/import/prometheus (VictoriaMetrics), no token needed.
    #[arg(long, value_enum, default_value = "jazari", requires = "prebuilt")]
    pub format: BodyFormat,
    /// Load test: how long to run.
    #[arg(long, default_value = "20s", value_parser = jazari_wire::duration::parse)]
    pub duration: std::time::Duration,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub tls: super::TlsArgs,
}

pub fn run(a: SimArgs) -> Result<()> {
    let tenants = match &a.config {
        Some(p) => sim::tenants_from(&Config::load(p)?),
        None => sim::tenants_from(&Config::parse(EXAMPLE, Path::new("(embedded example)"))?),
    };
    let spec = sim::SimSpec {
        nodes: a.nodes,
        gpus_per_node: a.gpus_per_node,
        seed: a.seed,
        prefix: "sim".into(),
        faults: !a.load,
    };
    if a.load {
        return load(&a, &spec, &tenants);
    }
    let client = Client::from_args(a.url.as_deref(), a.token_file.as_deref(), &a.tls.files())?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    eprintln!(
        "jazari sim: {} nodes x {} GPUs reporting every {:?} to {}; Ctrl-C stops",
        a.nodes,
        a.gpus_per_node,
        a.interval,
        client.base()
    );
    drive::realtime(&client, &spec, tenants, a.interval, &stop);
    Ok(())
}

/// `--load`: as fast as the collector takes them, or with --prebuilt bodies;
/// as Prometheus text to a time series database with --format prometheus.
fn load(a: &SimArgs, spec: &sim::SimSpec, tenants: &[sim::Tenant]) -> Result<()> {
    let urls = std::iter::once(a.url.as_deref()).chain(a.also_url.iter().map(|u| Some(u.as_str())));
    let clients = if a.format == BodyFormat::Prometheus {
        // A time series database's import endpoint: no token.
        let timeout = std::time::Duration::from_secs(30);
        urls.map(|u| Client::new(u.unwrap_or("http://127.0.0.1:8428"), "", timeout)).collect()
    } else {
        urls.map(|u| Client::from_args(u, a.token_file.as_deref(), &a.tls.files())).collect::<Result<Vec<_>>>()?
    };
    eprintln!(
        "jazari sim: load test{}, {} nodes x {} GPUs, batches of {}, {} connections, {:?} at most",
        if a.prebuilt { format!(", {} reports prebuilt as {:?}", a.reports, a.format) } else { String::new() },
        a.nodes,
        a.gpus_per_node,
        a.batch,
        a.threads,
        a.duration
    );
    let interval_ms = a.interval.as_millis() as i64;
    let f = if a.prebuilt {
        let built = prebuilt::build(spec, tenants, a.batch, a.threads, a.reports, interval_ms, a.format);
        print_built(&built);
        prebuilt::send(&clients, built, a.format, a.duration)
    } else {
        drive::load(&clients, spec, tenants, a.batch, a.threads, a.duration, interval_ms)
    };
    print_figures(&f);
    if f.errors > 0 {
        bail!("{} batches failed", f.errors);
    }
    Ok(())
}

fn print_built(b: &prebuilt::Built) {
    let bodies: usize = b.per_thread.iter().map(Vec::len).sum();
    println!("bodies built      {bodies} ({} reports, {} bytes, {:.2} s)", b.reports(), b.bytes(), b.seconds);
    if b.samples() > 0 {
        println!(
            "samples           {} ({:.1} per report)",
            b.samples(),
            b.samples() as f64 / b.reports().max(1) as f64
        );
    }
}

fn print_figures(f: &drive::LoadFigures) {
    println!("reports sent      {}", f.reports);
    println!("reports accepted  {}", f.accepted);
    println!("batches           {} ({} failed)", f.batches, f.errors);
    println!("seconds           {:.2}", f.seconds);
    println!("reports/s         {:.0}", f.reports as f64 / f.seconds);
    println!(
        "batch latency ms  p50 {:.2}  p99 {:.2}  max {:.2}",
        f.percentile(0.5),
        f.percentile(0.99),
        f.percentile(1.0)
    );
}
