//! The scheduler adapter's pure part: what Slurm says ([`slurm`] reads its
//! JSON), what it has said over time ([`history`]), how its GPU numbering
//! meets the agents' ([`GpuIndex`], [`IndexMap`]), and who holds which GPU
//! of a report and when ([`allocations`]). Running `squeue` and `sacct` is
//! the collector's job (`server::scheduler`).

pub mod devices;
pub mod history;
pub mod slurm;

use crate::accounting::{Allocations, Held, InstituteMap};
use crate::api::scheduler::{PollStats, SchedJob};
use devices::Device;
use history::History;
use jazari_wire::{Gpu, Report};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How Slurm's GPU indices (`IDX:`, `SLURM_JOB_GPUS`) map to the agent's GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuIndex {
    /// Learn it per node: where the jobs' processes run tells which numbering agrees.
    #[default]
    Auto,
    /// The NVML index (right with gres.conf `AutoDetect=nvml`).
    Nvml,
    /// The kernel minor number (`/dev/nvidiaN` listed in gres.conf).
    Minor,
}

impl GpuIndex {
    /// The NVML index of the GPU Slurm numbers `idx`, on a node with these GPUs.
    pub fn nvml_index(self, idx: u32, gpus: &[Gpu]) -> Option<u32> {
        match self {
            GpuIndex::Nvml | GpuIndex::Auto => gpus.iter().any(|g| g.index == idx).then_some(idx),
            GpuIndex::Minor => gpus.iter().find(|g| g.minor == Some(idx)).map(|g| g.index),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GpuIndex::Auto => "auto",
            GpuIndex::Nvml => "nvml",
            GpuIndex::Minor => "minor",
        }
    }
}

/// Evidence per node of which numbering Slurm uses: for each GPU a job's
/// processes run on, whether the job's Slurm indices contain its NVML index,
/// its minor number, both or neither.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexVotes {
    pub nvml: u64,
    pub minor: u64,
    pub neither: u64,
}

/// The numbering per node: configured, or learned (`auto`).
#[derive(Debug, Clone, Default)]
pub struct IndexMap {
    pub configured: GpuIndex,
    pub votes: BTreeMap<String, IndexVotes>,
}

impl IndexMap {
    pub fn new(configured: GpuIndex) -> Self {
        IndexMap { configured, votes: BTreeMap::new() }
    }

    /// The numbering used on `node`: the configured one, or under `auto` the
    /// one the evidence agrees with (NVML order until there is evidence).
    pub fn for_node(&self, node: &str) -> GpuIndex {
        match self.configured {
            GpuIndex::Auto => match self.votes.get(node) {
                Some(v) if v.minor > v.nvml => GpuIndex::Minor,
                _ => GpuIndex::Nvml,
            },
            other => other,
        }
    }

    /// Learns from a report: its processes' jobs against what Slurm gave them
    /// (on a node with MIG slices, each slice's processes against its place
    /// in Slurm's list under either numbering).
    pub fn learn(&mut self, r: &Report, history: &History) {
        let runs: Vec<_> = history.on_node(&r.node, r.interval_start_ms, r.interval_end_ms).collect();
        let mut on_devices: Vec<(Device, &jazari_wire::Process)> = vec![];
        for g in &r.gpus {
            if g.mig_devices.is_empty() {
                on_devices.extend(g.processes.iter().map(|p| (Device::Gpu(g.index), p)));
            }
            for s in &g.mig_devices {
                let d = Device::Slice { gpu: g.index, uuid: s.uuid.clone() };
                on_devices.extend(s.processes.iter().map(|p| (d.clone(), p)));
            }
        }
        for (d, p) in on_devices {
            let Some(id) = p.job.as_deref() else { continue };
            let Some(idx) = runs
                .iter()
                .find(|(run, _, _)| run.job.id == id)
                .and_then(|(run, _, _)| run.gpus_on(&r.node).and_then(|n| n.indices.clone()))
            else {
                continue;
            };
            let is = |n: GpuIndex| devices::slurm_index(&d, &r.gpus, n).is_some_and(|i| idx.contains(&i));
            let v = self.votes.entry(r.node.clone()).or_default();
            match (is(GpuIndex::Nvml), is(GpuIndex::Minor)) {
                (true, true) => {}
                (true, false) => v.nvml += 1,
                (false, true) => v.minor += 1,
                (false, false) => v.neither += 1,
            }
        }
    }

