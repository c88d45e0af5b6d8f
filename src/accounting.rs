//! Accounting semantics: what one report charges to whom.
//!
//! Pure functions: a report and the institute map in, ledger charges out. Per
//! GPU and interval `dt`:
//! - allocated to a job: `allocated_s += dt`, `busy_s += dt × util`, and
//!   `idle_allocated_s += dt` when utilisation is at or under the threshold;
//! - not allocated but running processes: `unscheduled_s += dt`, split evenly
//!   between the distinct owners;
//! - neither: idle capacity;
//! - always: `capacity_s += dt` and `energy_j += power × dt`;
//! - allocated, on a GPU that measures GPM activity (Hopper and later):
//!   `gpm_s += dt`, `sm_active_s += dt × SM active`, `tensor_active_s += dt ×
//!   tensor active`. Efficiency is `sm_active_s / gpm_s`: SM activity over
//!   the allocated time that was measured, never over time with no GPM.
//!
//! Charges fall in hourly UTC buckets; an interval that spans an hour boundary
//! is split in proportion.

use crate::api::usage::UsageAmounts;
use crate::time::split_hours;
use jazari_wire::{Gpu, Health, Job, Report};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Institute of usage nobody claims.
pub const UNASSIGNED: &str = "unassigned";

/// Who a charge goes to. Empty strings stand for "none" (idle capacity has an
/// empty institute).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct LedgerKey {
    pub institute: String,
    pub account: String,
    pub user: String,
    pub job: String,
    pub node: String,
    pub gpu: String,
}

/// The quantities a ledger row accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct Amounts {
    pub capacity_s: f64,
    pub allocated_s: f64,
    pub busy_s: f64,
    pub idle_allocated_s: f64,
    pub unscheduled_s: f64,
    pub energy_j: f64,
    /// Allocated time on GPUs that measured GPM activity.
    #[serde(default)]
    pub gpm_s: f64,
    /// Allocated time × SM active (GPM), over `gpm_s`.
    #[serde(default)]
    pub sm_active_s: f64,
    /// Allocated time × tensor pipes active (GPM), over `gpm_s`.
    #[serde(default)]
    pub tensor_active_s: f64,
}

impl Amounts {
    pub fn add(&mut self, o: &Amounts) {
        self.capacity_s += o.capacity_s;
        self.allocated_s += o.allocated_s;
        self.busy_s += o.busy_s;
        self.idle_allocated_s += o.idle_allocated_s;
        self.unscheduled_s += o.unscheduled_s;
        self.energy_j += o.energy_j;
        self.gpm_s += o.gpm_s;
        self.sm_active_s += o.sm_active_s;
        self.tensor_active_s += o.tensor_active_s;
    }

    pub fn scaled(&self, f: f64) -> Amounts {
        Amounts {
            capacity_s: self.capacity_s * f,
            allocated_s: self.allocated_s * f,
            busy_s: self.busy_s * f,
            idle_allocated_s: self.idle_allocated_s * f,
            unscheduled_s: self.unscheduled_s * f,
            energy_j: self.energy_j * f,
            gpm_s: self.gpm_s * f,
            sm_active_s: self.sm_active_s * f,
            tensor_active_s: self.tensor_active_s * f,
        }
    }
}

impl From<&Amounts> for UsageAmounts {
    fn from(a: &Amounts) -> Self {
        UsageAmounts {
            capacity_gpu_seconds: a.capacity_s,
            allocated_gpu_seconds: a.allocated_s,
            busy_gpu_seconds: a.busy_s,
            idle_allocated_gpu_seconds: a.idle_allocated_s,
            unscheduled_gpu_seconds: a.unscheduled_s,
            energy_joules: a.energy_j,
            gpm_measured_gpu_seconds: a.gpm_s,
            sm_active_gpu_seconds: a.sm_active_s,
            tensor_active_gpu_seconds: a.tensor_active_s,
        }
    }
}

/// One ledger increment: an hour bucket (UTC seconds at its start), a key, amounts.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub hour: i64,
    pub key: LedgerKey,
    pub amounts: Amounts,
}

/// One row of the daily roll-up: a day (UTC seconds at its start), who, amounts.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DayRow {
    pub day: i64,
    pub institute: String,
    pub account: String,
    pub user: String,
    pub job: String,
    pub amounts: Amounts,
}

