//! A stand-in for Slurm: `squeue --json` documents in Slurm 22.05's shape
//! (built from the real output in `tests/slurm/squeue-22.05.json`), written
//! to a file a `cat` command prints; and fake-NVML scenarios for one node.
#![allow(dead_code)]

use super::root;
use serde_json::{Value, json};
use std::path::Path;

/// One job as the stand-in `squeue` shows it.
#[derive(Debug, Clone)]
pub struct FakeJob {
    pub id: u64,
    pub account: String,
    pub user: String,
    pub group: String,
    /// RUNNING, PENDING, COMPLETED, …
    pub state: String,
    pub node: String,
    /// Slurm's GPU indices (IDX) on the node, for a running job.
    pub idx: Vec<u32>,
    pub start_s: i64,
    pub end_s: i64,
    pub limit_min: i64,
    /// `tres_per_node` (`gres:gpu:2`, `gres:gpu:h200:1`).
    pub per_node: String,
    /// For a pending array: its task string (`3-5`).
    pub array_tasks: Option<String>,
    /// Its partition (the template's, `gpu`, when None).
    pub partition: Option<String>,
}

impl FakeJob {
    pub fn running(id: u64, account: &str, user: &str, node: &str, idx: &[u32], start_s: i64) -> Self {
        FakeJob {
            id,
            account: account.into(),
            user: user.into(),
            group: user.into(),
            state: "RUNNING".into(),
            node: node.into(),
            idx: idx.to_vec(),
            start_s,
            end_s: start_s + 3600,
            limit_min: 60,
            per_node: format!("gres:gpu:{}", idx.len()),
            array_tasks: None,
            partition: None,
        }
    }

    pub fn pending(id: u64, account: &str, user: &str, gpus: u32) -> Self {
        FakeJob {
            id,
            account: account.into(),
            user: user.into(),
            group: user.into(),
            state: "PENDING".into(),
            node: String::new(),
            idx: vec![],
            start_s: 0,
            end_s: 0,
            limit_min: 60,
            per_node: format!("gres:gpu:{gpus}"),
            array_tasks: None,
            partition: None,
        }
    }

    pub fn partition(mut self, p: &str) -> Self {
        self.partition = Some(p.into());
        self
    }

    pub fn group(mut self, g: &str) -> Self {
        self.group = g.into();
        self
    }

    /// The job ended at `end_s` in `state` (squeue keeps ended jobs a few minutes).
    pub fn ended(mut self, state: &str, end_s: i64) -> Self {
        self.state = state.into();
        self.end_s = end_s;
        self
    }
}

/// The job record Slurm 22.05 printed for a running 2-GPU job.
fn template() -> Value {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/slurm/squeue-22.05.json")).unwrap()).unwrap();
    doc["jobs"][0].clone()
}

/// An `squeue --json` document holding `jobs`.
pub fn squeue_json(jobs: &[FakeJob]) -> String {
    let tmpl = template();
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/slurm/squeue-22.05.json")).unwrap()).unwrap();
    let list: Vec<Value> = jobs
        .iter()
        .map(|j| {
            let mut v = tmpl.clone();
            let running = !j.node.is_empty();
            let idx = j.idx.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let o = v.as_object_mut().unwrap();
            o.insert("job_id".into(), json!(j.id));
            o.insert("name".into(), json!(format!("job-{}", j.id)));
            o.insert("account".into(), json!(j.account));
            o.insert("user_name".into(), json!(j.user));
            o.insert("group_name".into(), json!(j.group));
            o.insert("job_state".into(), json!(j.state));
            o.insert("nodes".into(), json!(j.node));
            o.insert("start_time".into(), json!(j.start_s));
            o.insert("end_time".into(), json!(j.end_s));
            o.insert("time_limit".into(), json!(j.limit_min));
            o.insert("tres_per_node".into(), json!(j.per_node));
            if let Some(p) = &j.partition {
                o.insert("partition".into(), json!(p));
            }
            let ended = !matches!(j.state.as_str(), "RUNNING" | "PENDING" | "COMPLETING");
            let detail = if running && !ended { vec![format!("gpu:{}(IDX:{idx})", j.idx.len())] } else { vec![] };
            o.insert("gres_detail".into(), json!(detail));
            let alloc =
                if running { format!("cpu=1,node=1,billing=1,gres/gpu={}", j.idx.len()) } else { String::new() };
            o.insert("tres_alloc_str".into(), json!(alloc));
            if let Some(t) = &j.array_tasks {
                o.insert("array_job_id".into(), json!(j.id));
                o.insert("array_task_string".into(), json!(t));
            }
            if !running {
                o.insert("job_resources".into(), Value::Null);
                o.insert("batch_host".into(), json!(""));
                o.insert("state_reason".into(), json!("Resources"));
            } else {
                o["job_resources"]["nodes"] = json!(j.node);
                o["job_resources"]["allocated_nodes"][0]["nodename"] = json!(j.node);
                o.insert("batch_host".into(), json!(j.node));
            }
            v
        })
        .collect();
    doc["jobs"] = Value::Array(list);
    serde_json::to_string(&doc).unwrap()
}