    /// A configuration problem on a node, in words: the processes run where
    /// neither numbering says, or where the configured one does not.
    pub fn problem(&self, node: &str) -> Option<String> {
        let v = self.votes.get(node)?;
        let agreeing = v.nvml + v.minor;
        match self.configured {
            _ if v.neither > agreeing => Some(format!(
                "on {node}, jobs' processes run on GPUs Slurm did not give them under either numbering \
                 ({} times): check gres.conf's device order",
                v.neither
            )),
            GpuIndex::Nvml if v.minor > v.nvml => Some(format!(
                "on {node}, Slurm's GPU indices match the minor numbers ({} times), not the NVML order \
                 ([scheduler] gpu_index = \"nvml\"): set it to \"minor\" or \"auto\"",
                v.minor
            )),
            GpuIndex::Minor if v.nvml > v.minor => Some(format!(
                "on {node}, Slurm's GPU indices match the NVML order ({} times), not the minor numbers \
                 ([scheduler] gpu_index = \"minor\"): set it to \"nvml\" or \"auto\"",
                v.nvml
            )),
            _ => None,
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

impl SchedJob {
    pub fn running(&self) -> bool {
        self.state == "RUNNING" || self.state == "COMPLETING"
    }

    pub fn pending(&self) -> bool {
        self.state == "PENDING"
    }
}

/// What the collector knows from the scheduler, polls after polls.
#[derive(Debug, Default)]
pub struct State {
    /// The last successful `squeue` (queue, findings, live views).
    pub snapshot: Snapshot,
    /// Every run it told of, with starts and ends (reports are charged from it).
    pub history: Arc<History>,
    pub index: IndexMap,
    pub stats: PollStats,
    /// When the last `squeue` succeeded, and the one before (ms).
    pub last_ok_ms: i64,
    /// Reports ending by then are charged with the scheduler's view (ms).
    pub complete_until_ms: i64,
    /// `sacct` is asked from here on (ms).
    pub sacct_since_ms: i64,
}

impl State {
    /// Whether the scheduler answered recently enough to be the authority.
    pub fn fresh(&self, fresh_for: std::time::Duration, now_ms: i64) -> bool {
        self.last_ok_ms > 0 && now_ms - self.last_ok_ms <= fresh_for.as_millis() as i64
    }
}

/// Who holds which GPU and MIG slice of a report and when, as the scheduler
/// says (its history, so a report is charged with the jobs of its own time).
/// A GPU or slice the scheduler gave to no job is held by nobody, whatever
/// job its processes claim. A run known only by its GPU count (a job that
/// ended between two polls) takes the devices the agent saw it on, else free
/// ones in index order (slices of its MIG type, or whole GPUs). Slurm's
/// indices on a node with MIG slices are read as [`devices`] explains; a job
/// whose indices do not fit its gres type there is placed by the agent's facts.
pub fn allocations(r: &Report, history: &History, index: GpuIndex) -> Allocations {
    let mut a = Allocations { slices_scheduled: true, ..Default::default() };
    let mut unplaced = vec![];
    for (run, from_ms, to_ms) in history.on_node(&r.node, r.interval_start_ms, r.interval_end_ms) {
        let j = &run.job;
        let held = Held {
            from_ms,
            to_ms,
            job: j.display_id.clone(),
            account: j.account.clone(),
            user: j.user.clone(),
            group: j.group.clone(),
        };
        let on = run.gpus_on(&r.node).expect("on_node");
        let ty = on.gpu_type.as_deref();
        let from_procs = || devices::agent_devices(&r.gpus, &j.id);
        let placed: Vec<Device> = match &on.indices {
            Some(idx) => devices::map_indices(idx, ty, &r.gpus, index).unwrap_or_else(from_procs),
            None => {
                // Where the agent saw the job: its SLURM_JOB_GPUS, else its processes.
                let from_env = r
                    .jobs
                    .iter()
                    .find(|x| x.id == j.id)
                    .and_then(|x| x.gpu_ids.as_deref())
                    .and_then(|ids| devices::map_indices(ids, ty, &r.gpus, index))
                    .filter(|v| !v.is_empty());
                match from_env.unwrap_or_else(from_procs) {
                    v if v.is_empty() => {
                        unplaced.push((held, on.count, ty.and_then(devices::mig_compute_slices)));
                        continue;
                    }
                    v => v,
                }
            }
        };
        for d in placed {
            hold(&mut a, d, held.clone());
        }
    }
    for (held, count, mig) in unplaced {
        let free = |v: Option<&Vec<Held>>| {
            v.is_none_or(|v| v.iter().all(|h| h.to_ms <= held.from_ms || h.from_ms >= held.to_ms))
        };
        let chosen: Vec<Device> = devices::devices(&r.gpus, index)
            .into_iter()
            .filter(|d| match (d, mig) {
                (Device::Gpu(i), None) => free(a.by_gpu.get(i)),
                (Device::Slice { gpu, uuid }, Some(c)) => {
                    let s = r
                        .gpus
                        .iter()
                        .filter(|g| g.index == *gpu)
                        .flat_map(|g| &g.mig_devices)
                        .find(|s| &s.uuid == uuid);
                    s.is_some_and(|s| s.slices_compute.is_none_or(|x| x == c)) && free(a.by_slice.get(uuid))
                }
                _ => false,
            })
            .take(count as usize)
            .collect();
        for d in chosen {
            hold(&mut a, d, held.clone());
        }
    }
    a
}

fn hold(a: &mut Allocations, d: Device, h: Held) {
    match d {
        Device::Gpu(i) => a.by_gpu.entry(i).or_default().push(h),
        Device::Slice { uuid, .. } => a.by_slice.entry(uuid).or_default().push(h),
    }
}

/// Who holds what from the agent's facts, its jobs' `SLURM_JOB_GPUS` read in
/// Slurm's numbering on the node (a slice never stands for a whole GPU).
pub fn agent_allocations(r: &Report, index: GpuIndex) -> Allocations {
    Allocations::from_agent(r, |i| match devices::map_indices(&[i], None, &r.gpus, index).as_deref() {
        Some([Device::Gpu(g)]) => Some(*g),
        _ => None,
    })
}

/// Pending GPUs per institute (queue pressure), each array task counted.
pub fn queued_gpus(snap: &Snapshot, map: &InstituteMap) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for j in snap.jobs.iter().filter(|j| j.pending()) {
        let inst = map.resolve(j.account.as_deref(), j.user.as_deref(), j.group.as_deref());
        *out.entry(inst.to_string()).or_default() += j.requested_gpus;
    }
    out
}

/// The Slurm job ids that run on `node` now (for findings).
pub fn running_on<'a>(snap: &'a Snapshot, node: &str) -> BTreeSet<&'a str> {
    snap.jobs.iter().filter(|j| j.running() && j.nodes.iter().any(|n| n == node)).map(|j| j.id.as_str()).collect()
}

#[cfg(test)]
pub(crate) mod tests;
