use super::*;

const T: Timing = Timing {
    clear_after_ms: 60_000,
    idle_allocated_after_ms: 300_000,
    throttle_after_ms: 120_000,
    low_sm_active_after_ms: 600_000,
    tensor_idle_after_ms: 900_000,
};

fn cond(kind: FindingKind, node: &str) -> Condition {
    Condition::new(kind, Severity::Warning, [Some(node), None, None], format!("{} on {node}", kind.name()))
}

fn raised(c: &[Change]) -> Vec<&str> {
    c.iter().filter_map(|c| if let Change::Raised(f) = c { Some(f.id.as_str()) } else { None }).collect()
}

fn cleared(c: &[Change]) -> Vec<&str> {
    c.iter().filter_map(|c| if let Change::Cleared(f) = c { Some(f.id.as_str()) } else { None }).collect()
}

#[test]
fn raised_at_once_or_after_holding_cleared_after_an_absence() {
    let mut t = Tracker::default();
    let xid = cond(FindingKind::Xid, "n1");
    let idle = cond(FindingKind::IdleAllocated, "n2");
    let c = t.update(Source::Live, vec![xid.clone(), idle.clone()], 0, T);
    assert_eq!(raised(&c), ["xid/n1"], "an XID at once; idle only after 5 minutes");
    for now in (10_000..300_000).step_by(10_000) {
        assert!(t.update(Source::Live, vec![xid.clone(), idle.clone()], now, T).is_empty());
    }
    let c = t.update(Source::Live, vec![xid.clone(), idle.clone()], 300_000, T);
    assert_eq!(raised(&c), ["idle_allocated/n2"]);
    assert_eq!(t.active().len(), 2);
    let f = t.active().into_iter().find(|f| f.id == "idle_allocated/n2").unwrap();
    assert_eq!(f.first_seen_ms, 0, "first seen when the condition began");
    // Gone for less than clear_after: still active; then cleared, at when it went.
    assert!(t.update(Source::Live, vec![idle.clone()], 310_000, T).is_empty());
    let c = t.update(Source::Live, vec![idle.clone()], 370_000, T);
    assert_eq!(cleared(&c), ["xid/n1"]);
    let Change::Cleared(f) = &c[0] else { panic!() };
    assert_eq!(f.cleared_ms, Some(310_000));
    assert_eq!(t.cleared()[0].id, "xid/n1");
}

#[test]
fn a_condition_at_its_threshold_does_not_flap() {
    let mut t = Tracker::default();
    let x = cond(FindingKind::GpuLost, "n1");
    let mut changes = vec![];
    // Present and absent in turn every 10 s for 10 minutes.
    for k in 0..60 {
        let seen = if k % 2 == 0 { vec![x.clone()] } else { vec![] };
        changes.extend(t.update(Source::Live, seen, k * 10_000, T));
    }
    assert_eq!(changes.len(), 1, "raised once, never cleared: {changes:?}");
    // Then gone for good: one clear.
    let c = t.update(Source::Live, vec![], 700_000, T);
    let c2 = t.update(Source::Live, vec![], 800_000, T);
    assert_eq!(cleared(&c).len() + cleared(&c2).len(), 1);
}

#[test]
fn sources_clear_only_their_own() {
    let mut t = Tracker::default();
    let q = Condition::new(FindingKind::QuotaExceeded, Severity::Critical, [None, None, None], "over".into());
    t.update(Source::Quota, vec![q], 0, T);
    t.update(Source::Live, vec![cond(FindingKind::NodeStale, "n1")], 0, T);
    // Live evaluations without quota conditions leave the quota finding alone.
    for now in [100_000, 200_000] {
        assert!(t.update(Source::Live, vec![cond(FindingKind::NodeStale, "n1")], now, T).is_empty());
    }
    assert_eq!(t.active().len(), 2);
    assert_eq!(t.active()[0].severity, Severity::Critical, "most severe first");
}

#[test]
fn repeats_after_the_interval_and_a_restart_keeps_active_findings() {
    let mut t = Tracker::default();
    let x = cond(FindingKind::Xid, "n1");
    t.update(Source::Live, vec![x.clone()], 0, T);
    assert!(t.due_repeats(1_000_000, 3_600_000).is_empty(), "never notified: nothing to repeat");
    t.notified("xid/n1", 0);
    assert!(t.due_repeats(3_599_000, 3_600_000).is_empty());
    assert_eq!(t.due_repeats(3_600_000, 3_600_000).len(), 1);
    assert!(t.due_repeats(3_700_000, 3_600_000).is_empty(), "the repeat counts from itself");
    // A restart from the store: still active, not raised again, notified time kept.
    let kept: Vec<(Finding, Option<i64>)> = t.active().into_iter().map(|f| (f, Some(3_600_000))).collect();
    let mut r = Tracker::restore(kept);
    assert!(r.update(Source::Live, vec![x], 3_800_000, T).is_empty());
    assert_eq!(r.notified_ms("xid/n1"), Some(3_600_000));
}

