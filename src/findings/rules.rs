//! The rules: what is wrong now, as conditions, from live state (nodes,
//! GPUs, jobs, events, and the scheduler when one is configured and
//! answering) and from the quotas' burn-downs.

use super::Condition;
use crate::accounting::{InstituteMap, gpu_key};
use crate::api::findings::{FindingKind, Severity};
use crate::api::quota::{BurnDown, State};
use crate::config::Alerts;
use crate::format::ago;
use crate::live::{Live, NodeLive, ViewPolicy, findings as sched};
use crate::scheduler::{IndexMap, Snapshot};
use std::collections::{BTreeMap, HashMap};

/// What the rules remember between evaluations (corrected ECC counts, to take their rate).
#[derive(Debug, Default)]
pub struct Memory {
    /// Per node and GPU: when and how many corrected errors, at the earliest sample of the window.
    ecc: HashMap<String, (i64, u64)>,
}

/// Window over which the corrected-ECC rate is taken.
const ECC_WINDOW_MS: i64 = 3_600_000;

/// The scheduler's view, when one is configured and answering.
pub struct Scheduler<'a> {
    pub snapshot: &'a Snapshot,
    pub index: &'a IndexMap,
}

/// Conditions from live state.
pub fn live(
    live: &Live,
    map: &InstituteMap,
    policy: ViewPolicy,
    cfg: &Alerts,
    scheduler: Option<Scheduler>,
    memory: &mut Memory,
    now_ms: i64,
) -> Vec<Condition> {
    let mut out = vec![];
    for n in live.nodes.values() {
        let r = &n.report;
        let age = now_ms - n.received_ms;
        if age > policy.stale_after_ms {
            out.push(Condition::new(
                FindingKind::NodeStale,
                Severity::Critical,
                [Some(&r.node), None, None],
                format!(
                    "{} has not reported for {} (last report at {})",
                    r.node,
                    ago(age),
                    crate::time::format_rfc3339(n.received_ms)
                ),
            ));
            continue;
        }
        // The institute whose job holds a GPU: the one a GPU problem concerns.
        let holder_institute = |index: u32| {
            n.allocs
                .holder(index)
                .map(|h| map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string())
        };
        // Idle-allocated GPUs, per job on the node; and GPUs busy by NVML with few SMs active.
        let mut idle: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        let mut low_sm: BTreeMap<&str, Vec<(u32, f64, u32)>> = BTreeMap::new();
        for g in &r.gpus {
            let key = gpu_key(g);
            let inst = holder_institute(g.index);
            if g.health == jazari_wire::Health::Lost {
                out.push(
                    Condition::new(
                        FindingKind::GpuLost,
                        Severity::Critical,
                        [Some(&r.node), Some(&key), None],
                        format!("GPU {} of {} ({key}) has fallen off the bus or stopped answering", g.index, r.node),
                    )
                    .institute(inst.clone()),
                );
                continue;
            }
            if let Some(h) = n.allocs.holder(g.index)
                && g.util_gpu_pct.is_some_and(|u| u as f64 <= policy.idle_threshold_pct)
            {
                idle.entry(h.job.as_str()).or_default().push(g.index);
            } else if let Some(h) = n.allocs.holder(g.index)
                && g.health == jazari_wire::Health::Ok
                && let (Some(u), Some(sm)) = (g.util_gpu_pct, g.gpm.as_ref().and_then(|m| m.sm_active_pct))
                && sm < cfg.low_sm_active_pct
            {
                low_sm.entry(h.job.as_str()).or_default().push((g.index, sm, u));
            }
            if let Some(e) = &g.ecc {
                if e.volatile_uncorrected.unwrap_or(0) > 0 {
                    out.push(
                        Condition::new(
                            FindingKind::EccUncorrectable,
                            Severity::Critical,
                            [Some(&r.node), Some(&key), None],
                            format!(
                                "GPU {} of {} has {} uncorrectable ECC errors since the driver loaded",
                                g.index,
                                r.node,
                                e.volatile_uncorrected.unwrap_or(0)
                            ),
                        )
                        .institute(inst.clone()),
                    );
                }
                if let Some(c) = e.aggregate_corrected.or(e.volatile_corrected) {
                    let at = format!("{}/{key}", r.node);
                    let first = *memory.ecc.entry(at.clone()).or_insert((r.interval_end_ms, c));
                    let (t0, c0) =
                        if r.interval_end_ms - first.0 > ECC_WINDOW_MS || r.interval_end_ms < first.0 || c < first.1 {
                            memory.ecc.insert(at, (r.interval_end_ms, c));
                            (r.interval_end_ms, c)
                        } else {
                            first
                        };
                    let hours = (r.interval_end_ms - t0) as f64 / 3_600_000.0;
                    // A rate needs some span: at least a tenth of the window.
                    if hours >= 0.1 && (c - c0) as f64 / hours > cfg.ecc_corrected_per_hour {
                        out.push(
                            Condition::new(
                                FindingKind::EccCorrectedRate,
                                Severity::Warning,
                                [Some(&r.node), Some(&key), None],
                                format!(
                                    "GPU {} of {}: corrected ECC errors rising at {:.0} per hour (over {} per hour)",
                                    g.index,
                                    r.node,
                                    (c - c0) as f64 / hours,
                                    cfg.ecc_corrected_per_hour
                                ),
                            )
                            .institute(inst.clone()),
                        );
                    }
                }
            }
            let throttled: Vec<&str> = g
                .throttle_reasons
                .iter()
                .flatten()
                .filter(|t| cfg.throttle_reasons.contains(t))
                .map(String::as_str)
                .collect();
            if !throttled.is_empty() {
                out.push(
                    Condition::new(
                        FindingKind::Throttling,
                        Severity::Warning,
                        [Some(&r.node), Some(&key), None],
                        format!("GPU {} of {} is throttled ({})", g.index, r.node, throttled.join(", ")),
                    )
                    .institute(inst),
                );
            }
        }
        for (job, gpus) in low_sm {
            let h = n.allocs.all().find(|h| h.job == job).expect("a holder");
            let inst = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
            let list = gpus
                .iter()
                .map(|(i, sm, u)| format!("GPU {i}: SM {sm:.0}% at {u}% NVML"))
                .collect::<Vec<_>>()
                .join(", ");
            out.push(
                Condition::new(
                    FindingKind::LowSmActive,
                    Severity::Info,
                    [Some(&r.node), None, Some(job)],
                    format!(
                        "job {job} ({}, {}) runs kernels with few SMs active on {} of {} ({list}; under {}% SM active)",
                        h.user.as_deref().unwrap_or("unknown user"),
                        h.account.as_deref().unwrap_or("no account"),
                        if gpus.len() == 1 { "1 GPU".to_string() } else { format!("{} GPUs", gpus.len()) },
                        r.node,
                        cfg.low_sm_active_pct
                    ),
                )
                .institute(Some(inst)),
            );
        }
        for (job, gpus) in idle {
            let h = n.allocs.all().find(|h| h.job == job).expect("a holder");
            let inst = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
            let list = gpus.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            out.push(
                Condition::new(
                    FindingKind::IdleAllocated,
                    Severity::Warning,
                    [Some(&r.node), None, Some(job)],
                    format!(
                        "job {job} ({}, {}) holds {} GPU{} of {} idle (GPU {list}: at or under {}% utilisation)",
                        h.user.as_deref().unwrap_or("unknown user"),
                        h.account.as_deref().unwrap_or("no account"),
                        gpus.len(),
                        if gpus.len() == 1 { "" } else { "s" },
                        r.node,
                        policy.idle_threshold_pct
                    ),
                )
                .institute(Some(inst)),
            );
        }
        if let Some(sched) = &scheduler {
            out.extend(tensor_idle(n, sched.snapshot, map, policy, cfg));
        }
        // Critical XIDs within the window, once per GPU and code.
        let mut xids: BTreeMap<(String, u64), i64> = BTreeMap::new();
        for e in &n.events {
            if let jazari_wire::EventKind::Xid { code } = e.kind
                && cfg.critical_xids.contains(&code)
                && now_ms - e.time_ms <= cfg.xid_window.as_millis() as i64
            {
                let gpu = e.gpu_uuid.clone().unwrap_or_else(|| "unknown GPU".into());
                let t = xids.entry((gpu, code)).or_insert(e.time_ms);
                *t = (*t).max(e.time_ms);
            }
        }
        for ((gpu, code), t) in xids {
            let index = r.gpus.iter().find(|g| g.uuid.as_deref() == Some(&gpu)).map(|g| g.index);
            let mut c = Condition::new(
                FindingKind::Xid,
                Severity::Critical,
                [Some(r.node.as_str()), Some(gpu.as_str()), None],
                format!(
                    "XID {code} on GPU {} of {} ({gpu}) at {}",
                    index.map(|i| i.to_string()).unwrap_or_else(|| "?".into()),
                    r.node,
                    crate::time::format_rfc3339(t)
                ),
            );
            c.id = format!("{}/{code}", c.id);
            out.push(c.institute(index.and_then(holder_institute)));
        }
    }
    // Scheduler and agent disagreements (only with a scheduler answering), and overlapping reports.
    let found = match scheduler {
        Some(s) => sched::findings(live, Some(s.snapshot), s.index, policy.stale_after_ms, now_ms),
        None => sched::overlap_findings(live, now_ms),
    };
    for f in found {
        out.push(Condition {
            id: f.id,
            kind: f.kind,
            severity: f.severity,
            node: f.node,
            gpu: f.gpu,
            job: f.job,
            institute: f.institute,
            message: f.message,
        });
    }
    out
}

