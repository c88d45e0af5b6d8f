//! `jazari sim`: simulated agents pushing real reports (load tests, demos).

use crate::client::Client;
use crate::config::{Config, EXAMPLE};
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
    let client = Client::from_args(a.url.as_deref(), a.token_file.as_deref(), &a.tls.files())?;
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
        eprintln!(
            "jazari sim: load test, {} nodes x {} GPUs, batches of {}, {} connections, {:?}",
            a.nodes, a.gpus_per_node, a.batch, a.threads, a.duration
        );
        let mut clients = vec![client];
        for url in &a.also_url {
            clients.push(Client::from_args(Some(url), a.token_file.as_deref(), &a.tls.files())?);
        }
        let f = drive::load(&clients, &spec, &tenants, a.batch, a.threads, a.duration, a.interval.as_millis() as i64);
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
        if f.errors > 0 {
            bail!("{} batches failed", f.errors);
        }
        return Ok(());
    }
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
