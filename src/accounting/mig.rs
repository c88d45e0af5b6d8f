//! A GPU in MIG mode is charged slice by slice: each slice, keyed by its MIG
//! UUID, is a fraction of the GPU by the `mig_charge` policy (never Slurm's
//! count of one `gres/gpu` per slice), held by the jobs of its processes.
//! With a scheduler that gives slices (Slurm's typed MIG gres, mapped to
//! slices by `scheduler::devices`), a slice is held for the windows it says,
//! and its processes outside them are unscheduled use.
//! NVML gives no utilisation per slice, so a slice's busy time and
//! idle-allocated time come from its GPU instance's GPM SM activity. Capacity
//! stays whole GPUs: what the layout leaves unused is idle capacity of the
//! parent GPU.

use super::{Allocations, Amounts, Held, LedgerKey, Part, Policy, gpu_key};
use jazari_wire::{Gpu, Health, MigDevice, Report};
use serde::{Deserialize, Serialize};

/// How much of a GPU one MIG slice is charged as (`[accounting] mig_charge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigCharge {
    /// The larger of compute slices / 7 and memory slices / 8: a slice is
    /// charged for what it keeps others from using.
    #[default]
    Max,
    /// Compute slices / 7.
    Compute,
    /// Memory slices / 8.
    Memory,
}

impl MigCharge {
    /// The policy's choice between a compute share and a memory share of a GPU.
    fn share(self, compute: f64, memory: f64) -> f64 {
        match self {
            Self::Max => compute.max(memory),
            Self::Compute => compute,
            Self::Memory => memory,
        }
    }

    /// The fraction of a GPU a slice of `compute` of 7 and `memory` of 8 slices is.
    pub fn fraction(self, compute: Option<u32>, memory: Option<u32>) -> f64 {
        let c = compute.map(|c| c.min(7) as f64 / 7.0);
        let m = memory.map(|m| m.min(8) as f64 / 8.0);
        match self {
            Self::Max => c.into_iter().chain(m).fold(0.0, f64::max),
            Self::Compute => c.or(m).unwrap_or(0.0),
            Self::Memory => m.or(c).unwrap_or(0.0),
        }
    }
}

/// The parts of a MIG-mode GPU's charge over a report's interval.
pub fn parts(report: &Report, gpu: &Gpu, map: &super::InstituteMap, policy: Policy, allocs: &Allocations) -> Vec<Part> {
    let (start, end) = (report.interval_start_ms, report.interval_end_ms);
    let dt = (end - start) as f64 / 1000.0;
    let power_w = gpu.power_mw.map(|mw| mw as f64 / 1000.0).unwrap_or(0.0);
    let node = report.node.clone();
    let mut out = vec![];
    let fractions: Vec<f64> = gpu.mig_devices.iter().map(|s| fraction(gpu, s, policy.mig_charge)).collect();
    // Charges follow the policy; capacity stays one GPU: where the fractions add up
    // to more (a 3g.71gb slice is 4/8 under "max"), capacity is scaled down to it.
    let scale = 1.0 / fractions.iter().sum::<f64>().max(1.0);
    let mut used = 0.0;
    for (s, f) in gpu.mig_devices.iter().zip(fractions) {
        used += f * scale;
        let base = LedgerKey { node: node.clone(), gpu: s.uuid.clone(), ..Default::default() };
        let pieces = if allocs.slices_scheduled {
            scheduled(report, s, map, base, allocs)
        } else {
            holders(report, s, map, base).into_iter().map(|(k, share, held)| (start, end, k, share, held)).collect()
        };
        for (from, to, key, share, held) in pieces {
            let t = (to - from) as f64 / 1000.0 * f * share;
            let cap = (to - from) as f64 / 1000.0 * f * scale * share;
            let mut a = Amounts { capacity_s: cap, energy_j: power_w * cap, ..Default::default() };
            if held {
                let pct = |v: Option<f64>| v.filter(|x| x.is_finite()).map(|x| x.clamp(0.0, 100.0) / 100.0);
                let gpm = if gpu.health == Health::Ok { s.gpm.as_ref() } else { None };
                let (sm, tensor) = (pct(gpm.and_then(|g| g.sm_active_pct)), pct(gpm.and_then(|g| g.tensor_active_pct)));
                a.allocated_s = t;
                // No NVML utilisation per slice: SM activity is the busy signal.
                a.busy_s = sm.map_or(0.0, |x| t * x);
                a.idle_allocated_s = if sm.is_some_and(|x| x * 100.0 <= policy.idle_threshold_pct) { t } else { 0.0 };
                a.gpm_s = if sm.is_some() { t } else { 0.0 };
                a.sm_active_s = sm.map_or(0.0, |x| t * x);
                a.tensor_active_s = if sm.is_some() { tensor.map_or(0.0, |x| t * x) } else { 0.0 };
            } else if !key.user.is_empty() {
                a.unscheduled_s = t;
            }
            out.push(Part { from_ms: from, to_ms: to, key, amounts: a });
        }
    }
    // What the layout leaves unused: idle capacity of the GPU itself.
    let rest = (1.0 - used).max(0.0) * dt;
    if rest > 1e-9 * dt {
        let key = LedgerKey { node, gpu: gpu_key(gpu), ..Default::default() };
        let amounts = Amounts { capacity_s: rest, energy_j: power_w * rest, ..Default::default() };
        out.push(Part { from_ms: start, to_ms: end, key, amounts });
    }
    out
}

