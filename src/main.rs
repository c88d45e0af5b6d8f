//! `jazari`: collector, dashboard, quotas and reports.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use jazari::auth::{self, Role};
use jazari::config::Config;
use jazari::store::Store;
use std::path::{Path, PathBuf};

// The collector decodes many small JSON objects per report: mimalloc keeps
// allocation off the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Jazari: watch and account for shared GPU clusters.
#[derive(Parser, Debug)]
#[command(name = "jazari", version, about, long_about = None)]
#[command(after_help = "\
Environment:
  JAZARI_LOG     log filter, for example `info` or `jazari=debug` (default: info)
  JAZARI_URL     collector URL for clients (same as --url)
  JAZARI_TOKEN_FILE  token file for clients (same as --token-file)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the collector.
    Serve(ServeArgs),
    /// Manage API tokens (node, admin, institute).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Validate a collector configuration file.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print a commented example configuration.
    GenConfig,
    /// Simulated agents pushing real reports to a collector (load tests, demos).
    Sim(SimArgs),
    /// Quota burn-down per institute: granted, used, in flight, projection.
    Quota(QuotaArgs),
    /// The dashboard: nodes, GPUs, jobs, institutes and history, live.
    Top(TopArgs),
    /// A collector, a simulated cluster and the dashboard on it; no set-up needed.
    Demo(DemoArgs),
    /// Usage summary for a period (funding reviews): csv, json, md or html.
    Report(ReportArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["period", "from"])))]
struct ReportArgs {
    /// A year, quarter or month: 2026, 2026-Q1, 2026-03.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    period: Option<String>,
    /// First day (YYYY-MM-DD); with --to.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Only this institute.
    #[arg(long, value_name = "ID")]
    institute: Option<String>,
    /// Replace user names with stable pseudonyms.
    #[arg(long)]
    anonymise: bool,
    #[arg(long, value_enum)]
    format: jazari::report::Format,
    /// Write here (atomically: nothing is left behind on failure) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Read the store directly on the collector host, with this collector config, instead of the API.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["url", "token_file"])]
    config: Option<PathBuf>,
    /// With --config: the store (overrides the config's).
    #[arg(long, value_name = "FILE", requires = "config")]
    store: Option<PathBuf>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
struct TopArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Time between fetches.
    #[arg(long, default_value = "2s", value_parser = jazari::config::duration::parse)]
    refresh: std::time::Duration,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Simulated nodes.
    #[arg(long, default_value_t = 32)]
    nodes: usize,
    /// GPUs per simulated node.
    #[arg(long, default_value_t = 8)]
    gpus_per_node: usize,
    /// Collector configuration whose institutes the simulated jobs belong to
    /// [default: the embedded example].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Report interval of the simulated agents.
    #[arg(long, default_value = "2s", value_parser = jazari::config::duration::parse)]
    interval: std::time::Duration,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// Collector URL [env: JAZARI_URL] [default: http://127.0.0.1:9470].
    #[arg(long)]
    url: Option<String>,
    /// File holding an admin or institute token [env: JAZARI_TOKEN_FILE].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct QuotaArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this institute.
    #[arg(long, value_name = "ID")]
    institute: Option<String>,
    /// Break use down by Slurm account or by user.
    #[arg(long, value_enum)]
    by: Option<jazari::cli::quota::By>,
    #[arg(long, value_enum, default_value = "table")]
    format: QuotaFormat,
    /// Evaluate at this date (YYYY-MM-DD or an RFC 3339 UTC time) instead of now.
    #[arg(long, value_name = "DATE")]
    at: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum QuotaFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
struct SimArgs {
    /// Collector URL [env: JAZARI_URL] [default: http://127.0.0.1:9470].
    #[arg(long)]
    url: Option<String>,
    /// A node token valid for every node (`jazari token add --node '*'`) [env: JAZARI_TOKEN_FILE].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Collector configuration whose institutes' accounts the jobs run under.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    nodes: usize,
    #[arg(long, default_value_t = 8)]
    gpus_per_node: usize,
    /// Report interval of each simulated agent.
    #[arg(long, default_value = "10s", value_parser = jazari::config::duration::parse)]
    interval: std::time::Duration,
    /// Load test: send as fast as the collector takes, simulated time running ahead.
    #[arg(long)]
    load: bool,
    /// Load test: reports per request.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Load test: concurrent connections.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Load test: how long to run.
    #[arg(long, default_value = "20s", value_parser = jazari::config::duration::parse)]
    duration: std::time::Duration,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Collector configuration (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Listen address (overrides `listen` in the config).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// SQLite store (overrides `store` in the config).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct StoreArgs {
    /// Collector configuration (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// SQLite store (overrides `store` in the config).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum TokenCmd {
    /// Create a token and print its secret once.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// A token for an agent: reports for this node only, or for any node with '*'.
        #[arg(long, value_name = "NAME", group = "role")]
        node: Option<String>,
        /// A token that reads everything.
        #[arg(long, group = "role")]
        admin: bool,
        /// A token that reads what concerns one institute.
        #[arg(long, value_name = "ID", group = "role")]
        institute: Option<String>,
    },
    /// List tokens (ids and roles; secrets are never stored).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by id.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// Token id, as `token list` shows it.
        id: String,
    },
}