/// One row of the hourly roll-up per institute.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HourRow {
    pub hour: i64,
    pub institute: String,
    pub amounts: Amounts,
    /// The most GPUs held at once (allocated or unscheduled) during the hour, as the highest minute mean.
    pub peak_held_gpus: f64,
    /// The most GPUs busy at once (held × NVML utilisation), likewise.
    pub peak_busy_gpus: f64,
}

/// Maps Slurm accounts, users and unix groups to institutes (built from the
/// configuration by `Config::institute_map`).
#[derive(Debug, Clone, Default)]
pub struct InstituteMap {
    accounts: HashMap<String, String>,
    users: HashMap<String, String>,
    groups: HashMap<String, String>,
}

impl InstituteMap {
    /// Adds an institute and its members.
    pub fn add<'a>(
        &mut self,
        institute: &str,
        accounts: impl IntoIterator<Item = &'a String>,
        users: impl IntoIterator<Item = &'a String>,
        groups: impl IntoIterator<Item = &'a String>,
    ) {
        for (table, members) in [
            (&mut self.accounts, accounts.into_iter().collect::<Vec<_>>()),
            (&mut self.users, users.into_iter().collect()),
            (&mut self.groups, groups.into_iter().collect()),
        ] {
            for m in members {
                table.insert(m.clone(), institute.to_string());
            }
        }
    }

    /// Account, else user, else group, else [`UNASSIGNED`].
    pub fn resolve(&self, account: Option<&str>, user: Option<&str>, group: Option<&str>) -> &str {
        account
            .and_then(|a| self.accounts.get(a))
            .or_else(|| user.and_then(|u| self.users.get(u)))
            .or_else(|| group.and_then(|g| self.groups.get(g)))
            .map(String::as_str)
            .unwrap_or(UNASSIGNED)
    }
}

/// Settings the charges depend on.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub idle_threshold_pct: f64,
    /// What a MIG slice is charged as.
    pub mig_charge: MigCharge,
}

/// The GPU key: its UUID, or its index when the UUID was never read.
pub fn gpu_key(g: &Gpu) -> String {
    g.uuid.clone().unwrap_or_else(|| format!("index:{}", g.index))
}

/// A job holding a GPU for part of a report's interval (or all of it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Held {
    pub from_ms: i64,
    pub to_ms: i64,
    /// The job as the ledger names it (`7060_1` for an array task).
    pub job: String,
    pub account: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Who holds each GPU of a report (by NVML index) and each MIG slice (by MIG
/// UUID), and when. A GPU split into MIG slices is held through its slices only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocations {
    pub by_gpu: BTreeMap<u32, Vec<Held>>,
    pub by_slice: BTreeMap<String, Vec<Held>>,
    /// The scheduler gave the slices (`by_slice` says who holds them; a slice's
    /// processes outside it are unscheduled use), rather than the jobs of their
    /// processes (the agent's facts: [`Allocations::from_agent`]).
    pub slices_scheduled: bool,
}

impl Allocations {
    /// From the agent's facts alone, for the whole interval: a job whose GPU
    /// ids (the scheduler's numbering, turned into NVML indices by `to_nvml`)
    /// include the GPU, else the job of a process on it; a MIG slice, by the
    /// jobs of its processes.
    pub fn from_agent(report: &Report, to_nvml: impl Fn(u32) -> Option<u32>) -> Self {
        let mut by_gpu: BTreeMap<u32, Vec<Held>> = BTreeMap::new();
        let mut by_slice: BTreeMap<String, Vec<Held>> = BTreeMap::new();
        let held = |j: Option<&Job>, id: &str, procs: &[jazari_wire::Process]| Held {
            from_ms: report.interval_start_ms,
            to_ms: report.interval_end_ms,
            job: j.and_then(|j| j.array.clone()).unwrap_or_else(|| id.to_string()),
            account: j.and_then(|j| j.account.clone()),
            user: j
                .and_then(|j| j.user.clone())
                .or_else(|| procs.iter().find(|p| p.job.as_deref() == Some(id)).and_then(|p| p.user.clone())),
            group: j
                .and_then(|j| j.group.clone())
                .or_else(|| procs.iter().find(|p| p.job.as_deref() == Some(id)).and_then(|p| p.group.clone())),
        };
        for gpu in report.gpus.iter().filter(|g| !g.mig_devices.is_empty()) {
            for s in &gpu.mig_devices {
                let mut jobs: Vec<&str> = s.processes.iter().filter_map(|p| p.job.as_deref()).collect();
                jobs.sort();
                jobs.dedup();
                let held = jobs
                    .into_iter()
                    .map(|id| held(report.jobs.iter().find(|j| j.id == id), id, &s.processes))
                    .collect();
                by_slice.insert(s.uuid.clone(), held);
            }
        }
        by_slice.retain(|_, v: &mut Vec<Held>| !v.is_empty());
        for gpu in report.gpus.iter().filter(|g| g.mig_devices.is_empty()) {
            let by_ids = report
                .jobs
                .iter()
                .find(|j| j.gpu_ids.as_ref().is_some_and(|ids| ids.iter().any(|i| to_nvml(*i) == Some(gpu.index))));
            let h = match by_ids {
                Some(j) => Some(held(Some(j), &j.id, &gpu.processes)),
                None => gpu
                    .processes
                    .iter()
                    .find_map(|p| p.job.as_deref())
                    .map(|id| held(report.jobs.iter().find(|j| j.id == id), id, &gpu.processes)),
            };
            if let Some(h) = h {
                by_gpu.insert(gpu.index, vec![h]);
            }
        }
        Allocations { by_gpu, by_slice, slices_scheduled: false }
    }