/// Writes `text` so that a reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A collector configuration with the stand-in: `squeue` prints `file`, no `sacct`.
pub fn config_with_standin(file: &Path, interval: &str, extra: &[(&str, &str)]) -> String {
    let mut cfg = super::config_with_slurm(&format!(r#"["cat", "{}"]"#, file.display()), interval)
        .replace("sacct_command = [\"sacct\", \"--json\"]", "sacct_command = []")
        .replace("timeout = \"20s\"", "timeout = \"5s\"");
    for (from, to) in extra {
        assert!(cfg.contains(from), "the example config has no `{from}`");
        cfg = cfg.replace(from, to);
    }
    cfg
}

/// One GPU of a scenario: NVML index (its place in the list), minor number,
/// utilization, and the names of the scenario processes running on it.
pub struct FakeGpu<'a> {
    pub minor: u32,
    pub util: u32,
    pub procs: &'a [&'a str],
}

/// A scenario process: name, uid, environment.
pub type FakeProc<'a> = (&'a str, u32, &'a [(&'a str, &'a str)]);

/// The scenario's `processes` object: each process by name, with its uid and environment.
fn procs_json(processes: &[FakeProc]) -> serde_json::Map<String, Value> {
    processes
        .iter()
        .map(|(name, uid, env)| {
            let env: serde_json::Map<String, Value> = env.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            (name.to_string(), json!({"uid": uid, "env": env}))
        })
        .collect()
}

