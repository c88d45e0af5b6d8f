//! Against a real Slurm (Debian's slurm-wlm; `scripts/slurm-up` starts one with
//! 4 fake GPUs): jobs under two accounts of two institutes, one holding 2 GPUs
//! and running nothing on them, the agent's fake NVML processes matching the
//! other; allocation, the idle-allocated flag, ledger charges, committed hours
//! and queue pressure come out right.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn slurm_up() -> bool {
    let ok = Command::new("sinfo").args(["-h", "-o", "%t"]).output().is_ok_and(|o| {
        let s = String::from_utf8_lossy(&o.stdout);
        o.status.success() && ["idle", "mix", "alloc"].iter().any(|t| s.contains(t))
    });
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Slurm must be running in CI (.ci/run starts it with scripts/slurm-up)"
        );
        eprintln!("SKIPPED: no running Slurm; start one with `sudo scripts/slurm-up` to run the Slurm test");
    }
    ok
}

fn sbatch(args: &[&str]) -> String {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .args(["--output=/dev/null", "--wrap", "sleep 900"])
        .output()
        .unwrap();
    assert!(out.status.success(), "sbatch: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().split(';').next().unwrap().to_string()
}

struct Cancel(Vec<String>);
impl Drop for Cancel {
    fn drop(&mut self) {
        let _ = Command::new("scancel").args(&self.0).status();
    }
}

fn state(job: &str) -> String {
    let out = Command::new("squeue").args(["-h", "-j", job, "-o", "%T"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn slurm_allocations_drive_the_ledger() {
    if !slurm_up() {
        return;
    }
    let node =
        String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap().trim().to_string();
    // Climate (al-biruni) holds GPUs 0-1 and runs nothing on them; vision-lab (al-haytham) uses 2-3.
    let idle = sbatch(&["--gres=gpu:2", "-A", "climate", "-t", "60", "-J", "jazari-idle"]);
    let mut jobs = Cancel(vec![idle.clone()]);
    wait_until("the idle job to run", Duration::from_secs(30), || state(&idle) == "RUNNING");
    let busy = sbatch(&["--gres=gpu:2", "-A", "vision-lab", "-t", "30", "-J", "jazari-busy"]);
    jobs.0.push(busy.clone());
    wait_until("the busy job to run", Duration::from_secs(30), || state(&busy) == "RUNNING");
    // A third job waits for GPUs: queue pressure for ibn-sina.
    let queued = sbatch(&["--gres=gpu:2", "-A", "nlp-lab", "-t", "10", "-J", "jazari-queued"]);
    jobs.0.push(queued.clone());

    let cfg = config_with_slurm(r#"["squeue", "--json"]"#, "1s");
    let c = Collector::start_with_config(&cfg);
    wait_until("the collector to read Slurm", Duration::from_secs(20), || {
        let s: Value = c.get("/api/v1/scheduler");
        s["jobs"].as_array().is_some_and(|j| j.len() >= 3)
    });

    // The node's fake GPUs: processes of the busy job on GPUs 2-3 (its Slurm job id in their environment).
    let scen = c.dir.path().join("slurm-node.json");
    let gpu = |i: u32, util: u32, procs: &str| {
        format!(
            r#"{{"name": "NVIDIA H200", "uuid": "GPU-51a7e000-0000-4000-8000-00000000000{i}", "pci_bus_id": "00000000:1{i}:00.0",
               "minor": {i}, "memory_total_mib": 144384, "memory_used_mib": 1000, "util_gpu": {util}, "util_mem": 10,
               "power_mw": 300000, "power_limit_mw": 700000, "unsupported": ["fan"], "processes": [{procs}]}}"#
        )
    };
    let p = r#"{"spawn": "busy", "used_memory_mib": 20000}"#;
    std::fs::write(
        &scen,
        format!(
            r#"{{"description": "a Slurm node", "processes": {{"busy": {{"uid": 2002, "env": {{"SLURM_JOB_ID": "{busy}", "SLURM_JOB_ACCOUNT": "vision-lab", "SLURM_JOB_USER": "bob"}}}}}},
               "gpus": [{}, {}, {}, {}]}}"#,
            gpu(0, 0, ""),
            gpu(1, 0, ""),
            gpu(2, 90, p),
            gpu(3, 80, p)
        ),
    )
    .unwrap();
    let spool = TempDir::new("spool");
    let status = Command::new(agent_bin())
        .args(["run", "--collector", &c.url, "--token-file"])
        .arg(&c.node_token_file)
        .arg("--spool-dir")
        .arg(spool.path())
        .args(["--node", &node, "--interval", "500ms", "--count", "4"])
        .env("JAZARI_NVML_LIB", fake_lib())
        .env("FAKE_NVML_CONFIG", &scen)
        .status()
        .unwrap();
    assert!(status.success());

    // Allocation and the idle flag, from Slurm.
    let n: Value = c.get(&format!("/api/v1/nodes/{node}"));
    let g = |i: usize| n["gpus"][i].clone();
    assert_eq!(g(0)["allocated_to"]["job"], idle.as_str(), "{n}");
    assert_eq!(g(0)["allocated_to"]["institute"], "al-biruni");
    assert_eq!(g(0)["idle_allocated"], true);
    assert_eq!(g(1)["idle_allocated"], true);
    assert_eq!(g(2)["allocated_to"]["job"], busy.as_str());
    assert_eq!(g(2)["allocated_to"]["institute"], "al-haytham");
    assert_eq!(g(2)["idle_allocated"], false);

    // Ledger charges to the right institutes.
    let usage = c.usage("institute");
    let f = |i: &str, k: &str| usage.get(i).and_then(|r| r[k].as_f64()).unwrap_or(0.0);
    assert!(f("al-biruni", "allocated_gpu_seconds") > 0.0);
    assert_eq!(f("al-biruni", "idle_allocated_gpu_seconds"), f("al-biruni", "allocated_gpu_seconds"));
    assert_eq!(f("al-biruni", "busy_gpu_seconds"), 0.0);
    assert!(f("al-haytham", "busy_gpu_seconds") > 0.0);
    assert!(
        (f("al-biruni", "allocated_gpu_seconds") - f("al-haytham", "allocated_gpu_seconds")).abs() < 1e-6,
        "2 GPUs each"
    );
    assert_eq!(f("ibn-sina", "allocated_gpu_seconds"), 0.0, "the queued job used nothing");

    // Committed hours from the time limit (60 min × 2 GPUs, less what has run), and queue pressure.
    let q: Value = c.get("/api/v1/quotas");
    let inst = |id: &str| q["institutes"].as_array().unwrap().iter().find(|i| i["institute"] == id).unwrap().clone();
    let biruni = inst("al-biruni");
    assert_eq!(biruni["committed_known"], true);
    let committed = biruni["committed_gpu_hours"].as_f64().unwrap();
    assert!(committed > 1.9 && committed <= 2.0, "committed {committed}");
    let haytham = inst("al-haytham")["committed_gpu_hours"].as_f64().unwrap();
    assert!(haytham > 0.9 && haytham <= 1.0, "30 min × 2 GPUs: {haytham}");
    assert_eq!(inst("ibn-sina")["queued_gpus"], 2);

    // No disagreement here; a Slurm job on a node that never reported is a finding.
    let fnd: Value = c.get("/api/v1/findings");
    assert_eq!(fnd["scheduler_ok"], true);
    assert!(fnd["findings"].as_array().unwrap().iter().all(|f| f["kind"] != "wrong_gpu"), "{fnd}");
    drop(jobs);
}
