//! In-process hot paths, so `cargo bench` shows a regression: decoding a
//! batch, validating it, charging it, the ledger update through a SQLite
//! store, a dashboard frame at 10,000 GPUs, a report from a month of ledger.
//!
//!     cargo bench --bench hot_paths [-- FILTER]

use jazari::accounting::{Allocations, Policy, gpu_charges, same_index};
use jazari::config::{Config, EXAMPLE};
use jazari::live::{Live, ViewPolicy, Viewer};
use jazari::sim::{SimCluster, SimSpec, tenants_from};
use jazari::store::Prepared;
use jazari_wire::{Limits, Report};
use std::path::Path;

fn main() {
    divan::main();
}

const BATCH: usize = 20;
/// Simulated time of the batches, 10 s a report from a week back.
fn start_ms() -> i64 {
    jazari::time::now_ms() - 7 * jazari::time::DAY_MS
}

fn config() -> Config {
    Config::parse(EXAMPLE, Path::new("example")).unwrap()
}

/// Batches of `BATCH` consecutive reports of one 8-GPU node, nodes in turn.
struct Batches {
    sim: SimCluster,
    node: usize,
}

impl Batches {
    fn new(nodes: usize) -> Self {
        let spec = SimSpec { nodes, gpus_per_node: 8, seed: 7, prefix: "b".into(), faults: false };
        Batches { sim: SimCluster::new(&spec, tenants_from(&config()), start_ms()), node: 0 }
    }
    fn next(&mut self) -> Vec<Report> {
        let n = self.node;
        self.node = (self.node + 1) % self.sim.len();
        (0..BATCH).filter_map(|_| self.sim.next_report(n, 10_000)).collect()
    }
}

fn prepare(reports: Vec<Report>, cfg: &Config) -> Vec<Prepared> {
    let map = cfg.institute_map();
    let policy = Policy { idle_threshold_pct: 5.0, mig_charge: Default::default() };
    Prepared::batch(reports, |r| {
        let allocs = Allocations::from_agent(r, same_index);
        let charges = gpu_charges(r, &map, policy, &allocs);
        (allocs, Some(charges))
    })
}

/// Decoding a posted batch of 20 reports (JSON, as the collector reads it).
#[divan::bench]
fn decode(b: divan::Bencher) {
    let json = serde_json::to_vec(&Batches::new(10).next()).unwrap();
    b.counter(divan::counter::BytesCount::new(json.len()))
        .bench(|| jazari_wire::decode(divan::black_box(&json)).unwrap());
}

/// The value checks of a batch of 20 reports.
#[divan::bench]
fn validate(b: divan::Bencher) {
    let reports = Batches::new(10).next();
    let now = reports.last().unwrap().interval_end_ms + 1000;
    let lim = Limits { now_ms: now, max_interval_ms: 3_600_000, oldest_ms: now - 29 * 86_400_000, max_users: 1024 };
    b.bench(|| {
        for (i, r) in divan::black_box(&reports).iter().enumerate() {
            jazari_wire::validate(r, i, lim).unwrap();
        }
    });
}

/// What a batch of 20 reports charges: allocations, charges, history rows, the snapshot.
#[divan::bench]
fn charge(b: divan::Bencher) {
    let cfg = config();
    let mut batches = Batches::new(50);
    b.with_inputs(|| batches.next()).bench_local_values(|reports| prepare(reports, &cfg));
}

