//! Disagreements between the scheduler and the agents, from live state and
//! the scheduler's last snapshot.

use super::Live;
use crate::api::scheduler::{Finding, FindingKind};
use crate::scheduler::{GpuIndex, Snapshot};
use std::collections::HashMap;

/// Findings from the live state and the scheduler's view.
pub fn findings(live: &Live, snap: &Snapshot, stale_after_ms: i64, now_ms: i64, gpu_index: GpuIndex) -> Vec<Finding> {
    let mut out = overlap_findings(live, now_ms);
    for n in live.nodes.values() {
        let stale = now_ms - n.received_ms > stale_after_ms;
        if stale {
            continue;
        }
        let r = &n.report;
        let mut given: HashMap<u32, &str> = HashMap::new();
        for (job, idx) in snap.on_node(&r.node) {
            for i in idx {
                if let Some(index) = gpu_index.nvml_index(*i, &r.gpus) {
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
                            kind: FindingKind::WrongGpu,
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
                        kind: FindingKind::UnallocatedUse,
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
                    kind: FindingKind::NodeNotReporting,
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

/// How long an overlap stays a finding after the last overlapping report.
pub const OVERLAP_SHOWN_MS: i64 = 3_600_000;

/// Nodes that sent reports for time already charged within the last hour.
pub fn overlap_findings(live: &Live, now_ms: i64) -> Vec<Finding> {
    live.overlaps
        .iter()
        .filter(|(_, o)| now_ms - o.last_ms <= OVERLAP_SHOWN_MS)
        .map(|(node, o)| Finding {
            kind: FindingKind::OverlappingReports,
            node: node.clone(),
            gpu: None,
            job: None,
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

    #[test]
    fn findings_name_each_disagreement() {
        let mut live = Live::default();
        live.update(&report(), 1000);
        let f = findings(&live, &snap(), 30_000, 2000, GpuIndex::Nvml);
        let kinds: Vec<FindingKind> = f.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::WrongGpu, FindingKind::UnallocatedUse, FindingKind::NodeNotReporting], "{f:?}");
        assert!(f[0].message.contains("job 12") && f[0].message.contains("job 10"));
        assert!(f[2].message.contains("n9"));
    }
}