#[test]
fn tensor_idle_on_an_ai_partition_names_the_job_and_its_busy_devices() {
    use crate::accounting::{Allocations, Held};
    use crate::live::{Live, Seen, ViewPolicy};
    use crate::scheduler::tests::sched_job;
    use crate::scheduler::{GpuIndex, IndexMap, Snapshot};
    use jazari_wire::{Gpm, Gpu, Host, MigDevice, Report, WIRE_VERSION};
    let gpm = |sm: f64, tensor: f64| {
        Some(Gpm { sm_active_pct: Some(sm), tensor_active_pct: Some(tensor), ..Default::default() })
    };
    let gpu = |i: u32, util: u32, g: Option<Gpm>| Gpu {
        index: i,
        uuid: Some(format!("GPU-{i}")),
        util_gpu_pct: Some(util),
        gpm: g,
        ..Default::default()
    };
    let mut split = gpu(4, 0, None);
    split.util_gpu_pct = None;
    split.mig_devices =
        vec![MigDevice { uuid: "MIG-a".into(), slices_compute: Some(3), gpm: gpm(50.0, 0.0), ..Default::default() }];
    // Job 1 (ai) runs kernels, tensor 0: a finding. Job 2 the same on partition cpu; job 3 (ai) uses
    // tensor cores; job 4 (ai) is idle (the idle-allocated rule's); job 5 (ai) holds a busy slice, tensor 0.
    let gpus = vec![
        gpu(0, 90, gpm(30.0, 0.2)),
        gpu(1, 90, gpm(30.0, 0.0)),
        gpu(2, 90, gpm(60.0, 40.0)),
        gpu(3, 0, gpm(0.0, 0.0)),
        split,
    ];
    let r = Report {
        version: WIRE_VERSION,
        node: "n1".into(),
        instance: "i".into(),
        seq: 0,
        interval_start_ms: 0,
        interval_end_ms: 10_000,
        host: Host::default(),
        gpus,
        jobs: vec![],
        events: vec![],
    };
    let held = |job: &str| {
        vec![Held { from_ms: 0, to_ms: 10_000, job: job.into(), user: Some("u".into()), ..Default::default() }]
    };
    let mut allocs = Allocations { slices_scheduled: true, ..Default::default() };
    for (i, job) in ["1", "2", "3", "4"].iter().enumerate() {
        allocs.by_gpu.insert(i as u32, held(job));
    }
    allocs.by_slice.insert("MIG-a".into(), held("5"));
    let mut live = Live::default();
    live.update(Seen { report: &r, allocs: &allocs, scheduled: None }, 1000);
    let jobs = ["1", "2", "3", "4", "5"].map(|id| {
        let mut j = sched_job(id, "nlp-lab", "n1", vec![]);
        j.partition = Some(if id == "2" { "cpu".into() } else { "ai".into() });
        j
    });
    let snap = Snapshot { fetched_ms: 1, jobs: jobs.to_vec(), error: None };
    let index = IndexMap::new(GpuIndex::Nvml);
    let policy = ViewPolicy { stale_after_ms: 30_000, idle_threshold_pct: 5.0 };
    let mut cfg = crate::config::Alerts { tensor_idle_partitions: vec!["ai".into()], ..Default::default() };
    let run = |cfg: &crate::config::Alerts, with: bool| {
        let s = with.then_some(rules::Scheduler { snapshot: &snap, index: &index });
        let c = rules::live(&live, &Default::default(), policy, cfg, s, &mut Default::default(), 2000);
        c.into_iter().filter(|c| c.kind == FindingKind::TensorIdle).collect::<Vec<_>>()
    };
    let found = run(&cfg, true);
    let jobs: Vec<&str> = found.iter().filter_map(|c| c.job.as_deref()).collect();
    assert_eq!(jobs, ["1", "5"], "{found:?}");
    assert!(found[0].message.contains("AI partition ai") && found[0].message.contains("GPU 0: tensor 0%, SM 30%"));
    assert!(found[1].message.contains("MIG slice MIG-a of GPU 4: tensor 0%, SM 50%"), "{}", found[1].message);
    assert_eq!(found[0].severity, Severity::Info);
    // Without the scheduler's word there is no partition; without AI partitions the rule is off.
    assert!(run(&cfg, false).is_empty());
    cfg.tensor_idle_partitions.clear();
    assert!(run(&cfg, true).is_empty());
}
