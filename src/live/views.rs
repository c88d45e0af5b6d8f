//! The views `/api/v1/cluster`, `/api/v1/nodes/{node}` and `/api/v1/jobs`
//! serve, built from live state for one reader.

use super::{Live, NodeLive, ViewPolicy, Viewer};
use crate::accounting::{Held, InstituteMap, gpu_key};
use crate::api::cluster::{
    Allocation, ClusterView, GpuView, InstituteLive, JobGpu, JobOnNode, JobSlice, JobView, NodeView, SliceAllocation,
    Summary,
};
use jazari_wire::{Event, Gpu, Health, MigDevice, Process};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

fn unhealthy(g: &Gpu, events: &VecDeque<Event>) -> bool {
    g.health != Health::Ok
        || g.ecc.as_ref().is_some_and(|e| e.volatile_uncorrected.unwrap_or(0) > 0)
        || events.iter().any(|e| e.gpu_uuid == g.uuid && matches!(e.kind, jazari_wire::EventKind::Xid { .. }))
}

/// SM active (GPM) of a slice, where its GPU is healthy and it measured it.
fn slice_sm(g: &Gpu, s: &MigDevice) -> Option<f64> {
    s.gpm.as_ref().and_then(|m| m.sm_active_pct).filter(|_| g.health == Health::Ok)
}

/// How much of a GPU a slice weighs in a mean: its compute slices / 7.
fn slice_weight(s: &MigDevice) -> f64 {
    s.slices_compute.unwrap_or(1).min(7) as f64 / 7.0
}

/// A GPU-weighted mean: sum of weight × value, and of weights.
#[derive(Default, Clone, Copy)]
struct Mean(f64, f64);

impl Mean {
    fn add(&mut self, weight: f64, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.0 += weight * v;
            self.1 += weight;
        }
    }

    fn get(self) -> Option<f64> {
        (self.1 > 0.0).then(|| self.0 / self.1)
    }
}

