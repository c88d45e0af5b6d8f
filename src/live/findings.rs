//! Disagreements between the scheduler and the agents, from live state and
//! the scheduler's last snapshot.

use super::Live;
use crate::api::findings::{Finding, FindingKind, Severity};
use crate::api::scheduler::SchedJob;
use crate::scheduler::devices::{self, Device};
use crate::scheduler::{IndexMap, Snapshot};
use std::collections::HashMap;

/// What is wrong now, from live state and, when a scheduler is configured
/// and answering, its last view (`snap`): without one, no scheduler/agent
/// disagreement is raised.
pub fn findings(
    live: &Live,
    snap: Option<&Snapshot>,
    index: &IndexMap,
    stale_after_ms: i64,
    now_ms: i64,
) -> Vec<Finding> {
    let mut out = overlap_findings(live, now_ms);
    let Some(snap) = snap else { return out };
    for n in live.nodes.values() {
        if now_ms - n.received_ms > stale_after_ms {
            continue;
        }
        let r = &n.report;
        let numbering = index.for_node(&r.node);
        if let Some(problem) = index.problem(&r.node) {
            out.push(finding(FindingKind::GpuIndexMismatch, &r.node, None, None, problem, now_ms));
        }
        // What Slurm gave each GPU and MIG slice, and the jobs it runs on the node.
        let mut given: HashMap<Device, &SchedJob> = HashMap::new();
        let mut runs: HashMap<&str, &SchedJob> = HashMap::new();
        for j in snap.jobs.iter().filter(|j| j.running() && j.nodes.contains(&r.node)) {
            runs.insert(j.id.as_str(), j);
            for on in j.gpus.iter().filter(|g| g.node == r.node) {
                let Some(idx) = &on.indices else { continue };
                let ty = on.gpu_type.as_deref();
                let placed = match devices::map_indices(idx, ty, &r.gpus, numbering) {
                    Some(d) => d,
                    None => {
                        let why = devices::mismatch(idx, ty, &r.gpus, numbering).unwrap_or_default();
                        let msg = format!("job {} on {}: {why}", j.display_id, r.node);
                        out.push(finding(
                            FindingKind::GpuIndexMismatch,
                            &r.node,
                            None,
                            Some(j.display_id.clone()),
                            msg,
                            now_ms,
                        ));
                        devices::agent_devices(&r.gpus, &j.id)
                    }
                };
                for d in placed {
                    given.insert(d, j);
                }
            }
        }
        // Each process with the device it runs on: a MIG slice of a GPU in MIG mode, else the GPU.
        let mut on_devices: Vec<(Device, String, String, &jazari_wire::Process)> = vec![];
        for g in &r.gpus {
            let key = g.uuid.clone().unwrap_or_else(|| format!("index:{}", g.index));
            if g.mig_devices.is_empty() {
                on_devices.extend(
                    g.processes.iter().map(|p| (Device::Gpu(g.index), key.clone(), format!("GPU {}", g.index), p)),
                );
            }
            for m in &g.mig_devices {
                let d = Device::Slice { gpu: g.index, uuid: m.uuid.clone() };
                let name = format!("MIG slice {} of GPU {}", m.uuid, g.index);
                on_devices.extend(m.processes.iter().map(|p| (d.clone(), m.uuid.clone(), name.clone(), p)));
            }
        }
        let who = |p: &jazari_wire::Process| p.user.clone().unwrap_or_else(|| format!("uid {}", p.uid.unwrap_or(0)));
        for (d, key, name, p) in on_devices {
            let claim = p.job.as_deref();
            let msg = match (claim, given.get(&d)) {
                // A job id Slurm does not run here: a stray process, an orphan, another cluster's job.
                (Some(x), _) if !runs.contains_key(x) => Some((
                    FindingKind::UnknownJob,
                    format!(
                        "process {} ({}) on {name} of {} carries job id {x}, which Slurm does not run there; \
                         its use is charged as unscheduled",
                        p.pid,
                        who(p),
                        r.node
                    ),
                )),
                (Some(x), Some(y)) if x != y.id => Some((
                    FindingKind::WrongGpu,
                    format!(
                        "process {} of job {x} runs on {name} of {}, which Slurm gave to job {}",
                        p.pid, r.node, y.display_id
                    ),
                )),
                (None, Some(y)) => Some((
                    FindingKind::ForeignProcess,
                    format!(
                        "process {} ({}) outside any Slurm job runs on {name} of {}, which Slurm gave to job {}",
                        p.pid,
                        who(p),
                        r.node,
                        y.display_id
                    ),
                )),
                (_, None) => Some((
                    FindingKind::UnallocatedUse,
                    format!("{name} of {} is in use ({}) but Slurm allocated it to no job", r.node, who(p)),
                )),
                _ => None,
            };
            if let Some((kind, message)) = msg {
                out.push(finding(kind, &r.node, Some(key), claim.map(str::to_string), message, now_ms));
            }
        }
    }
    for j in snap.jobs.iter().filter(|j| j.running()) {
        for node in &j.nodes {
            let reporting = live.nodes.get(node).is_some_and(|n| now_ms - n.received_ms <= stale_after_ms);
            if !reporting {
                out.push(finding(
                    FindingKind::NodeNotReporting,
                    node,
                    None,
                    Some(j.display_id.clone()),
                    format!("Slurm runs job {} on {node}, which is not reporting", j.display_id),
                    now_ms,
                ));
            }
        }
    }
    out
}