fn load(store: &StoreArgs) -> Result<(Config, PathBuf)> {
    let cfg = Config::load(&store.config)?;
    let path = store.store.clone().unwrap_or_else(|| cfg.store.clone());
    Ok((cfg, path))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The dashboard owns the terminal: it logs to a file.
    let log_file = matches!(cli.command, Command::Top(_) | Command::Demo(_)).then(jazari::tui::log_path);
    init_logging(log_file.as_deref());
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jazari: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(a) => {
            let cfg = Config::load(&a.config)?;
            let store = a.store.unwrap_or_else(|| cfg.store.clone());
            let listen = a.listen.unwrap_or_else(|| cfg.listen.clone());
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(jazari::server::serve(cfg, store, listen))
        }
        Command::Token(t) => token(t),
        Command::CheckConfig { file } => {
            let cfg = Config::load(&file)?;
            println!("{}: ok ({} institutes: {})", file.display(), cfg.institutes.len(), cfg.institute_ids());
            Ok(())
        }
        Command::Sim(a) => sim(a),
        Command::Quota(a) => quota(a),
        Command::Top(a) => {
            let client = jazari::client::Client::from_args(a.client.url.as_deref(), a.client.token_file.as_deref())?;
            jazari::tui::run(client, a.refresh)
        }
        Command::Demo(a) => demo(a),
        Command::Report(a) => report(a),
        Command::GenConfig => {
            print!("{}", jazari::config::EXAMPLE);
            Ok(())
        }
    }
}

fn token(cmd: TokenCmd) -> Result<()> {
    let now = jazari_agent::now_ms();
    match cmd {
        TokenCmd::Add { store, node, admin, institute } => {
            let (cfg, path) = load(&store)?;
            let role = match (node, admin, institute) {
                (Some(n), false, None) => Role::Node(n),
                (None, true, None) => Role::Admin,
                (None, false, Some(i)) => {
                    if cfg.institute(&i).is_none() {
                        bail!(
                            "no institute `{i}` in {}; known institutes: {}",
                            store.config.display(),
                            cfg.institute_ids()
                        );
                    }
                    Role::Institute(i)
                }
                _ => bail!("say what the token is for: --node NAME, --admin or --institute ID"),
            };
            let s = open_store(&path)?;
            let (id, secret) = auth::create(&s, &role, now)?;
            let (kind, scope) = role.parts();
            let what = if scope.is_empty() { kind.to_string() } else { format!("{kind} {scope}") };
            eprintln!(
                "Created token {id} ({what}). Its secret is shown once; keep it in a file readable only by its user:"
            );
            println!("{secret}");
            Ok(())
        }
        TokenCmd::List { store } => {
            let (_, path) = load(&store)?;
            let s = open_store(&path)?;
            println!("{:<10} {:<10} {:<24} {:<21} STATE", "ID", "ROLE", "SCOPE", "CREATED");
            for t in s.tokens()? {
                let state = match t.revoked_ms {
                    Some(ms) => format!("revoked {}", jazari::time::format_rfc3339(ms)),
                    None => "active".into(),
                };
                println!(
                    "{:<10} {:<10} {:<24} {:<21} {state}",
                    t.id,
                    t.role,
                    if t.scope.is_empty() { "-" } else { &t.scope },
                    jazari::time::format_rfc3339(t.created_ms)
                );
            }
            Ok(())
        }
        TokenCmd::Revoke { store, id } => {
            let (_, path) = load(&store)?;
            let s = open_store(&path)?;
            if !s.revoke_token(&id, now)? {
                bail!("no active token `{id}`; `jazari token list` shows the ids");
            }
            println!("revoked {id}; collectors stop accepting it within 30 s");
            Ok(())
        }
    }
}

