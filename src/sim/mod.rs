//! A simulated cluster whose agents send real reports (`jazari sim`, the demo,
//! the ingest benchmark): this module makes the reports, [`drive`] sends them.
//!
//! Jobs of the configured institutes arrive and finish; each holds whole GPUs
//! of one node and uses them with its own efficiency. Some jobs hold GPUs and
//! leave them idle; one node stops reporting after a while; one GPU raises
//! XID errors.

pub mod drive;
pub mod prebuilt;
pub mod promtext;

use crate::config::Config;
use jazari_wire::{EccCounts, Event, EventKind, Gpu, GpuSourceState, Health, Host, Job, Process, Report, WIRE_VERSION};

/// xorshift64*: small, fast, deterministic for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[derive(Debug, Clone)]
struct SimJob {
    id: u64,
    account: String,
    user: String,
    gpus: Vec<u32>,
    /// Mean utilisation while running, percent; 0 for a job that leaves its GPUs idle.
    efficiency: f64,
    end_ms: i64,
    pids: Vec<u32>,
}

#[derive(Debug, Clone)]
struct SimNode {
    name: String,
    instance: String,
    seq: u64,
    last_ms: i64,
    gpus: usize,
    jobs: Vec<SimJob>,
    /// Stops reporting after this time (the demo's silent node)…
    silent_after_ms: Option<i64>,
    /// …and comes back after this one.
    silent_until_ms: Option<i64>,
    /// GPU index that raises XID errors.
    xid_gpu: Option<u32>,
}

/// Shape of the simulated cluster.
#[derive(Debug, Clone)]
pub struct SimSpec {
    pub nodes: usize,
    pub gpus_per_node: usize,
    pub seed: u64,
    /// Prefix of node names.
    pub prefix: String,
    /// Make one node go silent and one GPU raise XIDs.
    pub faults: bool,
}

/// Accounts and users that jobs run under, from the institutes of a config.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub account: String,
    pub users: Vec<String>,
}

pub fn tenants_from(cfg: &Config) -> Vec<Tenant> {
    let mut out = Vec::new();
    for i in &cfg.institutes {
        for a in &i.accounts {
            let users: Vec<String> = if i.users.is_empty() {
                (1..=4).map(|k| format!("{}-u{k}", i.id.split('-').next_back().unwrap_or(&i.id))).collect()
            } else {
                i.users.clone()
            };
            out.push(Tenant { account: a.clone(), users });
        }
    }
    if out.is_empty() {
        out.push(Tenant { account: "default".into(), users: vec!["user1".into(), "user2".into()] });
    }
    out
}

/// When the silent node stops reporting, after the start, and for how long.
const SILENT_AFTER_MS: i64 = 45_000;
const SILENT_FOR_MS: i64 = 5 * 60_000;

pub struct SimCluster {
    nodes: Vec<SimNode>,
    tenants: Vec<Tenant>,
    rng: Rng,
    next_job: u64,
    next_pid: u32,
}

impl SimCluster {
    pub fn new(spec: &SimSpec, tenants: Vec<Tenant>, start_ms: i64) -> Self {
        let mut rng = Rng::new(spec.seed);
        let nodes = (0..spec.nodes)
            .map(|i| SimNode {
                name: format!("{}{:04}", spec.prefix, i + 1),
                instance: format!("{:016x}", rng.next_u64()),
                seq: 0,
                last_ms: start_ms,
                gpus: spec.gpus_per_node,
                jobs: vec![],
                silent_after_ms: (spec.faults && i == spec.nodes.saturating_sub(1) && spec.nodes > 2)
                    .then_some(start_ms + SILENT_AFTER_MS),
                silent_until_ms: (spec.faults && i == spec.nodes.saturating_sub(1) && spec.nodes > 2)
                    .then_some(start_ms + SILENT_AFTER_MS + SILENT_FOR_MS),
                xid_gpu: (spec.faults && i == 1).then_some(3.min(spec.gpus_per_node as u32 - 1)),
            })
            .collect();
        let mut c = SimCluster { nodes, tenants, rng, next_job: 100_000, next_pid: 10_000 };
        // Start busy: fill about 80 % of the GPUs.
        for n in 0..c.nodes.len() {
            while c.free_gpus(n).len() > c.nodes[n].gpus / 5 {
                if !c.start_job(n, start_ms) {
                    break;
                }
            }
        }
        c
    }

