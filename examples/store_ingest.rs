//! Store-only ingest benchmark: simulated 8-GPU reports applied to a SQLite
//! store in transactions, without HTTP. Prints reports/s.
//!
//!     cargo run --release --example store_ingest -- [REPORTS] [BATCH]

use jazari::accounting::{Allocations, Policy, gpu_charges, same_index};
use jazari::config::{Config, EXAMPLE};
use jazari::sim::{SimCluster, SimSpec, tenants_from};
use jazari::store::Prepared;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(40_000);
    let batch = args.get(1).copied().unwrap_or(80);
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let map = cfg.institute_map();
    let spec = SimSpec { nodes: 1000, gpus_per_node: 8, seed: 1, prefix: "b".into(), faults: false };
    let mut sim = SimCluster::new(&spec, tenants_from(&cfg), 0);
    let mut reports = Vec::with_capacity(n);
    let mut t = 0;
    while reports.len() < n {
        t += 10_000;
        reports.extend(sim.reports(t));
    }
    reports.truncate(n);
    if std::env::var_os("PER_NODE").is_some() {
        // Agents batch their own reports: group consecutive reports by node.
        reports.sort_by(|a, b| a.node.cmp(&b.node).then(a.seq.cmp(&b.seq)));
    }
    let json: Vec<Vec<u8>> = reports.iter().map(|r| serde_json::to_vec(r).unwrap()).collect();
    let bytes: usize = json.iter().map(Vec::len).sum();
    let t0 = Instant::now();
    let decoded: Vec<jazari_wire::Report> = json.iter().map(|j| serde_json::from_slice(j).unwrap()).collect();
    let decode_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let work = Prepared::batch(decoded, |r| {
        let allocs = Allocations::from_agent(r, same_index);
        let charges = gpu_charges(r, &map, Policy { idle_threshold_pct: 5.0, mig_charge: Default::default() }, &allocs);
        (allocs, Some(charges))
    });
    let charge_s = t0.elapsed().as_secs_f64();
    let dir = std::env::temp_dir().join(format!("jazari-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = jazari::store::open(&dir.join("s.sqlite")).unwrap();
    let t0 = Instant::now();
    for chunk in work.chunks(batch) {
        store.apply(&[chunk.to_vec()], jazari::time::now_ms()).unwrap();
    }
    let store_s = t0.elapsed().as_secs_f64();
    println!("{n} reports, {:.1} KiB JSON each, batches of {batch}", bytes as f64 / n as f64 / 1024.0);
    println!("decode   {:>8.0} reports/s ({:.0} MB/s)", n as f64 / decode_s, bytes as f64 / decode_s / 1e6);
    println!("prepare  {:>8.0} reports/s (charges, history row, snapshot)", n as f64 / charge_s);
    println!("store    {:>8.0} reports/s", n as f64 / store_s);
    std::fs::remove_dir_all(dir).unwrap();
}