/// A window of a slice's time: from, to, who, their share of it, whether a job holds it.
type Piece = (i64, i64, LedgerKey, f64, bool);

/// A slice's time as the scheduler gave it: its jobs' windows (made disjoint,
/// clipped to the interval), and for the rest its processes' owners
/// (unscheduled use) or nobody (idle capacity).
fn scheduled(
    report: &Report,
    s: &MigDevice,
    map: &super::InstituteMap,
    base: LedgerKey,
    a: &Allocations,
) -> Vec<Piece> {
    let (start, end) = (report.interval_start_ms, report.interval_end_ms);
    let mut windows: Vec<&Held> = a.by_slice.get(&s.uuid).map(|v| v.iter().collect()).unwrap_or_default();
    windows.sort_by_key(|h| h.from_ms);
    let (mut out, mut free, mut t) = (vec![], vec![], start);
    for h in windows {
        let (from, to) = (h.from_ms.max(t), h.to_ms.min(end));
        if to <= from {
            continue;
        }
        if from > t {
            free.push((t, from));
        }
        let institute = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
        let key = LedgerKey {
            institute,
            account: h.account.clone().unwrap_or_default(),
            user: h.user.clone().unwrap_or_default(),
            job: h.job.clone(),
            ..base.clone()
        };
        out.push((from, to, key, 1.0, true));
        t = to;
    }
    if t < end {
        free.push((t, end));
    }
    let owners = owners(s, map, base);
    for (from, to) in free {
        out.extend(owners.iter().map(|(k, share)| (from, to, k.clone(), *share, false)));
    }
    out
}

/// A slice's fraction of its GPU. Compute instances that share a GPU instance
/// each report the instance's whole memory: they share it by their compute slices.
fn fraction(gpu: &Gpu, s: &MigDevice, policy: MigCharge) -> f64 {
    let memory = match s.gpu_instance_id {
        Some(gi) => {
            let siblings: Vec<&MigDevice> = gpu.mig_devices.iter().filter(|o| o.gpu_instance_id == Some(gi)).collect();
            let compute_total: u32 = siblings.iter().filter_map(|o| o.slices_compute).sum();
            match (s.slices_memory, s.slices_compute) {
                (Some(m), Some(c)) if siblings.len() > 1 && compute_total > 0 => {
                    return policy.share(c as f64 / 7.0, m.min(8) as f64 / 8.0 * c as f64 / compute_total as f64);
                }
                _ => s.slices_memory,
            }
        }
        None => s.slices_memory,
    };
    policy.fraction(s.slices_compute, memory)
}

/// Who a slice's time goes to, each with a share and whether a job holds it:
/// the jobs of its processes, else its processes' owners (unscheduled), else
/// nobody (idle capacity, the slice's own key).
fn holders(report: &Report, s: &MigDevice, map: &super::InstituteMap, base: LedgerKey) -> Vec<(LedgerKey, f64, bool)> {
    let mut jobs: Vec<&str> = s.processes.iter().filter_map(|p| p.job.as_deref()).collect();
    jobs.sort();
    jobs.dedup();
    if !jobs.is_empty() {
        let share = 1.0 / jobs.len() as f64;
        return jobs
            .into_iter()
            .map(|id| {
                let j = report.jobs.iter().find(|j| j.id == id);
                let p = s.processes.iter().find(|p| p.job.as_deref() == Some(id));
                let user = j.and_then(|j| j.user.clone()).or_else(|| p.and_then(|p| p.user.clone()));
                let group = j.and_then(|j| j.group.clone()).or_else(|| p.and_then(|p| p.group.clone()));
                let account = j.and_then(|j| j.account.clone());
                let institute = map.resolve(account.as_deref(), user.as_deref(), group.as_deref()).to_string();
                let job = j.and_then(|j| j.array.clone()).unwrap_or_else(|| id.to_string());
                let key = LedgerKey {
                    institute,
                    account: account.unwrap_or_default(),
                    user: user.unwrap_or_default(),
                    job,
                    ..base.clone()
                };
                (key, share, true)
            })
            .collect();
    }
    owners(s, map, base).into_iter().map(|(k, share)| (k, share, false)).collect()
}

/// A slice's processes' owners, each with an equal share; nobody (the slice's
/// own key) when it runs none.
fn owners(s: &MigDevice, map: &super::InstituteMap, base: LedgerKey) -> Vec<(LedgerKey, f64)> {
    let mut owners: Vec<(String, Option<String>)> = s
        .processes
        .iter()
        .map(|p| (p.user.clone().or_else(|| p.uid.map(|u| format!("uid:{u}"))).unwrap_or_default(), p.group.clone()))
        .collect();
    owners.sort();
    owners.dedup_by(|a, b| a.0 == b.0);
    if owners.is_empty() {
        return vec![(base, 1.0)];
    }
    let share = 1.0 / owners.len() as f64;
    owners
        .into_iter()
        .map(|(owner, group)| {
            let user = (!owner.is_empty() && !owner.starts_with("uid:")).then_some(owner.as_str());
            let institute = map.resolve(None, user, group.as_deref()).to_string();
            (LedgerKey { institute, user: owner.clone(), ..base.clone() }, share)
        })
        .collect()
}
