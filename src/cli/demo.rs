//! `jazari demo`: an embedded collector, a simulated cluster (a day of
//! backfilled history, then live agents over HTTP) and the dashboard on it.

use crate::auth::{self, Role};
use crate::client::Client;
use crate::config::{Config, EXAMPLE};
use crate::sim::{self, drive};
use crate::time::now_ms;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Simulated nodes.
    #[arg(long, default_value_t = 32)]
    pub nodes: usize,
    /// GPUs per simulated node.
    #[arg(long, default_value_t = 8)]
    pub gpus_per_node: usize,
    /// Collector configuration whose institutes the simulated jobs belong to
    /// [default: the embedded example].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Report interval of the simulated agents.
    #[arg(long, default_value = "2s", value_parser = jazari_wire::duration::parse)]
    pub interval: std::time::Duration,
}

pub fn run(a: DemoArgs) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    anyhow::ensure!(a.nodes > 0 && a.gpus_per_node > 0, "--nodes and --gpus-per-node must be at least 1");
    let mut cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::parse(EXAMPLE, Path::new("(embedded example)"))?,
    };
    cfg.nodes.interval = a.interval;
    cfg.retention.prune_every = std::time::Duration::from_secs(15);
    let dir = std::env::temp_dir().join(format!("jazari-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let store_path = dir.join("demo.sqlite");
    let (admin, node) = {
        let s = crate::store::open(&store_path)?;
        let now = now_ms();
        (auth::create(s.as_ref(), &Role::Admin, now)?.1, auth::create(s.as_ref(), &Role::Node("*".into()), now)?.1)
    };
    let tenants = sim::tenants_from(&cfg);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(%url, store = %store_path.display(), "demo collector");
    let app = crate::server::App::open(cfg, store_path.clone())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(crate::server::run(app, store_path, listener, async {
        let _ = stop_rx.await;
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let spec =
        sim::SimSpec { nodes: a.nodes, gpus_per_node: a.gpus_per_node, seed: 7, prefix: "gpu".into(), faults: true };
    let sim_thread = {
        let client = Client::new(&url, &node, std::time::Duration::from_secs(30));
        let stop = stop.clone();
        let interval = a.interval;
        // A day of history first, then the same jobs go on live.
        std::thread::spawn(move || drive::backfill_then_realtime(&client, &spec, tenants, 24, 300_000, interval, &stop))
    };
    let agent = own_agent(&url, &node, &dir, a.interval);
    let client = Client::new(&url, &admin, std::time::Duration::from_secs(10));
    let target = crate::client::network::Target { name: None, client };
    let result = crate::tui::run(vec![target], std::time::Duration::from_secs(2), true);
    stop.store(true, Ordering::Relaxed);
    if let Some(mut child) = agent {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = sim_thread.join();
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);
    result
}

/// On a machine with NVIDIA GPUs, the node's own agent joins the demo when a
/// `jazari-agent` binary sits next to this one or on PATH.
fn own_agent(url: &str, token: &str, dir: &Path, interval: std::time::Duration) -> Option<std::process::Child> {
    if !Path::new("/dev/nvidiactl").exists() {
        return None;
    }
    let beside = std::env::current_exe().ok()?.with_file_name("jazari-agent");
    let exe = if beside.exists() { beside } else { PathBuf::from("jazari-agent") };
    let token_file = dir.join("node.token");
    std::fs::write(&token_file, token).ok()?;
    let child = std::process::Command::new(exe)
        .args(["run", "--collector", url, "--token-file"])
        .arg(&token_file)
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .arg("--interval")
        .arg(format!("{}ms", interval.as_millis()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok();
    if child.is_some() {
        tracing::info!("this machine's GPUs join the demo");
    }
    child
}
