//! The views `/api/v1/cluster`, `/api/v1/nodes/{node}` and `/api/v1/jobs`
//! serve, built from live state for one reader.

use super::{Live, NodeLive, ViewPolicy, Viewer};
use crate::accounting::{InstituteMap, gpu_key};
use crate::api::cluster::{
    Allocation, ClusterView, GpuView, InstituteLive, JobGpu, JobOnNode, JobView, NodeView, Summary,
};
use jazari_wire::{Event, Gpu, Health, Process};
use std::collections::{BTreeMap, HashMap, VecDeque};

fn unhealthy(g: &Gpu, events: &VecDeque<Event>) -> bool {
    g.health != Health::Ok
        || g.ecc.as_ref().is_some_and(|e| e.volatile_uncorrected.unwrap_or(0) > 0)
        || events.iter().any(|e| e.gpu_uuid == g.uuid && matches!(e.kind, jazari_wire::EventKind::Xid { .. }))
}

impl Live {
    pub fn cluster_view(
        &self,
        cluster: &str,
        map: &InstituteMap,
        policy: ViewPolicy,
        viewer: Viewer,
        now_ms: i64,
    ) -> ClusterView {
        let mut summary = Summary { utilisation_signal: crate::api::UTILISATION_SIGNAL.into(), ..Default::default() };
        let mut inst: BTreeMap<String, (usize, std::collections::HashSet<String>, f64, usize)> = BTreeMap::new();
        let mut util_sum = 0.0;
        let mut util_n = 0usize;
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut job_ids = std::collections::HashSet::new();
        for n in self.nodes.values() {
            let nv = self.node_view(n, map, policy, viewer, now_ms);
            summary.nodes += 1;
            if !nv.stale {
                summary.nodes_reporting += 1;
            }
            for g in &nv.gpus {
                summary.gpus += 1;
                if nv.stale {
                    continue;
                }
                summary.power_w += g.gpu.power_mw.unwrap_or(0) as f64 / 1000.0;
                if let Some(u) = g.gpu.util_gpu_pct {
                    util_sum += u as f64;
                    util_n += 1;
                }
                let busy = g.gpu.util_gpu_pct.is_some_and(|u| u as f64 > policy.idle_threshold_pct);
                if g.unhealthy {
                    summary.gpus_unhealthy += 1;
                }
                if let Some(a) = &g.allocated_to {
                    summary.gpus_allocated += 1;
                    if busy {
                        summary.gpus_busy += 1;
                    }
                    if g.idle_allocated {
                        summary.gpus_idle_allocated += 1;
                    }
                    let e = inst.entry(a.institute.clone()).or_default();
                    e.0 += 1;
                    if let Some(j) = &a.job {
                        e.1.insert(j.clone());
                        job_ids.insert(j.clone());
                    }
                    if let Some(u) = g.gpu.util_gpu_pct {
                        e.2 += u as f64;
                        e.3 += 1;
                    }
                } else if !g.gpu.processes.is_empty() {
                    summary.gpus_unscheduled += 1;
                    if busy {
                        summary.gpus_busy += 1;
                    }
                }
            }
            nodes.push(nv);
        }
        summary.mean_util_pct = (util_n > 0).then(|| util_sum / util_n as f64);
        summary.jobs = job_ids.len();
        let institutes = inst
            .into_iter()
            .filter(|(id, _)| viewer.institute.is_none_or(|v| v == id))
            .map(|(id, (gpus, jobs, us, un))| InstituteLive {
                id,
                gpus_in_use: gpus,
                jobs: jobs.len(),
                mean_util_pct: (un > 0).then(|| us / un as f64),
            })
            .collect();
        ClusterView { cluster: cluster.to_string(), generated_ms: now_ms, summary, institutes, nodes }
    }

    pub fn node_view(
        &self,
        n: &NodeLive,
        map: &InstituteMap,
        policy: ViewPolicy,
        viewer: Viewer,
        now_ms: i64,
    ) -> NodeView {
        let r = &n.report;
        let stale = now_ms - n.received_ms > policy.stale_after_ms;
        let visible = |institute: &str| viewer.institute.is_none_or(|v| v == institute);
        // A process's institute: its job's (as the holder of its GPU or the agent says), else its owner's.
        // (Looked up in maps built once: a node's work is linear in its processes and jobs.)
        let mut holders: HashMap<&str, &crate::accounting::Held> = HashMap::new();
        for h in n.allocs.all() {
            holders.entry(h.job.as_str()).or_insert(h);
        }
        let mut agent_jobs: HashMap<&str, &jazari_wire::Job> = HashMap::new();
        for j in &r.jobs {
            agent_jobs.entry(j.id.as_str()).or_insert(j);
            if let Some(a) = j.array.as_deref() {
                agent_jobs.entry(a).or_insert(j);
            }
        }
        let job_inst = |id: &str| -> String {
            match holders.get(id) {
                Some(h) => map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string(),
                None => {
                    let j = agent_jobs.get(id);
                    map.resolve(
                        j.and_then(|j| j.account.as_deref()),
                        j.and_then(|j| j.user.as_deref()),
                        j.and_then(|j| j.group.as_deref()),
                    )
                    .to_string()
                }
            }
        };
        let gpus = r
            .gpus
            .iter()
            .map(|g| {
                let allocated_to = n.allocs.holder(g.index).map(|h| {
                    let institute =
                        map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
                    if visible(&institute) {
                        Allocation {
                            job: Some(h.job.clone()),
                            institute,
                            account: h.account.clone(),
                            user: h.user.clone(),
                        }
                    } else {
                        Allocation { job: None, institute: "other".into(), account: None, user: None }
                    }
                });
                let mut gpu = g.clone();
                gpu.processes = g
                    .processes
                    .iter()
                    .map(|p| {
                        let institute = match &p.job {
                            Some(j) => job_inst(j),
                            None => map.resolve(None, p.user.as_deref(), p.group.as_deref()).to_string(),
                        };
                        if visible(&institute) {
                            p.clone()
                        } else {
                            Process { pid: 0, gpu_mem_bytes: p.gpu_mem_bytes, ..Default::default() }
                        }
                    })
                    .collect();
                let idle_allocated = allocated_to.is_some()
                    && g.health == Health::Ok
                    && g.util_gpu_pct.is_some_and(|u| u as f64 <= policy.idle_threshold_pct);
                let unhealthy = unhealthy(g, &n.events);
                GpuView { gpu, allocated_to, idle_allocated, unhealthy }
            })
            .collect();
        let jobs = node_jobs(n, map).into_iter().filter(|j| visible(&j.institute)).collect();
        let mut host = r.host.clone();
        if viewer.institute.is_some() {
            host.boot_id = None;
        }
        NodeView {
            name: r.node.clone(),
            stale,
            last_seen_ms: n.received_ms,
            age_s: (now_ms - n.received_ms).max(0) as f64 / 1000.0,
            host,
            gpus,
            jobs,
            events: n.events.iter().rev().take(20).cloned().collect(),
        }
    }