/// A fake-NVML scenario: `gpus` in NVML order; `processes` started by the library.
pub fn scenario_json(gpus: &[FakeGpu], processes: &[FakeProc]) -> String {
    let procs = procs_json(processes);
    let gpus: Vec<Value> = gpus
        .iter()
        .enumerate()
        .map(|(i, g)| {
            json!({
                "name": "NVIDIA H200",
                "uuid": format!("GPU-5a1d0000-0000-4000-8000-0000000000{i:02}"),
                "pci_bus_id": format!("00000000:{:02X}:00.0", 0x18 + i * 0x10),
                "minor": g.minor,
                "memory_total_mib": 144384,
                "memory_used_mib": if g.procs.is_empty() { 0 } else { 40000 },
                "util_gpu": g.util,
                "util_mem": g.util / 2,
                "power_mw": 100000 + g.util * 5000,
                "power_limit_mw": 700000,
                "unsupported": ["fan"],
                "processes": g.procs.iter().map(|p| json!({"spawn": p, "used_memory_mib": 20000})).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({"description": "a Slurm node (test)", "processes": procs, "gpus": gpus}))
        .unwrap()
}

/// A job id no other test or user of this host uses (processes carry it in
/// `SLURM_JOB_ID`, and agents see every process of the host).
pub fn unique_job_id(k: u64) -> u64 {
    8_000_000 + (std::process::id() as u64 % 100_000) * 100 + k
}

/// A job that ended: id, account, user, node, GPUs, start, end, state.
pub type EndedJob<'a> = (u64, &'a str, &'a str, &'a str, u32, i64, i64, &'a str);

/// A `sacct --json` document of jobs that ended.
pub fn sacct_json(jobs: &[EndedJob]) -> String {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/slurm/sacct-ends.json")).unwrap()).unwrap();
    let tmpl = doc["jobs"][0].clone();
    let list: Vec<Value> = jobs
        .iter()
        .map(|&(id, account, user, node, gpus, start, end, state)| {
            let mut v = tmpl.clone();
            v["job_id"] = json!(id);
            v["account"] = json!(account);
            v["user"] = json!(user);
            v["group"] = json!(user);
            v["nodes"] = json!(node);
            v["time"]["start"] = json!(start);
            v["time"]["end"] = json!(end);
            v["time"]["elapsed"] = json!(end - start);
            v["state"]["current"] = json!(state);
            v["tres"]["allocated"] = json!([
                {"type": "cpu", "name": null, "id": 1, "count": 1},
                {"type": "node", "name": null, "id": 4, "count": 1},
                {"type": "gres", "name": "gpu", "id": 1001, "count": gpus},
                {"type": "gres", "name": "gpu:h200", "id": 1002, "count": gpus}
            ]);
            v
        })
        .collect();
    doc["jobs"] = Value::Array(list);
    serde_json::to_string(&doc).unwrap()
}

/// A fake-NVML scenario for the MIG node of `scripts/slurm-up`: GPU 0 a whole
/// H200 (minor 6), GPU 1 an H200 in MIG mode split into two 3g.71gb slices
/// (GPU instances 1 and 2, UUIDs `MIG-…-0001`, `MIG-…-0002`), each with GPM
/// activity (SM active, tensor active) and the named scenario processes.
pub fn mig_scenario_json(slices: [(f64, f64, &[&str]); 2], processes: &[FakeProc]) -> String {
    let procs = procs_json(processes);
    let mig: Vec<Value> = slices
        .iter()
        .enumerate()
        .map(|(i, (sm, tensor, on))| {
            json!({
                "uuid": format!("MIG-5a1d0000-0000-4000-8000-00000000000{}", i + 1),
                "profile": "3g.71gb",
                "gpu_instance_id": i + 1,
                "compute_instance_id": 0,
                "memory_used_mib": if on.is_empty() { 0 } else { 20000 },
                "processes": on.iter().map(|p| json!({"spawn": p, "used_memory_mib": 20000})).collect::<Vec<_>>(),
                "gpm": {"sm_active_pct": sm, "sm_occupancy_pct": sm / 2.0, "tensor_active_pct": tensor,
                        "dram_active_pct": 10.0, "fp64_active_pct": 0.0},
            })
        })
        .collect();
    let gpu = |i: usize, minor: u32| {
        json!({
            "name": "NVIDIA H200",
            "uuid": format!("GPU-5a1d0000-0000-4000-8000-00000000a0{i:02}"),
            "pci_bus_id": format!("00000000:{:02X}:00.0", 0x18 + i * 0x10),
            "minor": minor,
            "memory_total_mib": 144384,
            "memory_used_mib": 0,
            "util_gpu": 0,
            "util_mem": 0,
            "power_mw": 100000,
            "power_limit_mw": 700000,
            "compute_capability": "9.0",
        })
    };
    let whole = gpu(0, 6);
    let mut split = gpu(1, 7);
    let o = split.as_object_mut().unwrap();
    o.insert("mig_enabled".into(), json!(true));
    o.insert("unsupported".into(), json!(["fan", "utilization"]));
    o.insert("mig_devices".into(), Value::Array(mig));
    let mut whole = whole;
    whole.as_object_mut().unwrap().insert("unsupported".into(), json!(["fan"]));
    serde_json::to_string_pretty(&json!({
        "description": "the MIG node of scripts/slurm-up (test)",
        "processes": procs,
        "gpus": [whole, split],
    }))
    .unwrap()
}