/// The ledger update of one group commit (one batch of 20 reports) in a SQLite store.
#[divan::bench(args = [1, 16])]
fn ledger_update(b: divan::Bencher, batches_per_commit: usize) {
    let cfg = config();
    let dir = std::env::temp_dir().join(format!("jazari-divan-{}-{batches_per_commit}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = jazari::store::open(&dir.join("s.sqlite")).unwrap();
    let mut batches = Batches::new(1000);
    b.with_inputs(|| (0..batches_per_commit).map(|_| prepare(batches.next(), &cfg)).collect::<Vec<_>>())
        .bench_local_values(|group| store.apply(&group, jazari::time::now_ms()).unwrap());
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// One dashboard frame (overview and nodes views, 160x48) of 10,000 GPUs.
#[divan::bench(args = ["overview", "nodes"])]
fn render(b: divan::Bencher, view: &str) {
    use jazari::tui::state::{App, Command, Data, View};
    let cfg = config();
    let map = cfg.institute_map();
    let spec = SimSpec { nodes: 1250, gpus_per_node: 8, seed: 1, prefix: "gpu".into(), faults: true };
    let mut sim = SimCluster::new(&spec, tenants_from(&cfg), 0);
    let mut live = Live::default();
    for r in sim.reports(10_000) {
        live.update_from_agent(&r, 10_000);
    }
    let policy = ViewPolicy { stale_after_ms: 30_000, idle_threshold_pct: 5.0 };
    let data = Data {
        cluster: Some(live.cluster_view(&cfg.cluster, &map, policy, Viewer { institute: None }, 10_000)),
        jobs: live.jobs_view(&map, policy, Viewer { institute: None }, 10_000),
        fetched_ms: 10_000,
        ..Default::default()
    };
    let mut app = App::default();
    app.set_data(data);
    app.apply(Command::Goto(if view == "nodes" { View::Nodes } else { View::Overview }));
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).unwrap();
    b.bench_local(|| {
        term.draw(|f| jazari::tui::render::draw(f, &mut app, 0)).unwrap();
    });
}

/// Each report format over a month of hourly ledger for 200 GPUs and 20 institutes.
#[divan::bench(args = ["csv", "json", "md", "html"])]
fn report(b: divan::Bencher, format: &str) {
    use jazari::report::{Format, Options};
    let Ledger { store, cfg, period, dir } = month_of_ledger();
    let f = match format {
        "csv" => Format::Csv,
        "json" => Format::Json,
        "md" => Format::Md,
        _ => Format::Html,
    };
    b.bench_local(|| {
        let r = jazari::server::reports::build_from_store(store.as_ref(), &cfg, &period, &Options::default()).unwrap();
        jazari::report::render(&r, f)
    });
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// A store holding a month of ledger, its configuration and period, and its folder.
struct Ledger {
    store: Box<dyn jazari::store::Store>,
    cfg: Config,
    period: jazari::report::ReportPeriod,
    dir: std::path::PathBuf,
}

fn month_of_ledger() -> Ledger {
    use jazari::accounting::{Amounts, GpuCharge, LedgerKey, Part};
    use jazari_wire::{Host, WIRE_VERSION};
    let mut text = String::from("cluster = \"bench\"\n");
    for i in 0..20 {
        text.push_str(&format!(
            "[[institutes]]\nid = \"inst-{i:02}\"\nname = \"Institute {i}\"\naccounts = [\"acct-{i:02}\"]\n"
        ));
    }
    let cfg = Config::parse(&text, Path::new("bench.toml")).unwrap();
    let period = jazari::report::ReportPeriod::named("2025-01").unwrap();
    let dir = std::env::temp_dir().join(format!("jazari-divan-report-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = jazari::store::open(&dir.join("r.sqlite")).unwrap();
    let hours = (period.end_s - period.start_s) / 3600;
    for h in 0..hours {
        let hour = period.start_s + h * 3600;
        let group: Vec<Prepared> = (0..25u32)
            .map(|n| {
                let charges = (0..8u32)
                    .map(|g| {
                        let inst = (n * 7 + g / 4 + (h / 24) as u32) % 20;
                        let key = LedgerKey {
                            institute: format!("inst-{inst:02}"),
                            account: format!("acct-{inst:02}"),
                            user: format!("user-{inst:02}-{}", (n + g / 4) % 12),
                            job: format!("{}", (h / 24) * 1000 + (n * 2 + g / 4) as i64),
                            node: format!("node{n:03}"),
                            gpu: format!("GPU-{n:03}-{g}"),
                        };
                        let amounts =
                            Amounts { capacity_s: 3600.0, allocated_s: 3600.0, busy_s: 1800.0, ..Default::default() };
                        GpuCharge {
                            gpu: key.gpu.clone(),
                            parts: vec![Part { from_ms: hour * 1000, to_ms: (hour + 3600) * 1000, key, amounts }],
                        }
                    })
                    .collect();
                let report = Report {
                    version: WIRE_VERSION,
                    node: format!("node{n:03}"),
                    instance: "bench".into(),
                    seq: h as u64,
                    interval_start_ms: hour * 1000,
                    interval_end_ms: (hour + 3600) * 1000,
                    host: Host::default(),
                    gpus: vec![],
                    jobs: vec![],
                    events: vec![],
                };
                Prepared {
                    report,
                    charges: Some(charges),
                    allocs: Default::default(),
                    history: "[]".into(),
                    snapshot: None,
                }
            })
            .collect();
        store.apply(&[group], jazari::time::now_ms()).unwrap();
    }
    Ledger { store, cfg, period, dir }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}