    /// Running jobs on reporting nodes, one per job, institute and user (jobs
    /// of two institutes or users that share an id, from two clusters or a
    /// stray process, are never merged).
    pub fn jobs_view(&self, map: &InstituteMap, policy: ViewPolicy, viewer: Viewer, now_ms: i64) -> Vec<JobView> {
        let mut jobs: BTreeMap<(String, String, Option<String>), JobView> = BTreeMap::new();
        for n in self.nodes.values() {
            let r = &n.report;
            if now_ms - n.received_ms > policy.stale_after_ms {
                continue;
            }
            for j in node_jobs(n, map) {
                if viewer.institute.is_some_and(|v| v != j.institute) {
                    continue;
                }
                let v = jobs.entry((j.id.clone(), j.institute.clone(), j.user.clone())).or_insert_with(|| JobView {
                    id: j.id.clone(),
                    scheduler: "slurm".into(),
                    institute: j.institute.clone(),
                    account: j.account.clone(),
                    user: j.user.clone(),
                    nodes: vec![],
                    gpus: vec![],
                    gpu_count: 0,
                    mean_util_pct: None,
                    idle_gpus: 0,
                    mem_used_bytes: 0,
                    started_ms: self.job_first_seen.get(&j.id).copied(),
                    run_time_s: None,
                });
                if !v.nodes.contains(&r.node) {
                    v.nodes.push(r.node.clone());
                }
                for g in r.gpus.iter().filter(|g| n.allocs.holder(g.index).is_some_and(|h| h.job == j.id)) {
                    let idle = g.util_gpu_pct.is_some_and(|u| u as f64 <= policy.idle_threshold_pct);
                    // Memory its processes use on the GPUs it holds.
                    v.mem_used_bytes += g.processes.iter().filter_map(|p| p.gpu_mem_bytes).sum::<u64>();
                    v.gpus.push(JobGpu {
                        node: r.node.clone(),
                        uuid: gpu_key(g),
                        index: g.index,
                        util_gpu_pct: g.util_gpu_pct,
                        mem_used_bytes: g.mem_used_bytes,
                        idle,
                    });
                }
            }
        }
        let mut out: Vec<JobView> = jobs.into_values().collect();
        for v in &mut out {
            v.gpu_count = v.gpus.len();
            v.idle_gpus = v.gpus.iter().filter(|g| g.idle).count();
            let utils: Vec<f64> = v.gpus.iter().filter_map(|g| g.util_gpu_pct.map(|u| u as f64)).collect();
            v.mean_util_pct = (!utils.is_empty()).then(|| utils.iter().sum::<f64>() / utils.len() as f64);
            v.run_time_s = v.started_ms.map(|s| (now_ms - s).max(0) as f64 / 1000.0);
        }
        out
    }
}

/// The jobs on a node: those holding its GPUs (as the scheduler says, or the
/// agent), and those the agent sees with processes there (with a scheduler
/// that answers, only jobs it runs).
fn node_jobs(n: &NodeLive, map: &InstituteMap) -> Vec<JobOnNode> {
    let r = &n.report;
    let mut out: BTreeMap<String, JobOnNode> = BTreeMap::new();
    for (index, held) in &n.allocs.by_gpu {
        let Some(h) = held.iter().max_by_key(|h| h.to_ms) else { continue };
        let institute = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
        let e = out.entry(h.job.clone()).or_insert_with(|| JobOnNode {
            id: h.job.clone(),
            institute,
            account: h.account.clone(),
            user: h.user.clone(),
            gpu_ids: Some(vec![]),
            processes: 0,
        });
        e.gpu_ids.get_or_insert_with(Vec::new).push(*index);
    }
    for j in &r.jobs {
        if n.scheduled.as_ref().is_some_and(|s| !s.contains(&j.id)) {
            continue;
        }
        let id = j.array.clone().unwrap_or_else(|| j.id.clone());
        let e = out.entry(id.clone()).or_insert_with(|| JobOnNode {
            id,
            institute: map.resolve(j.account.as_deref(), j.user.as_deref(), j.group.as_deref()).to_string(),
            account: j.account.clone(),
            user: j.user.clone(),
            gpu_ids: None,
            processes: 0,
        });
        e.processes += j.processes;
    }
    out.into_values().collect()
}