fn finding(
    kind: FindingKind,
    node: &str,
    gpu: Option<String>,
    job: Option<String>,
    message: String,
    now_ms: i64,
) -> Finding {
    let severity = match kind {
        FindingKind::NodeNotReporting => Severity::Critical,
        _ => Severity::Warning,
    };
    let id = [Some(kind.name()), Some(node), gpu.as_deref(), job.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    Finding {
        id,
        kind,
        severity,
        node: Some(node.to_string()),
        gpu,
        job,
        institute: None,
        message,
        first_seen_ms: now_ms,
        last_seen_ms: now_ms,
        cleared_ms: None,
    }
}

/// How long an overlap stays a finding after the last overlapping report.
pub const OVERLAP_SHOWN_MS: i64 = 3_600_000;

/// Nodes that sent reports for time already charged within the last hour.
pub fn overlap_findings(live: &Live, now_ms: i64) -> Vec<Finding> {
    live.overlaps
        .iter()
        .filter(|(_, o)| now_ms - o.last_ms <= OVERLAP_SHOWN_MS)
        .map(|(node, o)| Finding {
            id: format!("overlapping_reports/{node}"),
            kind: FindingKind::OverlappingReports,
            severity: Severity::Warning,
            node: Some(node.clone()),
            gpu: None,
            job: None,
            institute: None,
            first_seen_ms: o.first_ms,
            last_seen_ms: o.last_ms,
            cleared_ms: None,
            message: format!(
                "{node} sent {} report{} for time already charged ({:.0} GPU- and node-seconds not charged again); \
                 is a second agent running under its name, or was a spool copied?",
                o.reports,
                if o.reports == 1 { "" } else { "s" },
                o.seconds
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::tests::{report, snap};

    fn live_of(r: &jazari_wire::Report, now: i64) -> Live {
        let mut live = Live::default();
        let allocs = crate::accounting::Allocations::default();
        live.update(super::super::Seen { report: r, allocs: &allocs, scheduled: None }, now);
        live
    }

    #[test]
    fn findings_name_each_disagreement() {
        let mut r = report();
        // A process outside any job on GPU 1, which Slurm gave to job 10.
        r.gpus[1].processes[0].job = None;
        let live = live_of(&r, 1000);
        let f = findings(&live, Some(&snap()), &IndexMap::new(crate::scheduler::GpuIndex::Nvml), 30_000, 2000);
        let kinds: Vec<FindingKind> = f.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [FindingKind::ForeignProcess, FindingKind::UnknownJob, FindingKind::NodeNotReporting],
            "{f:?}"
        );
        assert!(f[0].message.contains("outside any Slurm job") && f[0].message.contains("job 10"), "{}", f[0].message);
        assert!(f[1].message.contains("job id 13") && f[1].message.contains("does not run"), "{}", f[1].message);
        assert!(f[2].message.contains("n9"));
    }

    #[test]
    fn no_scheduler_no_scheduler_findings() {
        let live = live_of(&report(), 1000);
        assert!(findings(&live, None, &IndexMap::default(), 30_000, 2000).is_empty());
    }

    #[test]
    fn findings_on_a_mig_node_name_slices_and_the_jobs_whose_indices_do_not_fit() {
        use crate::scheduler::devices::tests::{fixture, vm};
        use crate::scheduler::slurm::parse_squeue;
        use crate::scheduler::{GpuIndex, Snapshot};
        use jazari_wire::Process;
        // Job 8's process on its slice (IDX 4, gi 1); a process outside any job on gi 2.
        let mut r = vm([Some("8"), None]);
        r.gpus[4].mig_devices[0].processes = vec![Process { pid: 5, user: Some("eve".into()), ..Default::default() }];
        let mut jobs = parse_squeue(&fixture("squeue-typed-gpus.json")).unwrap();
        jobs.retain(|j| j.id == "8");
        let snap = Snapshot { fetched_ms: 1, jobs: jobs.clone(), error: None };
        let mut live = Live::default();
        let allocs = crate::accounting::Allocations::default();
        live.update(super::super::Seen { report: &r, allocs: &allocs, scheduled: None }, 1000);
        let f = findings(&live, Some(&snap), &IndexMap::new(GpuIndex::Auto), 30_000, 2000);
        let kinds: Vec<(FindingKind, Option<&str>)> = f.iter().map(|f| (f.kind, f.gpu.as_deref())).collect();
        assert_eq!(kinds, [(FindingKind::UnallocatedUse, Some("MIG-gi2"))], "{f:?}");
        assert!(f[0].message.contains("MIG slice MIG-gi2 of GPU 4 of vm"), "{}", f[0].message);
        // Typed 1g.18gb, the same IDX: the indices do not fit, and the finding says where it is charged.
        let mut snap = snap;
        snap.jobs[0].gpus[0].gpu_type = Some("1g.18gb".into());
        let f = findings(&live, Some(&snap), &IndexMap::new(GpuIndex::Auto), 30_000, 2000);
        let mismatch = f.iter().find(|f| f.kind == FindingKind::GpuIndexMismatch).expect("a mismatch finding");
        assert!(mismatch.message.contains("gpu:1g.18gb") && mismatch.message.contains("where its processes run"));
        assert!(!f.iter().any(|f| f.gpu.as_deref() == Some("MIG-gi1")), "its own slice is its: {f:?}");
    }
}
