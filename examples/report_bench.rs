//! Report benchmark: a year of hourly ledger for 2,000 GPUs (250 nodes × 8)
//! and 20 institutes, written through the store's ingest path, then each
//! report format produced from the store as `jazari report --config` does.
//!
//!     cargo run --release --example report_bench [-- --keep DIR] [--period 2025-01]
//!
//! With --keep, the store is kept in DIR and a later run with the same DIR
//! reuses its ledger (writing a year takes minutes).

use jazari::accounting::{Amounts, GpuCharge, LedgerKey, Part};
use jazari::config::Config;
use jazari::report::{self, Format, Options, ReportPeriod};
use jazari::store::Prepared;
use jazari_wire::{Host, Report, WIRE_VERSION};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = match args.iter().position(|a| a == "--keep") {
        Some(i) => std::path::PathBuf::from(&args[i + 1]),
        None => std::env::temp_dir().join(format!("jazari-report-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg_text = String::from("cluster = \"bench\"\n");
    for i in 0..20 {
        cfg_text.push_str(&format!(
            "[[institutes]]\nid = \"inst-{i:02}\"\nname = \"Institute {i}\"\naccounts = [\"acct-{i:02}\"]\n[institutes.quota]\ngpu_hours = {}\nperiod = \"quarter\"\n",
            50_000 + i * 5_000
        ));
    }
    let cfg = Config::parse(&cfg_text, std::path::Path::new("bench.toml")).unwrap();
    let store_path = dir.join("bench.sqlite");
    // `--period 2025-01` for a shorter ledger (a month), as `bench/run --quick` does.
    let period = args.iter().position(|a| a == "--period").map(|i| args[i + 1].as_str()).unwrap_or("2025");
    let year = ReportPeriod::named(period).unwrap();
    let fresh = !store_path.exists();
    let mut store = jazari::store::open(&store_path).unwrap();
    if fresh {
        let t0 = Instant::now();
        let (nodes, gpus) = (250u32, 8u32);
        let hours = (year.end_s - year.start_s) / 3600;
        let mut charges_total = 0u64;
        for h in 0..hours {
            let hour = year.start_s + h * 3600;
            let mut group = Vec::with_capacity(nodes as usize);
            for n in 0..nodes {
                let mut charges = Vec::with_capacity(gpus as usize);
                for g in 0..gpus {
                    // Jobs of 4 GPUs lasting a day; one GPU in 16 idle capacity.
                    let inst = (n * 7 + g / 4 + (h / 24) as u32) % 20;
                    let idle = (n + g + h as u32).is_multiple_of(16);
                    let job = format!("{}", (h / 24) * 1000 + (n * 2 + g / 4) as i64);
                    let util = ((n * 13 + g * 7 + h as u32) % 100) as f64;
                    let key = if idle {
                        LedgerKey { node: format!("node{n:03}"), gpu: format!("GPU-{n:03}-{g}"), ..Default::default() }
                    } else {
                        LedgerKey {
                            institute: format!("inst-{inst:02}"),
                            account: format!("acct-{inst:02}"),
                            user: format!("user-{inst:02}-{}", (n + g / 4) % 12),
                            job,
                            node: format!("node{n:03}"),
                            gpu: format!("GPU-{n:03}-{g}"),
                        }
                    };
                    let a = if idle {
                        Amounts { capacity_s: 3600.0, energy_j: 3600.0 * 70.0, ..Default::default() }
                    } else {
                        Amounts {
                            capacity_s: 3600.0,
                            allocated_s: 3600.0,
                            busy_s: 36.0 * util,
                            idle_allocated_s: if util <= 5.0 { 3600.0 } else { 0.0 },
                            unscheduled_s: 0.0,
                            energy_j: 3600.0 * (75.0 + 6.0 * util),
                            // Hopper GPUs: SM activity well under NVML utilisation.
                            gpm_s: 3600.0,
                            sm_active_s: 36.0 * util * 0.4,
                            tensor_active_s: 36.0 * util * 0.2,
                        }
                    };
                    charges.push(GpuCharge {
                        gpu: key.gpu.clone(),
                        parts: vec![Part { from_ms: hour * 1000, to_ms: (hour + 3600) * 1000, key, amounts: a }],
                    });
                }
                charges_total += charges.len() as u64;
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
                group.push(Prepared {
                    report,
                    charges: Some(charges),
                    allocs: Default::default(),
                    history: "[]".into(),
                    snapshot: None,
                });
            }
            store.apply(&[group], jazari::time::now_ms()).unwrap();
            if h % 720 == 0 {
                eprintln!("  ledger: {} of {hours} hours written ({:.0} s)", h, t0.elapsed().as_secs_f64());
            }
        }
        println!(
            "ledger: {charges_total} hourly GPU rows for {period}, 2,000 GPUs, 20 institutes, written in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
    if !fresh {
        println!("ledger: {period}, kept from an earlier run (--keep)");
    }
    for f in [Format::Csv, Format::Json, Format::Md, Format::Html] {
        let t0 = Instant::now();
        let r = jazari::server::reports::build_from_store(store.as_ref(), &cfg, &year, &Options::default()).unwrap();
        let text = report::render(&r, f);
        std::fs::write(dir.join(format!("report.{f:?}").to_lowercase()), &text).unwrap();
        println!(
            "{:<5} {:.3} s  ({} bytes, {} institutes)",
            format!("{f:?}").to_lowercase(),
            t0.elapsed().as_secs_f64(),
            text.len(),
            r.institutes.len()
        );
    }
    if !args.iter().any(|a| a == "--keep") {
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
