//! The scheduler adapter's pure part: what Slurm says is allocated (parsed
//! from `squeue --json` in [`slurm`]), and how that meets what the agents
//! see. Running the command is the collector's job (`server::scheduler`).

pub mod slurm;

use crate::accounting::InstituteMap;
use crate::api::scheduler::SchedJob;
use jazari_wire::{Job, Report};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How Slurm's GPU indices (`IDX:`) map to the agent's GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuIndex {
    /// The NVML index (right with gres.conf `AutoDetect=nvml`).
    #[default]
    Nvml,
    /// The kernel minor number (`/dev/nvidiaN` listed in gres.conf).
    Minor,
}

impl GpuIndex {
    /// The NVML index of the GPU Slurm numbers `idx` on a node with these GPUs.
    pub fn nvml_index(self, idx: u32, gpus: &[jazari_wire::Gpu]) -> Option<u32> {
        match self {
            GpuIndex::Nvml => Some(idx),
            GpuIndex::Minor => gpus.iter().find(|g| g.minor == Some(idx)).map(|g| g.index),
        }
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

/// Puts what the scheduler says about `r.node` into the report: its running
/// jobs with their GPUs, accounts and users. The scheduler wins where it and
/// the agent disagree on a job's GPUs.
pub fn enrich(r: &mut Report, snap: &Snapshot, gpu_index: GpuIndex) {
    for (job, idx) in snap.on_node(&r.node) {
        let ids: Vec<u32> = idx.iter().filter_map(|i| gpu_index.nvml_index(*i, &r.gpus)).collect();
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

/// Pending GPUs per institute (queue pressure).
pub fn queued_gpus(snap: &Snapshot, map: &InstituteMap) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for j in snap.jobs.iter().filter(|j| j.pending()) {
        *out.entry(map.resolve(j.account.as_deref(), j.user.as_deref(), None).to_string()).or_default() +=
            j.requested_gpus;
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
