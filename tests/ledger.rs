//! Ledger truth end to end (a real `jazari serve`, reports over HTTP): time is
//! charged once whatever the sequence number or agent instance, coverage never
//! exceeds wall time, peaks are peaks, and periods are answered exactly.

mod common;
use common::*;
use jazari_wire::{Gpu, Host, Job, Report, WIRE_VERSION};
use serde_json::Value;
use std::time::Duration;

/// A report of node `node` with 4 GPUs held by job 77 of nlp-lab (ibn-sina), 50 % busy.
fn report(node: &str, instance: &str, seq: u64, start_ms: i64, end_ms: i64) -> Report {
    Report {
        version: WIRE_VERSION,
        node: node.into(),
        instance: instance.into(),
        seq,
        interval_start_ms: start_ms,
        interval_end_ms: end_ms,
        host: Host::default(),
        gpus: (0..4)
            .map(|i| Gpu {
                index: i,
                uuid: Some(format!("GPU-{node}-{i}")),
                util_gpu_pct: Some(50),
                power_mw: Some(400_000),
                ..Default::default()
            })
            .collect(),
        jobs: vec![Job {
            scheduler: "slurm".into(),
            id: "77".into(),
            account: Some("nlp-lab".into()),
            user: Some("alice".into()),
            gpu_ids: Some(vec![0, 1, 2, 3]),
            processes: 1,
            ..Default::default()
        }],
        events: vec![],
    }
}

