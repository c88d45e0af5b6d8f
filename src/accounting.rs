//! Accounting semantics: what one report charges to whom.
//!
//! Pure functions: a report and the institute map in, ledger charges out. Per
//! GPU and interval `dt`:
//! - allocated to a job: `allocated_s += dt`, `busy_s += dt × util`, and
//!   `idle_allocated_s += dt` when utilisation is at or under the threshold;
//! - not allocated but running processes: `unscheduled_s += dt`, split evenly
//!   between the distinct owners;
//! - neither: idle capacity;
//! - always: `capacity_s += dt` and `energy_j += power × dt`.
//!
//! Charges fall in hourly UTC buckets; an interval that spans an hour boundary
//! is split in proportion.

use crate::api::usage::UsageAmounts;
use crate::time::split_hours;
use jazari_wire::{Gpu, Health, Job, Report};
use serde::Serialize;
use std::collections::HashMap;

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
}

impl Amounts {
    pub fn add(&mut self, o: &Amounts) {
        self.capacity_s += o.capacity_s;
        self.allocated_s += o.allocated_s;
        self.busy_s += o.busy_s;
        self.idle_allocated_s += o.idle_allocated_s;
        self.unscheduled_s += o.unscheduled_s;
        self.energy_j += o.energy_j;
    }

    pub fn scaled(&self, f: f64) -> Amounts {
        Amounts {
            capacity_s: self.capacity_s * f,
            allocated_s: self.allocated_s * f,
            busy_s: self.busy_s * f,
            idle_allocated_s: self.idle_allocated_s * f,
            unscheduled_s: self.unscheduled_s * f,
            energy_j: self.energy_j * f,
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
}

/// The GPU key: its UUID, or its index when the UUID was never read.
pub fn gpu_key(g: &Gpu) -> String {
    g.uuid.clone().unwrap_or_else(|| format!("index:{}", g.index))
}

/// The job a GPU is allocated to, as far as this report tells: a job whose
/// scheduler GPU ids include the GPU's index, else the job of a process on it.
pub fn allocation<'a>(report: &'a Report, gpu: &'a Gpu) -> Option<AllocatedTo<'a>> {
    if let Some(j) = report.jobs.iter().find(|j| j.gpu_ids.as_ref().is_some_and(|ids| ids.contains(&gpu.index))) {
        return Some(AllocatedTo { id: &j.id, job: Some(j) });
    }
    let id = gpu.processes.iter().find_map(|p| p.job.as_deref())?;
    Some(AllocatedTo { id, job: report.jobs.iter().find(|j| j.id == id) })
}

/// A job holding a GPU.
#[derive(Debug, Clone, Copy)]
pub struct AllocatedTo<'a> {
    pub id: &'a str,
    pub job: Option<&'a Job>,
}

/// What one GPU of a report charges for the report's whole interval, and to whom.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuCharge {
    /// The GPU key ([`gpu_key`]).
    pub gpu: String,
    pub parts: Vec<(LedgerKey, Amounts)>,
}