/// A device a job runs kernels on: its name, tensor active and SM active (GPM).
type Busy = (String, f64, Option<f64>);

/// Jobs on an AI partition (`alerts.tensor_idle_partitions`, as the scheduler
/// says) whose GPUs and MIG slices run kernels (over the idle threshold: NVML
/// utilisation, a slice's SM active) with their tensor pipes idle (GPM tensor
/// active under 0.5 %, 0 at whole percent) on this node. Idle devices are the
/// idle-allocated rule's; devices that do not measure GPM say nothing.
fn tensor_idle(n: &NodeLive, snap: &Snapshot, map: &InstituteMap, policy: ViewPolicy, cfg: &Alerts) -> Vec<Condition> {
    if cfg.tensor_idle_partitions.is_empty() {
        return vec![];
    }
    let r = &n.report;
    // Per job: its busy devices that measured tensor activity: (name, tensor %, SM %).
    let mut busy: BTreeMap<&str, Vec<Busy>> = BTreeMap::new();
    for g in r.gpus.iter().filter(|g| g.health == jazari_wire::Health::Ok) {
        if g.mig_devices.is_empty() {
            let (Some(h), Some(m)) = (n.allocs.holder(g.index), g.gpm.as_ref()) else { continue };
            let on = g.util_gpu_pct.map(f64::from).or(m.sm_active_pct).is_some_and(|u| u > policy.idle_threshold_pct);
            if let (true, Some(t)) = (on, m.tensor_active_pct) {
                busy.entry(h.job.as_str()).or_default().push((format!("GPU {}", g.index), t, m.sm_active_pct));
            }
        }
        for s in &g.mig_devices {
            let (Some(h), Some(m)) = (n.allocs.slice_holder(&s.uuid), s.gpm.as_ref()) else { continue };
            let (Some(sm), Some(t)) = (m.sm_active_pct, m.tensor_active_pct) else { continue };
            if sm > policy.idle_threshold_pct {
                let name = format!("MIG slice {} of GPU {}", s.uuid, g.index);
                busy.entry(h.job.as_str()).or_default().push((name, t, Some(sm)));
            }
        }
    }
    let mut out = vec![];
    for (job, devices) in busy {
        if devices.iter().any(|(_, t, _)| *t >= 0.5) {
            continue;
        }
        let sched = snap.jobs.iter().find(|j| j.running() && (j.display_id == job || j.id == job));
        let Some(partition) = sched
            .and_then(|j| j.partition.as_deref())
            .and_then(|p| p.split(',').find(|p| cfg.tensor_idle_partitions.iter().any(|x| x == p)))
        else {
            continue;
        };
        let h = n.allocs.all().find(|h| h.job == job).expect("a holder");
        let inst = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
        let list = devices
            .iter()
            .map(|(d, t, sm)| match sm {
                Some(sm) => format!("{d}: tensor {t:.0}%, SM {sm:.0}%"),
                None => format!("{d}: tensor {t:.0}%"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.push(
            Condition::new(
                FindingKind::TensorIdle,
                Severity::Info,
                [Some(&r.node), None, Some(job)],
                format!(
                    "job {job} ({}, {}) in AI partition {partition} runs kernels with its tensor pipes idle on {} of \
                     {} ({list}; GPM tensor active)",
                    h.user.as_deref().unwrap_or("unknown user"),
                    h.account.as_deref().unwrap_or("no account"),
                    if devices.len() == 1 { "1 device".to_string() } else { format!("{} devices", devices.len()) },
                    r.node,
                ),
            )
            .institute(Some(inst)),
        );
    }
    out
}

/// Conditions from the quotas' burn-downs.
pub fn quotas(burn: &[BurnDown]) -> Vec<Condition> {
    let mut out = vec![];
    for b in burn {
        let i = Some(b.institute.as_str());
        let why = if b.reasons.is_empty() { String::new() } else { format!(": {}", b.reasons.join("; ")) };
        let used = b.used_pct.map(|p| format!("{p:.0}% of its grant")).unwrap_or_default();
        match b.state {
            State::Exceeded => out.push(
                Condition::new(
                    FindingKind::QuotaExceeded,
                    Severity::Critical,
                    [None, None, None],
                    format!("{} used {used}{why}", b.institute),
                )
                .with_subject(i),
            ),
            State::Warning => out.push(
                Condition::new(
                    FindingKind::QuotaWarning,
                    Severity::Warning,
                    [None, None, None],
                    format!("{} used {used}{why}", b.institute),
                )
                .with_subject(i),
            ),
            _ => {}
        }
        if let (Some(out_ms), Some(p)) = (b.runs_out_ms, &b.period)
            && out_ms < p.end_ms
            && b.state != State::Exceeded
        {
            out.push(
                Condition::new(
                    FindingKind::QuotaRunout,
                    Severity::Warning,
                    [None, None, None],
                    format!(
                        "at {:.0} GPU-h/day (over {}) {}'s grant runs out on {}, before its period ends on {}",
                        b.burn_rate_gpu_hours_per_day,
                        crate::format::span(b.burn_window_s),
                        b.institute,
                        crate::time::format_date(out_ms),
                        crate::time::format_date(p.end_ms - 1)
                    ),
                )
                .with_subject(i),
            );
        }
        if let Some(cap) = b.max_gpus
            && b.gpus_in_use > cap
        {
            out.push(
                Condition::new(
                    FindingKind::CapExceeded,
                    Severity::Warning,
                    [None, None, None],
                    format!("{} holds {} GPUs at once, over its cap of {cap}", b.institute, b.gpus_in_use),
                )
                .with_subject(i),
            );
        }
    }
    out
}

impl Condition {
    /// An institute's own finding: its id names the institute, and it concerns it.
    fn with_subject(mut self, institute: Option<&str>) -> Self {
        if let Some(i) = institute {
            self.id = format!("{}/{i}", self.id);
        }
        self.institute(institute.map(str::to_string))
    }
}
