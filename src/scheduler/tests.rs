//! Who holds which GPU when, as Slurm says; the GPU numbering learned per node.

use super::history::History;
use super::*;
use crate::api::scheduler::NodeGpus;
use jazari_wire::{Gpu, Host, Job, Process, WIRE_VERSION};

/// A Slurm job running on `node` since t=0 (ms) on IDX `idx`.
pub(crate) fn sched_job(id: &str, acct: &str, node: &str, idx: Vec<u32>) -> SchedJob {
    SchedJob {
        id: id.into(),
        display_id: id.into(),
        array_job: None,
        array_task: None,
        pending_tasks: None,
        user: Some("u".into()),
        group: None,
        account: Some(acct.into()),
        partition: None,
        state: "RUNNING".into(),
        start_s: Some(0),
        end_s: None,
        time_limit_s: Some(3600),
        nodes: vec![node.into()],
        gpus: vec![NodeGpus { node: node.into(), count: idx.len() as u32, indices: Some(idx), gpu_type: None }],
        allocated_gpus: 2,
        requested_gpus: 2,
    }
}

pub(crate) fn snap() -> Snapshot {
    Snapshot {
        fetched_ms: 1000,
        jobs: vec![sched_job("10", "nlp-lab", "n1", vec![0, 1]), sched_job("11", "climate", "n9", vec![0])],
        error: None,
    }
}

/// Node n1: 4 GPUs whose minor numbers run the other way (minor = 3 - index);
/// GPU 0 runs job 10, GPU 1 job 12, GPU 2 job 13, GPU 3 nothing.
pub(crate) fn report() -> Report {
    let gpu = |i: u32, job: Option<&str>| Gpu {
        index: i,
        minor: Some(3 - i),
        uuid: Some(format!("GPU-{i}")),
        util_gpu_pct: Some(50),
        processes: job
            .map(|j| vec![Process { pid: 100 + i, job: Some(j.into()), user: Some("x".into()), ..Default::default() }])
            .unwrap_or_default(),
        ..Default::default()
    };
    Report {
        version: WIRE_VERSION,
        node: "n1".into(),
        instance: "i".into(),
        seq: 0,
        interval_start_ms: 0,
        interval_end_ms: 10_000,
        host: Host::default(),
        gpus: vec![gpu(0, Some("10")), gpu(1, Some("12")), gpu(2, Some("13")), gpu(3, None)],
        jobs: vec![],
        events: vec![],
    }
}

fn history(jobs: &[SchedJob]) -> History {
    let mut h = History::default();
    h.take_squeue(jobs, 1000);
    h
}

fn holders(a: &crate::accounting::Allocations) -> Vec<(u32, String)> {
    a.by_gpu.iter().flat_map(|(i, v)| v.iter().map(move |h| (*i, h.job.clone()))).collect()
}

#[test]
fn slurm_says_who_holds_each_gpu_under_either_numbering() {
    let h = history(&snap().jobs);
    let a = allocations(&report(), &h, GpuIndex::Nvml);
    assert_eq!(holders(&a), [(0, "10".to_string()), (1, "10".to_string())]);
    assert_eq!(a.by_gpu[&0][0].account.as_deref(), Some("nlp-lab"));
    // Through minor numbers: IDX 0,1 are minors 0,1 = NVML indices 3,2.
    let a = allocations(&report(), &h, GpuIndex::Minor);
    assert_eq!(holders(&a), [(2, "10".to_string()), (3, "10".to_string())]);
}

#[test]
fn a_job_id_slurm_does_not_run_holds_nothing() {
    // Processes carry jobs 12 and 13 (and SLURM_JOB_GPUS): Slurm runs neither.
    let mut r = report();
    r.jobs = vec![Job { id: "13".into(), gpu_ids: Some(vec![0, 1, 2, 3]), ..Default::default() }];
    let a = allocations(&r, &history(&snap().jobs), GpuIndex::Nvml);
    assert!(holders(&a).iter().all(|(_, j)| j == "10"), "{:?}", holders(&a));
    // Without a scheduler, the agent's facts would have made 13 hold every GPU.
    let agent = crate::accounting::Allocations::from_agent(&r, crate::accounting::same_index);
    assert_eq!(agent.by_gpu.len(), 4);
}

#[test]
fn a_job_ending_mid_interval_holds_its_part_and_one_only_counted_takes_free_gpus() {
    let mut short = sched_job("20", "climate", "n1", vec![]);
    short.gpus[0] = NodeGpus { node: "n1".into(), count: 1, indices: None, gpu_type: None };
    short.state = "COMPLETED".into();
    short.start_s = Some(2);
    short.end_s = Some(6);
    let mut h = history(&[sched_job("10", "nlp-lab", "n1", vec![0, 1])]);
    h.take_sacct(&[short]);
    let a = allocations(&report(), &h, GpuIndex::Nvml);
    // Job 20 ran 2 s to 6 s on one GPU Slurm did not name: the first free one, GPU 2... where job 13's
    // process claims a job Slurm does not run, so it is free.
    let h20: Vec<_> = a
        .by_gpu
        .iter()
        .flat_map(|(i, v)| v.iter().filter(|h| h.job == "20").map(move |h| (*i, h.from_ms, h.to_ms)))
        .collect();
    assert_eq!(h20, [(2, 2000, 6000)]);
}

#[test]
fn auto_learns_the_numbering_from_where_processes_run() {
    // Slurm gave job 10 IDX 3 (minor 3 = NVML index 0, where its process runs).
    let h = history(&[sched_job("10", "nlp-lab", "n1", vec![3])]);
    let mut m = IndexMap::new(GpuIndex::Auto);
    assert_eq!(m.for_node("n1"), GpuIndex::Nvml, "until there is evidence");
    m.learn(&report(), &h);
    assert_eq!(m.for_node("n1"), GpuIndex::Minor);
    assert!(m.problem("n1").is_none());
    // Configured "nvml", the same evidence is a finding.
    let mut m = IndexMap::new(GpuIndex::Nvml);
    m.learn(&report(), &h);
    assert_eq!(m.for_node("n1"), GpuIndex::Nvml);
    assert!(m.problem("n1").unwrap().contains("minor"), "{:?}", m.problem("n1"));
}

#[test]
fn queued_gpus_count_each_array_task_and_institutes_known_by_group() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut map = crate::accounting::InstituteMap::default();
    map.add("robots", &s(&[]), &s(&[]), &s(&["robotics"]));
    map.add("nlp", &s(&["nlp-lab"]), &s(&[]), &s(&[]));
    let text =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/squeue-array.json")).unwrap();
    let mut jobs = slurm::parse_squeue(&text).unwrap();
    let mut robot = jobs[0].clone();
    robot.state = "PENDING".into();
    robot.account = Some("unknown-account".into());
    robot.group = Some("robotics".into());
    robot.requested_gpus = 4;
    jobs.push(robot);
    let q = queued_gpus(&Snapshot { fetched_ms: 1, jobs, error: None }, &map);
    assert_eq!(q.get("nlp"), Some(&6), "tasks 3-5 × 2 GPUs");
    assert_eq!(q.get("robots"), Some(&4), "by unix group");
}