/// Charges of one report, per GPU, for its whole interval.
pub fn gpu_charges(report: &Report, map: &InstituteMap, policy: Policy) -> Vec<GpuCharge> {
    let dt = report.interval_s();
    let mut out = Vec::with_capacity(report.gpus.len());
    if dt <= 0.0 {
        return out;
    }
    for gpu in &report.gpus {
        let energy_j = gpu.power_mw.map(|mw| mw as f64 / 1000.0 * dt).unwrap_or(0.0);
        let base = LedgerKey { node: report.node.clone(), gpu: gpu_key(gpu), ..Default::default() };
        let util = if gpu.health == Health::Ok { gpu.util_gpu_pct.map(|u| u.min(100) as f64) } else { None };
        let mut parts: Vec<(LedgerKey, Amounts)> = Vec::new();
        if let Some(alloc) = allocation(report, gpu) {
            let job = alloc.job;
            let account = job.and_then(|j| j.account.clone());
            let user = job.and_then(|j| j.user.clone()).or_else(|| {
                gpu.processes.iter().find(|p| p.job.as_deref() == Some(alloc.id)).and_then(|p| p.user.clone())
            });
            let group = job.and_then(|j| j.group.clone()).or_else(|| {
                gpu.processes.iter().find(|p| p.job.as_deref() == Some(alloc.id)).and_then(|p| p.group.clone())
            });
            let institute = map.resolve(account.as_deref(), user.as_deref(), group.as_deref()).to_string();
            let key = LedgerKey {
                institute,
                account: account.unwrap_or_default(),
                user: user.unwrap_or_default(),
                job: alloc.id.to_string(),
                ..base
            };
            let amounts = Amounts {
                capacity_s: dt,
                allocated_s: dt,
                busy_s: util.map(|u| dt * u / 100.0).unwrap_or(0.0),
                idle_allocated_s: if util.is_some_and(|u| u <= policy.idle_threshold_pct) { dt } else { 0.0 },
                unscheduled_s: 0.0,
                energy_j,
            };
            parts.push((key, amounts));
        } else if !gpu.processes.is_empty() {
            let mut owners: Vec<String> = gpu
                .processes
                .iter()
                .map(|p| p.user.clone().or_else(|| p.uid.map(|u| format!("uid:{u}"))).unwrap_or_default())
                .collect();
            owners.sort();
            owners.dedup();
            let share = 1.0 / owners.len() as f64;
            for owner in owners {
                let user = (!owner.is_empty() && !owner.starts_with("uid:")).then_some(owner.as_str());
                let group = gpu
                    .processes
                    .iter()
                    .find(|p| p.user.clone().or_else(|| p.uid.map(|u| format!("uid:{u}"))).unwrap_or_default() == owner)
                    .and_then(|p| p.group.as_deref());
                let institute = map.resolve(None, user, group).to_string();
                let key = LedgerKey { institute, user: owner.clone(), ..base.clone() };
                let amounts = Amounts {
                    capacity_s: dt * share,
                    unscheduled_s: dt * share,
                    energy_j: energy_j * share,
                    ..Default::default()
                };
                parts.push((key, amounts));
            }
        } else {
            parts.push((base, Amounts { capacity_s: dt, energy_j, ..Default::default() }));
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

/// Charges of one report for its whole interval, in hour buckets.
pub fn charges(report: &Report, map: &InstituteMap, policy: Policy) -> Vec<Charge> {
    let whole = [(report.interval_start_ms, report.interval_end_ms)];
    let mut out = vec![];
    for g in gpu_charges(report, map, policy) {
        for (key, amounts) in g.parts {
            split_new_time(report.interval_start_ms, report.interval_end_ms, &whole, |hour, f| {
                out.push(Charge { hour, key: key.clone(), amounts: amounts.scaled(f) });
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use jazari_wire::{Host, Process, WIRE_VERSION};

    fn map() -> InstituteMap {
        let cfg = Config::parse(
            "[[institutes]]\nid = \"a\"\naccounts = [\"acct-a\"]\nusers = [\"ua\"]\n[[institutes]]\nid = \"b\"\nusers = [\"ub\"]\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        cfg.institute_map()
    }

    fn gpu(index: u32, util: u32, procs: Vec<Process>) -> Gpu {
        Gpu {
            index,
            uuid: Some(format!("GPU-{index}")),
            util_gpu_pct: Some(util),
            power_mw: Some(500_000),
            processes: procs,
            ..Default::default()
        }
    }

    fn report(start_ms: i64, end_ms: i64, gpus: Vec<Gpu>, jobs: Vec<Job>) -> Report {
        Report {
            version: WIRE_VERSION,
            node: "n1".into(),
            instance: "i".into(),
            seq: 0,
            interval_start_ms: start_ms,
            interval_end_ms: end_ms,
            host: Host::default(),
            gpus,
            jobs,
            events: vec![],
        }
    }

    const P: Policy = Policy { idle_threshold_pct: 5.0 };

    #[test]
    fn allocated_busy_idle_unscheduled_and_idle_capacity() {
        let job = Job {
            scheduler: "slurm".into(),
            id: "7".into(),
            account: Some("acct-a".into()),
            user: Some("x".into()),
            gpu_ids: Some(vec![0, 1]),
            processes: 1,
            ..Default::default()
        };
        let r = report(
            0,
            10_000,
            vec![
                gpu(0, 80, vec![Process { pid: 1, job: Some("7".into()), ..Default::default() }]),
                gpu(1, 3, vec![]),
                gpu(2, 50, vec![Process { pid: 2, user: Some("ub".into()), ..Default::default() }]),
                gpu(3, 0, vec![]),
            ],
            vec![job],
        );
        let c = charges(&r, &map(), P);
        assert_eq!(c.len(), 4);
        let g0 = &c[0];
        assert_eq!((g0.key.institute.as_str(), g0.key.job.as_str()), ("a", "7"));
        assert_eq!(g0.amounts.allocated_s, 10.0);
        assert_eq!(g0.amounts.busy_s, 8.0);
        assert_eq!(g0.amounts.idle_allocated_s, 0.0);
        assert_eq!(g0.amounts.energy_j, 5000.0);
        // GPU 1: allocated by the scheduler's GPU ids, nothing running: idle-allocated.
        assert_eq!(c[1].key.job, "7");
        assert_eq!(c[1].amounts.idle_allocated_s, 10.0);
        // GPU 2: a process outside any job: unscheduled, charged to its owner's institute.
        assert_eq!(c[2].key.institute, "b");
        assert_eq!(c[2].amounts.unscheduled_s, 10.0);
        assert_eq!(c[2].amounts.allocated_s, 0.0);
        // GPU 3: idle capacity.
        assert_eq!(c[3].key.institute, "");
        assert_eq!(c[3].amounts.capacity_s, 10.0);
        let total: f64 = c.iter().map(|c| c.amounts.capacity_s).sum();
        assert_eq!(total, 40.0);
    }

    #[test]
    fn unknown_account_falls_back_to_user_then_unassigned() {
        let m = map();
        assert_eq!(m.resolve(Some("nope"), Some("ua"), None), "a");
        assert_eq!(m.resolve(Some("acct-a"), Some("ub"), None), "a");
        assert_eq!(m.resolve(None, None, None), UNASSIGNED);
    }

    #[test]
    fn an_unknown_user_is_charged_by_unix_group() {
        let cfg =
            Config::parse("[[institutes]]\nid = \"robots\"\ngroups = [\"robotics\"]\n", std::path::Path::new("t.toml"))
                .unwrap();
        let map = cfg.institute_map();
        let p = Process { pid: 1, uid: Some(4242), group: Some("robotics".into()), ..Default::default() };
        let c = charges(&report(0, 10_000, vec![gpu(0, 50, vec![p])], vec![]), &map, P);
        assert_eq!(c[0].key.institute, "robots");
        assert_eq!(c[0].key.user, "uid:4242");
    }

    #[test]
    fn two_owners_share_an_unscheduled_gpu() {
        let r = report(
            0,
            10_000,
            vec![gpu(
                0,
                50,
                vec![
                    Process { pid: 1, user: Some("ua".into()), ..Default::default() },
                    Process { pid: 2, user: Some("ub".into()), ..Default::default() },
                    Process { pid: 3, user: Some("ub".into()), ..Default::default() },
                ],
            )],
            vec![],
        );
        let c = charges(&r, &map(), P);
        assert_eq!(c.len(), 2);
        assert!(c.iter().all(|c| c.amounts.unscheduled_s == 5.0));
    }

    #[test]
    fn an_interval_across_an_hour_is_split_in_proportion() {
        let r = report(3_590_000, 3_610_000, vec![gpu(0, 0, vec![])], vec![]);
        let c = charges(&r, &map(), P);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].hour, c[0].amounts.capacity_s), (0, 10.0));
        assert_eq!((c[1].hour, c[1].amounts.capacity_s), (3600, 10.0));
    }

    #[test]
    fn a_lost_gpu_held_by_a_job_is_allocated_but_neither_busy_nor_idle() {
        let mut g = gpu(0, 0, vec![Process { pid: 1, job: Some("9".into()), ..Default::default() }]);
        g.health = Health::Lost;
        g.util_gpu_pct = None;
        let c = charges(&report(0, 10_000, vec![g], vec![]), &map(), P);
        assert_eq!(c[0].amounts.allocated_s, 10.0);
        assert_eq!(c[0].amounts.idle_allocated_s, 0.0);
        assert_eq!(c[0].key.institute, UNASSIGNED);
    }
}
