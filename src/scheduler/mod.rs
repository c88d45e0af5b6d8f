//! The scheduler adapter: what Slurm says is allocated, polled from
//! `squeue --json`; and how that meets what the agents see.
//!
//! When Slurm is absent, unreachable or its output unparseable, the collector
//! logs it once and carries on with the agents' facts alone.

pub mod slurm;

use crate::accounting::InstituteMap;
use crate::server::live::Live;
use jazari_agent::wire::{Job, Report};
use serde::{Deserialize, Serialize};
use slurm::SchedJob;
use std::collections::HashMap;
use std::time::Duration;

/// `[scheduler]` in the collector config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// `slurm` or `none`.
    pub kind: String,
    /// Command printing `squeue --json` output.
    pub command: Vec<String>,
    #[serde(with = "crate::config::duration")]
    pub interval: Duration,
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
    /// How Slurm's GPU indices (`IDX:`) map to the agent's GPUs: `nvml` (the
    /// NVML index, right with `AutoDetect=nvml`) or `minor` (`/dev/nvidiaN`).
    pub gpu_index: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            kind: "none".into(),
            command: vec!["squeue".into(), "--json".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(20),
            gpu_index: "nvml".into(),
        }
    }
}

impl SchedulerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.kind.as_str(), "slurm" | "none") {
            return Err(format!("scheduler.kind = `{}` is not `slurm` or `none`", self.kind));
        }
        if !matches!(self.gpu_index.as_str(), "nvml" | "minor") {
            return Err(format!("scheduler.gpu_index = `{}` is not `nvml` or `minor`", self.gpu_index));
        }
        if self.kind == "slurm" && self.command.is_empty() {
            return Err("scheduler.command is empty".into());
        }
        Ok(())
    }
}

/// The last poll of the scheduler.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub fetched_ms: i64,
    pub jobs: Vec<SchedJob>,
    /// Why the last poll failed, if it did (the jobs are then those of the last success).
    pub error: Option<String>,
}

impl Snapshot {
    /// Whether the snapshot describes the time `at_ms` (within `slack_ms`).
    pub fn covers(&self, at_ms: i64, slack_ms: i64) -> bool {
        self.fetched_ms > 0 && (at_ms - self.fetched_ms).abs() <= slack_ms
    }

    /// Running jobs' GPUs on `node`: (job, GPU indices as the scheduler numbers them).
    pub fn on_node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (&'a SchedJob, &'a [u32])> + 'a {
        self.jobs.iter().filter(|j| j.running()).flat_map(move |j| {
            j.gpus.iter().filter(move |g| g.node == node).filter_map(move |g| g.indices.as_deref().map(|i| (j, i)))
        })
    }
}

/// Runs the scheduler command with a timeout.
pub fn poll(cfg: &SchedulerConfig) -> Result<Vec<SchedJob>, String> {
    use std::process::{Command, Stdio};
    let (exe, args) = cfg.command.split_first().ok_or("scheduler.command is empty")?;
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{exe}`: {e}"))?;
    let deadline = std::time::Instant::now() + cfg.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{}` did not answer within {:?}", cfg.command.join(" "), cfg.timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(format!("`{}` failed ({}): {}", cfg.command.join(" "), out.status, line.trim()));
    }
    slurm::parse_squeue(&String::from_utf8_lossy(&out.stdout))
}

/// Puts what the scheduler says about `r.node` into the report: its running
/// jobs with their GPUs, accounts and users. The scheduler wins where it and
/// the agent disagree on a job's GPUs.
pub fn enrich(r: &mut Report, snap: &Snapshot, gpu_index: &str) {
    let minor_to_index: HashMap<u32, u32> = r.gpus.iter().filter_map(|g| g.minor.map(|m| (m, g.index))).collect();
    for (job, idx) in snap.on_node(&r.node) {
        let ids: Vec<u32> = if gpu_index == "minor" {
            idx.iter().filter_map(|m| minor_to_index.get(m).copied()).collect()
        } else {
            idx.to_vec()
        };
        match r.jobs.iter_mut().find(|j| j.id == job.id) {
            Some(j) => {
                j.gpu_ids = Some(ids);
                if job.account.is_some() {
                    j.account = job.account.clone();
                }
                if job.user.is_some() {
                    j.user = job.user.clone();
                }
            }
            None => r.jobs.push(Job {
                scheduler: "slurm".into(),
                id: job.id.clone(),
                user: job.user.clone(),
                account: job.account.clone(),
                gpu_ids: Some(ids),
                processes: 0,
                uid: None,
                group: None,
            }),
        }
    }
}

/// A disagreement between the scheduler and the agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// `wrong_gpu`, `unallocated_use` or `node_not_reporting`.
    pub kind: String,
    pub node: String,
    pub gpu: Option<String>,
    pub job: Option<String>,
    pub message: String,
}

