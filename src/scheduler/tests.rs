//! Enrichment of reports with what the scheduler says.
use super::*;
use jazari_wire::{Gpu, Host, Process, WIRE_VERSION};
use slurm::NodeGpus;

pub(crate) fn snap() -> Snapshot {
    let job = |id: &str, acct: &str, node: &str, idx: Vec<u32>| SchedJob {
        id: id.into(),
        user: Some("u".into()),
        account: Some(acct.into()),
        partition: None,
        state: "RUNNING".into(),
        start_s: Some(0),
        time_limit_s: Some(3600),
        nodes: vec![node.into()],
        gpus: vec![NodeGpus { node: node.into(), count: idx.len() as u32, indices: Some(idx), gpu_type: None }],
        requested_gpus: 2,
    };
    Snapshot {
        fetched_ms: 1000,
        jobs: vec![job("10", "nlp-lab", "n1", vec![0, 1]), job("11", "climate", "n9", vec![0])],
        error: None,
    }
}

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
        interval_end_ms: 1000,
        host: Host::default(),
        gpus: vec![gpu(0, Some("10")), gpu(1, Some("12")), gpu(2, Some("13")), gpu(3, None)],
        jobs: vec![],
        events: vec![],
    }
}

#[test]
fn enrichment_gives_jobs_their_gpus_and_accounts() {
    let mut r = report();
    enrich(&mut r, &snap(), GpuIndex::Nvml);
    assert_eq!(r.jobs.len(), 1);
    assert_eq!(r.jobs[0].gpu_ids, Some(vec![0, 1]));
    assert_eq!(r.jobs[0].account.as_deref(), Some("nlp-lab"));
    // Through minor numbers: IDX 0,1 are minors 0,1 = NVML indices 3,2.
    let mut r = report();
    enrich(&mut r, &snap(), GpuIndex::Minor);
    assert_eq!(r.jobs[0].gpu_ids, Some(vec![3, 2]));
}