fn post(c: &Collector, reports: &[Report]) -> Value {
    let (status, body) =
        c.with_token(&c.node_token).post_json("/api/v1/reports", &serde_json::to_vec(reports).unwrap(), None).unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn capacity(c: &Collector) -> f64 {
    c.usage("node").values().map(|r| r["capacity_gpu_seconds"].as_f64().unwrap()).sum()
}

fn covered(c: &Collector, node: &str) -> f64 {
    let v = c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01");
    v["nodes"].as_array().unwrap().iter().find(|n| n["node"] == node).map(|n| n["covered_s"].as_f64().unwrap()).unwrap()
}

#[test]
fn the_same_time_is_charged_once_whatever_seq_or_instance() {
    // The findings evaluator every 200 ms, so the overlap shows at once.
    let config = with_alerts(
        &std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap(),
        &[("evaluate_every", "\"200ms\"")],
    );
    let c = Collector::start_with_config(&config);
    let now = jazari::time::now_ms();
    let (t0, t1) = (now - 120_000, now - 60_000);
    // A 60 s report of 4 GPUs: 240 GPU-seconds.
    assert_eq!(post(&c, &[report("n1", "a", 0, t0, t1)])["accepted"], 1);
    assert!((capacity(&c) - 240.0).abs() < 1e-6);
    // The same interval under a new seq, and from a new instance: accepted, nothing charged, counted.
    let o = post(&c, &[report("n1", "a", 1, t0, t1)]);
    assert_eq!((o["accepted"].as_u64(), o["overlapping"].as_u64()), (Some(1), Some(1)), "{o}");
    post(&c, &[report("n1", "b", 0, t0, t1)]);
    assert!((capacity(&c) - 240.0).abs() < 1e-6, "{}", capacity(&c));
    // Half-overlapping, from a third instance: its new 30 s only.
    post(&c, &[report("n1", "c", 0, t0 + 30_000, t1 + 30_000)]);
    assert!((capacity(&c) - 360.0).abs() < 1e-6, "{}", capacity(&c));
    // A restart whose reports arrive out of order: the later one first, then one
    // reaching back over charged time.
    post(&c, &[report("n1", "d", 1, t1 + 50_000, t1 + 60_000)]);
    post(&c, &[report("n1", "d", 0, t1, t1 + 50_000)]);
    // Charged: [t0, t1 + 60 s) = 120 s × 4 GPUs.
    assert!((capacity(&c) - 480.0).abs() < 1e-6, "{}", capacity(&c));
    let alloc: f64 = c.usage("institute")["ibn-sina"]["allocated_gpu_seconds"].as_f64().unwrap();
    assert!((alloc - 480.0).abs() < 1e-6);
    // Coverage: the wall time spanned, 120 s, never more.
    assert!((covered(&c, "n1") - 120.0).abs() < 1e-6, "{}", covered(&c, "n1"));
    // The overlap is a finding naming the node.
    let overlap = || {
        let f = c.get("/api/v1/findings");
        f["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "overlapping_reports").cloned()
    };
    wait_until("the overlap finding", Duration::from_secs(10), || overlap().is_some());
    let f = overlap().unwrap();
    assert_eq!(f["node"], "n1");
    assert!(f["message"].as_str().unwrap().contains("already charged"), "{f}");
    // And the collector counts it.
    let metrics = metrics(&c.url);
    assert!(metrics.contains("jazari_overlapping_reports_total 4"), "{metrics}");
}

#[test]
fn the_dedup_record_stays_small_after_a_lost_seq() {
    let c = Collector::start();
    let start = jazari::time::now_ms() - 10_001 * 100;
    let mut seq = 0;
    post(&c, &[report("n2", "a", 0, start, start + 100)]);
    // seq 1 is lost; 10,000 more reports follow, 100 ms each.
    let mut t = start + 200;
    for chunk in 0..50 {
        let batch: Vec<Report> = (0..200)
            .map(|k| {
                seq = 2 + chunk * 200 + k;
                let r = report("n2", "a", seq, t, t + 100);
                t += 100;
                r
            })
            .collect();
        assert_eq!(post(&c, &batch)["accepted"], 200);
    }
    let ranges = common::pg::query_text(&c.store, "SELECT ranges FROM delivered WHERE node = 'n2' AND instance = 'a'");
    assert_eq!(ranges, format!("0,2-{seq}"));
    let sets = common::pg::query_text(&c.store, "SELECT sets FROM charged WHERE node = 'n2'");
    assert!(sets.len() < 600, "{sets}");
}

#[test]
fn a_4_gpu_job_peaks_at_4_gpus_in_the_report() {
    let c = Collector::start();
    let now = jazari::time::now_ms();
    // 30 minutes of a 4-GPU job in 10 s reports: the hourly mean is 2 GPUs, the peak 4.
    let reports: Vec<Report> = (0..180)
        .map(|k| report("n3", "a", k, now - 1_800_000 + k as i64 * 10_000, now - 1_790_000 + k as i64 * 10_000))
        .collect();
    for chunk in reports.chunks(60) {
        post(&c, chunk);
    }
    let day = |ms: i64| jazari::time::format_date(ms);
    let r = c.get(&format!("/api/v1/report?from={}&to={}", day(now - 1_800_000), day(now)));
    let ibn = r["institutes"].as_array().unwrap().iter().find(|i| i["id"] == "ibn-sina").unwrap().clone();
    assert!((ibn["peak_held_gpus"].as_f64().unwrap() - 4.0).abs() < 1e-6, "{ibn}");
    assert!((ibn["peak_busy_gpus"].as_f64().unwrap() - 2.0).abs() < 1e-6, "{ibn}");
}

#[test]
fn periods_inside_hours_are_exact_or_refused() {
    let c = Collector::start();
    let h = jazari::time::hour_floor_ms(jazari::time::now_ms()) - 3 * 3_600_000;
    // 12:00-12:40 and 13:00-13:20 (relative to the hour h), 4 GPUs.
    post(&c, &[report("n4", "a", 0, h, h + 2_400_000)]);
    post(&c, &[report("n4", "a", 1, h + 3_600_000, h + 4_800_000)]);
    let fmt = jazari::time::format_rfc3339;
    let usage = |from: i64, to: i64| -> Result<f64, String> {
        let q = format!("/api/v1/usage?from={}&to={}&group_by=node", fmt(from), fmt(to));
        match c.admin().get::<Value>(&q) {
            Ok(v) => {
                Ok(v["rows"].as_array().unwrap().iter().map(|r| r["capacity_gpu_seconds"].as_f64().unwrap()).sum())
            }
            Err(e) => Err(e.to_string()),
        }
    };
    // Bounds in the gaps (12:50 and 13:30): exact, and adjacent periods add up.
    let (a, b, d) = (h - 3_600_000, h + 3_000_000, h + 5_400_000);
    let first = usage(a, b).unwrap();
    let second = usage(b, d).unwrap();
    assert!((first - 2400.0 * 4.0).abs() < 1e-6, "{first}");
    assert!((second - 1200.0 * 4.0).abs() < 1e-6, "{second}");
    assert!((usage(a, d).unwrap() - first - second).abs() < 1e-6);
    // A bound inside a report (12:20): refused, saying where.
    let e = usage(a, h + 1_200_000).unwrap_err();
    assert!(e.contains("400") && e.contains("n4") && e.contains("hourly buckets"), "{e}");
}

#[test]
fn sm_activity_from_the_agents_gpm_is_charged_within_the_allocated_time() {
    // The real agent on 8 fake H200s whose SM activity tells another story than NVML
    // utilisation: GPU 0 is 100 % "utilised" with 18 % of its SMs active.
    let c = Collector::start();
    let spool = TempDir::new("spool");
    let out = agent_run(&c.url, &c.node_token_file, spool.path(), "gpm-node", &["--interval", "300ms", "--count", "5"])
        .env("FAKE_NVML_CONFIG", root().join("tests/fake-nvml/scenarios/h200-gpm.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = c.usage("gpu");
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    let mut low_sm_full_util = 0;
    for (gpu, r) in &rows {
        let (alloc, measured, sm) =
            (f(r, "allocated_gpu_seconds"), f(r, "gpm_measured_gpu_seconds"), f(r, "sm_active_gpu_seconds"));
        assert!(sm >= 0.0 && sm <= measured + 1e-9 && measured <= alloc + 1e-9, "{gpu}: {r}");
        assert!(f(r, "tensor_active_gpu_seconds") <= measured + 1e-9, "{gpu}: {r}");
        if measured > 0.0 && (sm / measured - 0.18).abs() < 0.005 && f(r, "busy_gpu_seconds") / alloc > 0.99 {
            low_sm_full_util += 1;
        }
    }
    assert_eq!(low_sm_full_util, 1, "GPU 0: 100 % NVML utilisation, 18 % SM active: {rows:?}");
    let total: f64 = rows.values().map(|r| f(r, "sm_active_gpu_seconds")).sum();
    assert!(total > 0.0);
}

#[test]
fn mig_slices_reach_the_ledger_under_their_own_uuids() {
    let c = Collector::start();
    let spool = TempDir::new("spool");
    let out = agent_run(&c.url, &c.node_token_file, spool.path(), "mig-node", &["--interval", "300ms", "--count", "4"])
        .env("FAKE_NVML_CONFIG", root().join("tests/fake-nvml/scenarios/h200-mig.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = c.usage("gpu");
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    let slices: Vec<&String> = rows.keys().filter(|k| k.starts_with("MIG-")).collect();
    assert!(slices.len() >= 10, "every slice keyed by its MIG UUID: {:?}", rows.keys().collect::<Vec<_>>());
    let held: f64 =
        rows.iter().filter(|(k, _)| k.starts_with("MIG-")).map(|(_, r)| f(r, "allocated_gpu_seconds")).sum();
    assert!(held > 0.0, "{rows:?}");
    // Capacity counts whole GPUs: 3 GPUs over the time covered.
    let cov = c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01");
    let covered = cov["nodes"][0]["covered_s"].as_f64().unwrap();
    let capacity: f64 = rows.values().map(|r| f(r, "capacity_gpu_seconds")).sum();
    assert!((capacity - 3.0 * covered).abs() < 1e-3, "{capacity} vs 3 × {covered}");
}