    /// Who holds a GPU at the end of the interval (what a live view shows).
    pub fn holder(&self, index: u32) -> Option<&Held> {
        self.by_gpu.get(&index).and_then(|v| v.iter().max_by_key(|h| h.to_ms))
    }

    /// Who holds a MIG slice at the end of the interval.
    pub fn slice_holder(&self, uuid: &str) -> Option<&Held> {
        self.by_slice.get(uuid).and_then(|v| v.iter().max_by_key(|h| h.to_ms))
    }

    /// Every holder, of GPUs and of slices.
    pub fn all(&self) -> impl Iterator<Item = &Held> {
        self.by_gpu.values().flatten().chain(self.by_slice.values().flatten())
    }
}

/// The NVML index of a GPU the agent numbers itself (no scheduler to map from).
pub fn same_index(i: u32) -> Option<u32> {
    Some(i)
}

/// A part of a GPU's charge: who, for which window of the interval, and how much for that window.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub from_ms: i64,
    pub to_ms: i64,
    pub key: LedgerKey,
    pub amounts: Amounts,
}

/// What one GPU of a report charges, and to whom, window by window.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuCharge {
    /// The GPU key ([`gpu_key`]).
    pub gpu: String,
    pub parts: Vec<Part>,
}

/// Charges of one report, per GPU: the windows its jobs hold it (from
/// `allocs`), and for the rest of the interval its processes' owners
/// (unscheduled use) or nobody (idle capacity).
pub fn gpu_charges(report: &Report, map: &InstituteMap, policy: Policy, allocs: &Allocations) -> Vec<GpuCharge> {
    let (start, end) = (report.interval_start_ms, report.interval_end_ms);
    let mut out = Vec::with_capacity(report.gpus.len());
    if end <= start {
        return out;
    }
    for gpu in &report.gpus {
        if !gpu.mig_devices.is_empty() {
            // Slice by slice, from the slices' own processes (see `mig`).
            out.push(GpuCharge { gpu: gpu_key(gpu), parts: mig::parts(report, gpu, map, policy, allocs) });
            continue;
        }
        let power_w = gpu.power_mw.map(|mw| mw as f64 / 1000.0).unwrap_or(0.0);
        let base = LedgerKey { node: report.node.clone(), gpu: gpu_key(gpu), ..Default::default() };
        let util = if gpu.health == Health::Ok { gpu.util_gpu_pct.map(|u| u.min(100) as f64) } else { None };
        // GPM activity, where the GPU measured it (Hopper and later).
        let gpm = if gpu.health == Health::Ok { gpu.gpm.as_ref() } else { None };
        let pct = |v: Option<f64>| v.filter(|x| x.is_finite()).map(|x| x.clamp(0.0, 100.0) / 100.0);
        let (sm, tensor) = (pct(gpm.and_then(|g| g.sm_active_pct)), pct(gpm.and_then(|g| g.tensor_active_pct)));
        let mut parts: Vec<Part> = Vec::new();
        // The jobs' windows, made disjoint and clipped to the interval.
        let mut windows: Vec<&Held> = allocs.by_gpu.get(&gpu.index).map(|v| v.iter().collect()).unwrap_or_default();
        windows.sort_by_key(|h| h.from_ms);
        let mut t = start;
        let mut free: Vec<(i64, i64)> = vec![];
        for h in windows {
            let (a, b) = (h.from_ms.max(t), h.to_ms.min(end));
            if b <= a {
                continue;
            }
            if a > t {
                free.push((t, a));
            }
            let dt = (b - a) as f64 / 1000.0;
            let institute = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
            let key = LedgerKey {
                institute,
                account: h.account.clone().unwrap_or_default(),
                user: h.user.clone().unwrap_or_default(),
                job: h.job.clone(),
                ..base.clone()
            };
            let amounts = Amounts {
                capacity_s: dt,
                allocated_s: dt,
                busy_s: util.map(|u| dt * u / 100.0).unwrap_or(0.0),
                idle_allocated_s: if util.is_some_and(|u| u <= policy.idle_threshold_pct) { dt } else { 0.0 },
                unscheduled_s: 0.0,
                energy_j: power_w * dt,
                gpm_s: if sm.is_some() { dt } else { 0.0 },
                sm_active_s: sm.map_or(0.0, |f| dt * f),
                tensor_active_s: if sm.is_some() { tensor.map_or(0.0, |f| dt * f) } else { 0.0 },
            };
            parts.push(Part { from_ms: a, to_ms: b, key, amounts });
            t = b;
        }
        if t < end {
            free.push((t, end));
        }
        // The rest of the interval: the processes' owners share it, else it is idle capacity.
        let owner_of =
            |p: &jazari_wire::Process| p.user.clone().or_else(|| p.uid.map(|u| format!("uid:{u}"))).unwrap_or_default();
        let mut owners: Vec<String> = gpu.processes.iter().map(owner_of).collect();
        owners.sort();
        owners.dedup();
        for (a, b) in free {
            let dt = (b - a) as f64 / 1000.0;
            if owners.is_empty() {
                let amounts = Amounts { capacity_s: dt, energy_j: power_w * dt, ..Default::default() };
                parts.push(Part { from_ms: a, to_ms: b, key: base.clone(), amounts });
                continue;
            }
            let share = 1.0 / owners.len() as f64;
            for owner in &owners {
                let user = (!owner.is_empty() && !owner.starts_with("uid:")).then_some(owner.as_str());
                let group = gpu.processes.iter().find(|p| owner_of(p) == *owner).and_then(|p| p.group.as_deref());
                let institute = map.resolve(None, user, group).to_string();
                let key = LedgerKey { institute, user: owner.clone(), ..base.clone() };
                let amounts = Amounts {
                    capacity_s: dt * share,
                    unscheduled_s: dt * share,
                    energy_j: power_w * dt * share,
                    ..Default::default()
                };
                parts.push(Part { from_ms: a, to_ms: b, key, amounts });
            }
        }
        out.push(GpuCharge { gpu: gpu_key(gpu), parts });
    }
    out
}

/// Calls `f(hour_start_s, fraction)` for every hour bucket of the parts `new`
/// of the interval [start, end); a fraction is that part of the interval.
pub fn split_new_time(start_ms: i64, end_ms: i64, new: &[(i64, i64)], mut f: impl FnMut(i64, f64)) {
    let total = (end_ms - start_ms) as f64;
    if total <= 0.0 {
        return;
    }
    for &(a, b) in new {
        split_hours(a, b, |hour, share| f(hour, share * (b - a) as f64 / total));
    }
}

/// Charges of one report in hour buckets, its jobs taken from the agent's facts
/// (tests and benchmarks; the collector charges through the store's planner).
pub fn charges(report: &Report, map: &InstituteMap, policy: Policy) -> Vec<Charge> {
    let allocs = Allocations::from_agent(report, same_index);
    let mut out = vec![];
    for g in gpu_charges(report, map, policy, &allocs) {
        for p in g.parts {
            split_hours(p.from_ms, p.to_ms, |hour, f| {
                out.push(Charge { hour, key: p.key.clone(), amounts: p.amounts.scaled(f) });
            });
        }
    }
    out
}

mod mig;
pub use mig::MigCharge;

#[cfg(test)]
mod tests;