/// Findings from the live state and the scheduler's view.
pub fn findings(live: &Live, snap: &Snapshot, stale_after_ms: i64, now_ms: i64, gpu_index: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for n in live.nodes.values() {
        let stale = now_ms - n.received_ms > stale_after_ms;
        if stale {
            continue;
        }
        let r = &n.report;
        let mut given: HashMap<u32, &str> = HashMap::new();
        for (job, idx) in snap.on_node(&r.node) {
            for i in idx {
                let index = if gpu_index == "minor" {
                    r.gpus.iter().find(|g| g.minor == Some(*i)).map(|g| g.index)
                } else {
                    Some(*i)
                };
                if let Some(index) = index {
                    given.insert(index, job.id.as_str());
                }
            }
        }
        for g in &r.gpus {
            let uuid = g.uuid.clone().unwrap_or_else(|| format!("index:{}", g.index));
            match given.get(&g.index) {
                Some(y) => {
                    for p in g.processes.iter().filter(|p| p.job.as_deref().is_some_and(|x| x != *y)) {
                        let x = p.job.clone().unwrap_or_default();
                        out.push(Finding {
                            kind: "wrong_gpu".into(),
                            node: r.node.clone(),
                            gpu: Some(uuid.clone()),
                            job: Some(x.clone()),
                            message: format!(
                                "process {} of job {x} runs on GPU {} of {}, which Slurm gave to job {y}",
                                p.pid, g.index, r.node
                            ),
                        });
                    }
                }
                None if !g.processes.is_empty() => {
                    let who: Vec<String> = g
                        .processes
                        .iter()
                        .map(|p| p.user.clone().unwrap_or_else(|| format!("pid {}", p.pid)))
                        .collect();
                    out.push(Finding {
                        kind: "unallocated_use".into(),
                        node: r.node.clone(),
                        gpu: Some(uuid),
                        job: g.processes.iter().find_map(|p| p.job.clone()),
                        message: format!(
                            "GPU {} of {} is in use ({}) but Slurm allocated it to no job",
                            g.index,
                            r.node,
                            who.join(", ")
                        ),
                    });
                }
                None => {}
            }
        }
    }
    for j in snap.jobs.iter().filter(|j| j.running()) {
        for node in &j.nodes {
            let reporting = live.nodes.get(node).is_some_and(|n| now_ms - n.received_ms <= stale_after_ms);
            if !reporting {
                out.push(Finding {
                    kind: "node_not_reporting".into(),
                    node: node.clone(),
                    gpu: None,
                    job: Some(j.id.clone()),
                    message: format!("Slurm runs job {} on {node}, which is not reporting", j.id),
                });
            }
        }
    }
    out
}

/// Pending GPUs per institute (queue pressure).
pub fn queued_gpus(snap: &Snapshot, map: &InstituteMap) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for j in snap.jobs.iter().filter(|j| j.pending()) {
        *out.entry(map.resolve(j.account.as_deref(), j.user.as_deref(), None).to_string()).or_default() +=
            j.requested_gpus;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jazari_agent::wire::{Gpu, Host, Process, WIRE_VERSION};
    use slurm::NodeGpus;

    fn snap() -> Snapshot {
        let job = |id: &str, acct: &str, node: &str, idx: Vec<u32>| SchedJob {
            id: id.into(),
            user: Some("u".into()),
            account: Some(acct.into()),
            partition: None,
            state: "RUNNING".into(),
            start_s: Some(0),
            time_limit_s: Some(3600),
            nodes: vec![node.into()],
            gpus: vec![NodeGpus { node: node.into(), count: idx.len() as u32, indices: Some(idx), gpu_type: None }],
            requested_gpus: 2,
        };
        Snapshot {
            fetched_ms: 1000,
            jobs: vec![job("10", "nlp-lab", "n1", vec![0, 1]), job("11", "climate", "n9", vec![0])],
            error: None,
        }
    }

    fn report() -> Report {
        let gpu = |i: u32, job: Option<&str>| Gpu {
            index: i,
            minor: Some(3 - i),
            uuid: Some(format!("GPU-{i}")),
            util_gpu_pct: Some(50),
            processes: job
                .map(|j| {
                    vec![Process { pid: 100 + i, job: Some(j.into()), user: Some("x".into()), ..Default::default() }]
                })
                .unwrap_or_default(),
            ..Default::default()
        };
        Report {
            version: WIRE_VERSION,
            node: "n1".into(),
            instance: "i".into(),
            seq: 0,
            interval_start_ms: 0,
            interval_end_ms: 1000,
            host: Host::default(),
            gpus: vec![gpu(0, Some("10")), gpu(1, Some("12")), gpu(2, Some("13")), gpu(3, None)],
            jobs: vec![],
            events: vec![],
        }
    }

    #[test]
    fn enrichment_gives_jobs_their_gpus_and_accounts() {
        let mut r = report();
        enrich(&mut r, &snap(), "nvml");
        assert_eq!(r.jobs.len(), 1);
        assert_eq!(r.jobs[0].gpu_ids, Some(vec![0, 1]));
        assert_eq!(r.jobs[0].account.as_deref(), Some("nlp-lab"));
        // Through minor numbers: IDX 0,1 are minors 0,1 = NVML indices 3,2.
        let mut r = report();
        enrich(&mut r, &snap(), "minor");
        assert_eq!(r.jobs[0].gpu_ids, Some(vec![3, 2]));
    }

    #[test]
    fn findings_name_each_disagreement() {
        let mut live = Live::default();
        live.update(&report(), 1000);
        let f = findings(&live, &snap(), 30_000, 2000, "nvml");
        let kinds: Vec<&str> = f.iter().map(|f| f.kind.as_str()).collect();
        assert_eq!(kinds, ["wrong_gpu", "unallocated_use", "node_not_reporting"], "{f:?}");
        assert!(f[0].message.contains("job 12") && f[0].message.contains("job 10"));
        assert!(f[2].message.contains("n9"));
    }
}