/// Institute accumulators of the cluster view: GPUs held, jobs, NVML utilisation, SM active.
#[derive(Default)]
struct Inst {
    gpus: usize,
    jobs: HashSet<String>,
    util: Mean,
    sm: Mean,
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
        let mut inst: BTreeMap<String, Inst> = BTreeMap::new();
        let (mut util, mut sm) = (Mean::default(), Mean::default());
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut job_ids = HashSet::new();
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
                util.add(1.0, g.gpu.util_gpu_pct.map(f64::from));
                if g.gpu.mig_devices.is_empty() {
                    sm.add(
                        1.0,
                        g.gpu.gpm.as_ref().and_then(|m| m.sm_active_pct).filter(|_| g.gpu.health == Health::Ok),
                    );
                }
                for s in &g.gpu.mig_devices {
                    sm.add(slice_weight(s), slice_sm(&g.gpu, s));
                }
                if g.unhealthy {
                    summary.gpus_unhealthy += 1;
                }
                if !g.gpu.mig_devices.is_empty() {
                    // Held through its slices: allocated when any is, idle when all held ones are.
                    let held: Vec<&SliceAllocation> = g.mig_allocated.iter().collect();
                    let busy_slice = |s: &MigDevice| slice_sm(&g.gpu, s).is_some_and(|x| x > policy.idle_threshold_pct);
                    if !held.is_empty() {
                        summary.gpus_allocated += 1;
                        if g.gpu.mig_devices.iter().filter(|s| held.iter().any(|h| h.uuid == s.uuid)).any(busy_slice) {
                            summary.gpus_busy += 1;
                        }
                        if held.iter().all(|h| h.idle_allocated) {
                            summary.gpus_idle_allocated += 1;
                        }
                    } else if g.gpu.mig_devices.iter().any(|s| !s.processes.is_empty()) {
                        summary.gpus_unscheduled += 1;
                        if g.gpu.mig_devices.iter().any(busy_slice) {
                            summary.gpus_busy += 1;
                        }
                    }
                    let mut counted = HashSet::new();
                    for h in held {
                        let e = inst.entry(h.allocated_to.institute.clone()).or_default();
                        if counted.insert(h.allocated_to.institute.clone()) {
                            e.gpus += 1;
                        }
                        if let Some(j) = &h.allocated_to.job {
                            e.jobs.insert(j.clone());
                            job_ids.insert(j.clone());
                        }
                        let s = g.gpu.mig_devices.iter().find(|s| s.uuid == h.uuid);
                        if let Some(s) = s {
                            e.sm.add(slice_weight(s), slice_sm(&g.gpu, s));
                        }
                    }
                    continue;
                }
                let busy = g.gpu.util_gpu_pct.is_some_and(|u| u as f64 > policy.idle_threshold_pct);
                if let Some(a) = &g.allocated_to {
                    summary.gpus_allocated += 1;
                    if busy {
                        summary.gpus_busy += 1;
                    }
                    if g.idle_allocated {
                        summary.gpus_idle_allocated += 1;
                    }
                    let e = inst.entry(a.institute.clone()).or_default();
                    e.gpus += 1;
                    if let Some(j) = &a.job {
                        e.jobs.insert(j.clone());
                        job_ids.insert(j.clone());
                    }
                    e.util.add(1.0, g.gpu.util_gpu_pct.map(f64::from));
                    let healthy = g.gpu.health == Health::Ok;
                    e.sm.add(1.0, g.gpu.gpm.as_ref().and_then(|m| m.sm_active_pct).filter(|_| healthy));
                } else if !g.gpu.processes.is_empty() {
                    summary.gpus_unscheduled += 1;
                    if busy {
                        summary.gpus_busy += 1;
                    }
                }
            }
            nodes.push(nv);
        }
        summary.mean_util_pct = util.get();
        summary.mean_sm_active_pct = sm.get();
        summary.jobs = job_ids.len();
        let institutes = inst
            .into_iter()
            .filter(|(id, _)| viewer.institute.is_none_or(|v| v == id))
            .map(|(id, e)| InstituteLive {
                id,
                gpus_in_use: e.gpus,
                jobs: e.jobs.len(),
                mean_util_pct: e.util.get(),
                mean_sm_active_pct: e.sm.get(),
            })
            .collect();
        ClusterView {
            cluster: cluster.to_string(),
            generated_ms: now_ms,
            summary,
            institutes,
            nodes,
            version: None,
            delta: false,
            brief: false,
        }
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
        let mut holders: HashMap<&str, &Held> = HashMap::new();
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
        // What a reader may see of a process: other institutes' are shown without who or what.
        let shown = |p: &Process| {
            let institute = match &p.job {
                Some(j) => job_inst(j),
                None => map.resolve(None, p.user.as_deref(), p.group.as_deref()).to_string(),
            };
            if visible(&institute) {
                p.clone()
            } else {
                Process { pid: 0, gpu_mem_bytes: p.gpu_mem_bytes, ..Default::default() }
            }
        };
        let allocation = |h: &Held| {
            let institute = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
            if visible(&institute) {
                Allocation { job: Some(h.job.clone()), institute, account: h.account.clone(), user: h.user.clone() }
            } else {
                Allocation { job: None, institute: "other".into(), account: None, user: None }
            }
        };
        let gpus = r
            .gpus
            .iter()
            .map(|g| {
                // A GPU in MIG mode is held through its slices only.
                let allocated_to = n.allocs.holder(g.index).filter(|_| g.mig_devices.is_empty()).map(allocation);
                let mut gpu = g.clone();
                gpu.processes = g.processes.iter().map(shown).collect();
                for s in &mut gpu.mig_devices {
                    s.processes = s.processes.iter().map(shown).collect();
                }
                let mig_allocated = g
                    .mig_devices
                    .iter()
                    .filter_map(|s| {
                        let h = n.allocs.slice_holder(&s.uuid)?;
                        let idle = slice_sm(g, s).is_some_and(|x| x <= policy.idle_threshold_pct);
                        Some(SliceAllocation {
                            uuid: s.uuid.clone(),
                            allocated_to: allocation(h),
                            idle_allocated: idle,
                        })
                    })
                    .collect();
                let idle_allocated = allocated_to.is_some()
                    && g.health == Health::Ok
                    && g.util_gpu_pct.is_some_and(|u| u as f64 <= policy.idle_threshold_pct);
                let unhealthy = unhealthy(g, &n.events);
                GpuView { gpu, allocated_to, idle_allocated, unhealthy, mig_allocated }
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
                    mean_sm_active_pct: None,
                    idle_gpus: 0,
                    mem_used_bytes: 0,
                    started_ms: self.job_first_seen.get(&j.id).copied(),
                    run_time_s: None,
                });
                if !v.nodes.contains(&r.node) {
                    v.nodes.push(r.node.clone());
                }
                let held = |h: Option<&Held>| h.is_some_and(|h| h.job == j.id);
                for g in r.gpus.iter().filter(|g| g.mig_devices.is_empty() && held(n.allocs.holder(g.index))) {
                    let idle = g.util_gpu_pct.is_some_and(|u| u as f64 <= policy.idle_threshold_pct);
                    // Memory its processes use on the GPUs it holds.
                    v.mem_used_bytes += g.processes.iter().filter_map(|p| p.gpu_mem_bytes).sum::<u64>();
                    let gpm = g.gpm.as_ref().filter(|_| g.health == Health::Ok);
                    v.gpus.push(JobGpu {
                        node: r.node.clone(),
                        uuid: gpu_key(g),
                        index: g.index,
                        util_gpu_pct: g.util_gpu_pct,
                        mem_used_bytes: g.mem_used_bytes,
                        idle,
                        sm_active_pct: gpm.and_then(|m| m.sm_active_pct),
                        tensor_active_pct: gpm.and_then(|m| m.tensor_active_pct),
                        mig: None,
                    });
                }
                for g in &r.gpus {
                    for s in g.mig_devices.iter().filter(|s| held(n.allocs.slice_holder(&s.uuid))) {
                        let sm = slice_sm(g, s);
                        v.mem_used_bytes += s.processes.iter().filter_map(|p| p.gpu_mem_bytes).sum::<u64>();
                        v.gpus.push(JobGpu {
                            node: r.node.clone(),
                            uuid: s.uuid.clone(),
                            index: g.index,
                            util_gpu_pct: None,
                            mem_used_bytes: s.mem_used_bytes,
                            idle: sm.is_some_and(|x| x <= policy.idle_threshold_pct),
                            sm_active_pct: sm,
                            tensor_active_pct: s
                                .gpm
                                .as_ref()
                                .and_then(|m| m.tensor_active_pct)
                                .filter(|_| sm.is_some()),
                            mig: Some(JobSlice {
                                gpu_uuid: g.uuid.clone(),
                                slices_compute: s.slices_compute,
                                slices_memory: s.slices_memory,
                                mem_total_bytes: s.mem_total_bytes,
                            }),
                        });
                    }
                }
            }
        }
        let mut out: Vec<JobView> = jobs.into_values().collect();
        for v in &mut out {
            v.gpu_count = v.gpus.len();
            v.idle_gpus = v.gpus.iter().filter(|g| g.idle).count();
            let utils: Vec<f64> = v.gpus.iter().filter_map(|g| g.util_gpu_pct.map(|u| u as f64)).collect();
            v.mean_util_pct = (!utils.is_empty()).then(|| utils.iter().sum::<f64>() / utils.len() as f64);
            let mut sm = Mean::default();
            for g in &v.gpus {
                let w = g.mig.as_ref().map_or(1.0, |m| m.slices_compute.unwrap_or(1).min(7) as f64 / 7.0);
                sm.add(w, g.sm_active_pct);
            }
            v.mean_sm_active_pct = sm.get();
            v.run_time_s = v.started_ms.map(|s| (now_ms - s).max(0) as f64 / 1000.0);
        }
        out
    }
}