fn report(a: ReportArgs) -> Result<()> {
    use jazari::report::{self as rep, ReportPeriod};
    let period = match (&a.period, &a.from, &a.to) {
        (Some(p), _, _) => ReportPeriod::named(p),
        (None, Some(f), Some(t)) => ReportPeriod::dates(f, t),
        _ => Err("give --period, or --from and --to".into()),
    }
    .map_err(anyhow::Error::msg)?;
    let started = std::time::Instant::now();
    eprintln!("jazari report: {} ({} to {}), reading the ledger…", period.label, period.first_day, period.last_day);
    let data: rep::Report = match &a.config {
        Some(cfg_path) => {
            let cfg = Config::load(cfg_path)?;
            if let Some(i) = &a.institute
                && cfg.institute(i).is_none()
                && i != jazari::accounting::UNASSIGNED
            {
                bail!("no institute `{i}` in {}; known institutes: {}", cfg_path.display(), cfg.institute_ids());
            }
            let path = a.store.clone().unwrap_or_else(|| cfg.store.clone());
            let store = open_store(&path)?;
            let days = store.day_rows(period.start_s, period.end_s, None)?;
            let hours = store.hour_rows(period.start_s, period.end_s)?;
            let coverage = store.coverage_input(period.start_s, period.end_s)?;
            let inp = rep::Inputs {
                cluster_name: &cfg.cluster,
                institutes: &cfg.institutes,
                days: &days,
                hours: &hours,
                coverage: &coverage,
                now_s: jazari_agent::now_ms() / 1000,
            };
            let opts =
                rep::Options { institute: a.institute.clone(), anonymise: a.anonymise, salt: cfg.cluster.clone() };
            rep::build(&inp, &period, &opts, jazari_agent::now_ms())
        }
        None => {
            let client = jazari::client::Client::from_args(a.client.url.as_deref(), a.client.token_file.as_deref())?;
            let mut q = match &a.period {
                Some(p) => format!("period={p}"),
                None => format!("from={}&to={}", period.first_day, period.last_day),
            };
            if let Some(i) = &a.institute {
                q.push_str(&format!("&institute={i}"));
            }
            if a.anonymise {
                q.push_str("&anonymise=true");
            }
            client.get(&format!("/api/v1/report?{q}"))?
        }
    };
    if data.total.allocated_gpu_hours == 0.0
        && data.total.unscheduled_gpu_hours == 0.0
        && data.cluster.figures.capacity_gpu_hours == 0.0
    {
        eprintln!("jazari report: warning: the ledger holds no data for {}; the report is empty", period.label);
    }
    eprintln!("jazari report: {} institutes, rendering {:?}…", data.institutes.len(), a.format);
    let text = rep::render(&data, a.format);
    match &a.out {
        Some(path) => {
            let tmp = path.with_file_name(format!(
                ".{}.tmp-{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("report"),
                std::process::id()
            ));
            let res = std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, path));
            if let Err(e) = res {
                let _ = std::fs::remove_file(&tmp);
                bail!("cannot write {}: {e}", path.display());
            }
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

fn demo(a: DemoArgs) -> Result<()> {
    use jazari::sim;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    anyhow::ensure!(a.nodes > 0 && a.gpus_per_node > 0, "--nodes and --gpus-per-node must be at least 1");
    let mut cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::parse(jazari::config::EXAMPLE, Path::new("(embedded example)"))?,
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
        let s = Store::open(&store_path)?;
        let now = jazari_agent::now_ms();
        (auth::create(&s, &Role::Admin, now)?.1, auth::create(&s, &Role::Node("*".into()), now)?.1)
    };
    let tenants = sim::tenants_from(&cfg);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(%url, store = %store_path.display(), "demo collector");
    let app = jazari::server::App::open(cfg, store_path.clone())?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(jazari::server::run(app, store_path, listener, async {
        let _ = stop_rx.await;
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let spec =
        sim::SimSpec { nodes: a.nodes, gpus_per_node: a.gpus_per_node, seed: 7, prefix: "gpu".into(), faults: true };
    let sim_thread = {
        let client = jazari::client::Client::new(&url, &node, std::time::Duration::from_secs(30));
        let stop = stop.clone();
        let interval = a.interval;
        std::thread::spawn(move || {
            // A day of history first, then live reports.
            if let Err(e) = sim::backfill(&client, &spec, tenants.clone(), 24, 300_000) {
                tracing::warn!("demo backfill failed: {e}");
            }
            sim::realtime(&client, &spec, tenants, interval, &stop);
        })
    };
    let agent = own_agent(&url, &node, &dir, a.interval);
    let client = jazari::client::Client::new(&url, &admin, std::time::Duration::from_secs(10));
    let result = jazari::tui::run(client, std::time::Duration::from_secs(2));
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

fn quota(a: QuotaArgs) -> Result<()> {
    let client = jazari::client::Client::from_args(a.client.url.as_deref(), a.client.token_file.as_deref())?;
    let mut query = vec![];
    if let Some(i) = &a.institute {
        query.push(format!("institute={i}"));
    }
    if let Some(at) = &a.at {
        jazari::time::parse_instant(at).map_err(|e| anyhow::anyhow!("--at: {e}"))?;
        query.push(format!("at={at}"));
    }
    let path = format!("/api/v1/quotas?{}", query.join("&"));
    let v: serde_json::Value = client.get(&path)?;
    match a.format {
        QuotaFormat::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        QuotaFormat::Table => {
            let items: Vec<jazari::quota::BurnDown> = serde_json::from_value(v["institutes"].clone())
                .context("the collector's quota answer is not what this client expects")?;
            print!("{}", jazari::cli::quota::table(&items, a.by));
        }
    }
    Ok(())
}

fn sim(a: SimArgs) -> Result<()> {
    use jazari::sim;
    let client = jazari::client::Client::from_args(a.url.as_deref(), a.token_file.as_deref())?;
    let tenants = match &a.config {
        Some(p) => sim::tenants_from(&Config::load(p)?),
        None => sim::tenants_from(&Config::parse(jazari::config::EXAMPLE, Path::new("(embedded example)"))?),
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
        let f = sim::load(&client, &spec, &tenants, a.batch, a.threads, a.duration, a.interval.as_millis() as i64);
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
    sim::realtime(&client, &spec, tenants, a.interval, &stop);
    Ok(())
}

fn open_store(path: &Path) -> Result<Store> {
    Store::open(path).with_context(|| "opening the store".to_string())
}

fn init_logging(file: Option<&Path>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("JAZARI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if let Some(path) = file {
        let opened = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(path));
        let writer = match opened {
            Ok(f) => std::sync::Mutex::new(Box::new(f) as Box<dyn std::io::Write + Send>),
            Err(_) => std::sync::Mutex::new(Box::new(std::io::sink()) as Box<dyn std::io::Write + Send>),
        };
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_target(false)
            .with_ansi(false)
            .init();
        return;
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}