    /// Faults from `at_ms` on, as `SimSpec::faults` gives them from the start:
    /// the last node goes silent 45 s later and returns 5 minutes after that,
    /// the second node's GPU raises XIDs. For a cluster backfilled without faults.
    pub fn faults_from(&mut self, at_ms: i64) {
        let n = self.nodes.len();
        if n > 2 {
            self.nodes[n - 1].silent_after_ms = Some(at_ms + SILENT_AFTER_MS);
            self.nodes[n - 1].silent_until_ms = Some(at_ms + SILENT_AFTER_MS + SILENT_FOR_MS);
        }
        if n > 1 {
            self.nodes[1].xid_gpu = Some(3.min(self.nodes[1].gpus as u32 - 1));
        }
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn free_gpus(&self, n: usize) -> Vec<u32> {
        let node = &self.nodes[n];
        (0..node.gpus as u32).filter(|g| !node.jobs.iter().any(|j| j.gpus.contains(g))).collect()
    }

    fn start_job(&mut self, n: usize, now_ms: i64) -> bool {
        let free = self.free_gpus(n);
        if free.is_empty() {
            return false;
        }
        let want = [1usize, 1, 2, 2, 4, 8][self.rng.below(6) as usize].min(free.len());
        let t = self.tenants[self.rng.below(self.tenants.len() as u64) as usize].clone();
        let user = t.users[self.rng.below(t.users.len() as u64) as usize].clone();
        let r = self.rng.f64();
        // A spread of efficiency: most jobs work hard, some hold GPUs idle.
        let efficiency = if r < 0.12 {
            0.0
        } else if r < 0.35 {
            15.0 + 30.0 * self.rng.f64()
        } else {
            70.0 + 28.0 * self.rng.f64()
        };
        let minutes = 5.0 + self.rng.f64() * 240.0;
        let gpus = free[..want].to_vec();
        let pids = gpus.iter().map(|_| {
            self.next_pid += 1;
            self.next_pid
        });
        let pids: Vec<u32> = pids.collect();
        self.next_job += 1;
        self.nodes[n].jobs.push(SimJob {
            id: self.next_job,
            account: t.account,
            user,
            gpus,
            efficiency,
            end_ms: now_ms + (minutes * 60_000.0) as i64,
            pids,
        });
        true
    }

    /// Reports of every node that reports at `now_ms` (each covering its time since the last).
    pub fn reports(&mut self, now_ms: i64) -> Vec<Report> {
        (0..self.nodes.len()).filter_map(|n| self.report_for(n, now_ms)).collect()
    }

    /// The next report of node `n`, `interval_ms` after its previous one.
    pub fn next_report(&mut self, n: usize, interval_ms: i64) -> Option<Report> {
        let at = self.nodes[n].last_ms + interval_ms;
        self.report_for(n, at)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The report of node `n` at `now_ms`, or None when that node is silent.
    pub fn report_for(&mut self, n: usize, now_ms: i64) -> Option<Report> {
        let node = &mut self.nodes[n];
        if node.silent_after_ms.is_some_and(|t| now_ms > t) && node.silent_until_ms.is_none_or(|t| now_ms <= t) {
            // Down: its next report, once back, covers only its own interval.
            node.last_ms = now_ms;
            return None;
        }
        // Jobs end and arrive.
        self.nodes[n].jobs.retain(|j| j.end_ms > now_ms);
        let free = self.free_gpus(n).len();
        if free > 0 && self.rng.f64() < 0.3 {
            self.start_job(n, now_ms);
        }
        let rng = &mut self.rng;
        let node = &mut self.nodes[n];
        let start = node.last_ms;
        node.last_ms = now_ms;
        let seq = node.seq;
        node.seq += 1;
        let mut gpus = Vec::with_capacity(node.gpus);
        let mut events = Vec::new();
        for g in 0..node.gpus as u32 {
            let job = node.jobs.iter().find(|j| j.gpus.contains(&g));
            let util = job.map(|j| (j.efficiency + (rng.f64() - 0.5) * 10.0).clamp(0.0, 100.0)).unwrap_or(0.0);
            let util = if job.is_some_and(|j| j.efficiency == 0.0) { 0.0 } else { util };
            let processes = job
                .filter(|j| j.efficiency > 0.0 || rng.f64() < 0.5)
                .map(|j| {
                    let k = j.gpus.iter().position(|x| *x == g).unwrap_or(0);
                    vec![Process {
                        pid: j.pids[k],
                        uid: Some(3000 + (j.id % 500) as u32),
                        user: Some(j.user.clone()),
                        group: None,
                        gpu_mem_bytes: Some(((20.0 + util * 0.9) * (1u64 << 30) as f64) as u64),
                        job: Some(j.id.to_string()),
                        pod_uid: None,
                        command: Some("python3".into()),
                    }]
                })
                .unwrap_or_default();
            let uuid =
                format!("GPU-{:08x}-{:04x}-4{:03x}-8000-{:012x}", n as u32, g, n % 4096, (n as u64) << 8 | g as u64);
            let xid = node.xid_gpu == Some(g);
            if xid && seq % 30 == 5 {
                events.push(Event { time_ms: now_ms, gpu_uuid: Some(uuid.clone()), kind: EventKind::Xid { code: 79 } });
            }
            let mem_used = processes.iter().filter_map(|p| p.gpu_mem_bytes).sum::<u64>() + (512 << 20);
            gpus.push(Gpu {
                index: g,
                uuid: Some(uuid),
                pci_bus_id: Some(format!("00000000:{:02X}:00.0", 0x18 + g * 0x10)),
                minor: Some(g),
                name: Some("NVIDIA H200".into()),
                health: Health::Ok,
                util_gpu_pct: Some(util.round() as u32),
                util_mem_pct: Some((util * 0.6).round() as u32),
                mem_used_bytes: Some(mem_used.min(144384 << 20)),
                mem_total_bytes: Some(144384 << 20),
                temperature_c: Some((32.0 + util * 0.4) as u32),
                power_mw: Some((75_000.0 + util * 6_000.0) as u32),
                power_limit_mw: Some(700_000),
                energy_mj: Some((now_ms as u64 / 1000) * 300_000),
                sm_clock_mhz: Some(if util > 0.0 { 1980 } else { 345 }),
                mem_clock_mhz: Some(3201),
                fan_pct: None,
                ecc_enabled: Some(true),
                ecc: Some(EccCounts {
                    volatile_corrected: Some(0),
                    volatile_uncorrected: Some(if xid { 2 } else { 0 }),
                    aggregate_corrected: Some(0),
                    aggregate_uncorrected: Some(if xid { 2 } else { 0 }),
                }),
                throttle_reasons: Some(if util > 0.0 { vec![] } else { vec!["gpu_idle".into()] }),
                mig_enabled: Some(false),
                processes,
                gpm: None,
                mig_devices: Vec::new(),
            });
        }
        let jobs = node
            .jobs
            .iter()
            .map(|j| Job {
                scheduler: "slurm".into(),
                id: j.id.to_string(),
                user: Some(j.user.clone()),
                uid: Some(3000 + (j.id % 500) as u32),
                account: Some(j.account.clone()),
                group: None,
                gpu_ids: Some(j.gpus.clone()),
                array: None,
                processes: j.gpus.len() as u32 + 2,
            })
            .collect();
        let busy: f64 =
            gpus.iter().filter_map(|g| g.util_gpu_pct).map(|u| u as f64).sum::<f64>() / node.gpus.max(1) as f64;
        Some(Report {
            version: WIRE_VERSION,
            node: node.name.clone(),
            instance: node.instance.clone(),
            seq,
            interval_start_ms: start,
            interval_end_ms: now_ms,
            host: Host {
                cpu_percent: Some((5.0 + busy * 0.3).min(100.0)),
                cpu_count: Some(112),
                load: Some([busy / 10.0, busy / 10.0, busy / 10.0]),
                mem_used_bytes: Some(400 << 30),
                mem_total_bytes: Some(2048 << 30),
                uptime_s: Some(86400 * 12),
                boot_id: None,
                kernel: Some("6.1.0-sim".into()),
                driver_version: Some("570.124.06".into()),
                cuda_version: Some("12.8".into()),
                gpu_source: GpuSourceState::Ok,
                agent_version: Some(format!("{}-sim", env!("CARGO_PKG_VERSION"))),
            },
            gpus,
            jobs,
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_cluster_has_busy_idle_and_faulty_parts() {
        let spec = SimSpec { nodes: 8, gpus_per_node: 8, seed: 7, prefix: "sim".into(), faults: true };
        let tenants = vec![Tenant { account: "a".into(), users: vec!["u".into()] }];
        let mut c = SimCluster::new(&spec, tenants, 0);
        let mut idle_allocated = 0;
        let mut xids = 0;
        for step in 1..=20 {
            for r in c.reports(step * 10_000) {
                assert_eq!(r.interval_end_ms - r.interval_start_ms, 10_000);
                for g in &r.gpus {
                    let held = r.jobs.iter().any(|j| j.gpu_ids.as_ref().unwrap().contains(&g.index));
                    if held && g.util_gpu_pct == Some(0) {
                        idle_allocated += 1;
                    }
                }
                xids += r.events.len();
            }
        }
        assert!(idle_allocated > 0, "some jobs leave their GPUs idle");
        assert!(xids > 0, "one GPU raises XIDs");
        // The silent node stops after 45 s, and returns 5 minutes later.
        assert_eq!(c.reports(200_000).len(), 7);
        assert_eq!(c.reports(344_000).len(), 7);
        let back = c.reports(346_000);
        assert_eq!(back.len(), 8);
        let r = back.iter().find(|r| r.node == "sim0008").unwrap();
        assert_eq!(r.interval_end_ms - r.interval_start_ms, 2_000, "one interval, not the whole silence");
    }
}