/// The jobs on a node: those holding its GPUs and MIG slices (as the
/// scheduler says, or the agent), and those the agent sees with processes
/// there (with a scheduler that answers, only jobs it runs).
fn node_jobs(n: &NodeLive, map: &InstituteMap) -> Vec<JobOnNode> {
    let r = &n.report;
    let mut out: BTreeMap<String, JobOnNode> = BTreeMap::new();
    let latest = |held: &[Held]| held.iter().max_by_key(|h| h.to_ms).cloned();
    let gpus = n.allocs.by_gpu.iter().filter_map(|(i, v)| Some((Some(*i), None, latest(v)?)));
    let slices = n.allocs.by_slice.iter().filter_map(|(u, v)| Some((None, Some(u.clone()), latest(v)?)));
    for (index, slice, h) in gpus.chain(slices) {
        let institute = map.resolve(h.account.as_deref(), h.user.as_deref(), h.group.as_deref()).to_string();
        let e = out.entry(h.job.clone()).or_insert_with(|| JobOnNode {
            id: h.job.clone(),
            institute,
            account: h.account.clone(),
            user: h.user.clone(),
            gpu_ids: Some(vec![]),
            mig_slices: vec![],
            processes: 0,
        });
        e.gpu_ids.get_or_insert_with(Vec::new).extend(index);
        e.mig_slices.extend(slice);
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
            mig_slices: vec![],
            processes: 0,
        });
        e.processes += j.processes;
    }
    out.into_values().collect()
}
