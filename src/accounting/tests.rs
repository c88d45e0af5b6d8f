//! What reports charge to whom, by hand.
use super::*;
use jazari_wire::{Host, Process, WIRE_VERSION};

fn map() -> InstituteMap {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut m = InstituteMap::default();
    m.add("a", &s(&["acct-a"]), &s(&["ua"]), &s(&[]));
    m.add("b", &s(&[]), &s(&["ub"]), &s(&[]));
    m
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

const P: Policy = Policy { idle_threshold_pct: 5.0, mig_charge: MigCharge::Max };

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
    let mut map = InstituteMap::default();
    map.add("robots", &[], &[], &["robotics".to_string()]);
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

#[test]
fn gpm_activity_is_charged_over_the_allocated_time_that_measured_it() {
    let job = Job {
        scheduler: "slurm".into(),
        id: "9".into(),
        account: Some("acct-a".into()),
        gpu_ids: Some(vec![0, 1, 2]),
        ..Default::default()
    };
    let with_gpm = |index, sm, tensor| Gpu {
        gpm: Some(jazari_wire::Gpm { sm_active_pct: Some(sm), tensor_active_pct: tensor, ..Default::default() }),
        ..gpu(index, 100, vec![])
    };
    // GPU 0: 100 % NVML utilisation, 18 % SM active, no tensor work; GPU 1: 60 % and 40 %;
    // GPU 2: no GPM (pre-Hopper); GPU 3: GPM, but nobody holds it.
    let r = report(
        0,
        10_000,
        vec![with_gpm(0, 18.0, Some(0.0)), with_gpm(1, 60.0, Some(40.0)), gpu(2, 100, vec![]), with_gpm(3, 50.0, None)],
        vec![job],
    );
    let c = charges(&r, &map(), P);
    let a = |i: usize| c[i].amounts;
    assert_eq!((a(0).gpm_s, a(0).tensor_active_s), (10.0, 0.0));
    assert!((a(0).sm_active_s - 1.8).abs() < 1e-9);
    assert_eq!(a(0).busy_s, 10.0, "NVML utilisation keeps its own meaning");
    assert_eq!(a(1).gpm_s, 10.0);
    assert!((a(1).sm_active_s - 6.0).abs() < 1e-9 && (a(1).tensor_active_s - 4.0).abs() < 1e-9);
    assert_eq!(
        (a(2).allocated_s, a(2).gpm_s, a(2).sm_active_s),
        (10.0, 0.0, 0.0),
        "no GPM: not measured, not zero activity"
    );
    assert_eq!(
        (a(3).allocated_s, a(3).gpm_s, a(3).sm_active_s),
        (0.0, 0.0, 0.0),
        "idle capacity is not charged activity"
    );
    // The SM efficiency of the job: over the 20 measured GPU-seconds, not the 30 allocated.
    let (sm, measured): (f64, f64) =
        c.iter().fold((0.0, 0.0), |(s, m), c| (s + c.amounts.sm_active_s, m + c.amounts.gpm_s));
    assert!((sm / measured - 0.39).abs() < 1e-9);
}

#[test]
fn a_mig_slice_is_charged_its_fraction_by_the_policy() {
    let (one_g, three_g) = ((Some(1), Some(1)), (Some(3), Some(4)));
    assert!((MigCharge::Max.fraction(one_g.0, one_g.1) - 1.0 / 7.0).abs() < 1e-12, "compute 1/7 over memory 1/8");
    assert!((MigCharge::Max.fraction(three_g.0, three_g.1) - 4.0 / 8.0).abs() < 1e-12, "memory 4/8 over compute 3/7");
    assert!((MigCharge::Compute.fraction(three_g.0, three_g.1) - 3.0 / 7.0).abs() < 1e-12);
    assert!((MigCharge::Memory.fraction(one_g.0, one_g.1) - 1.0 / 8.0).abs() < 1e-12);
}

#[test]
fn mig_slices_are_charged_to_the_jobs_and_owners_of_their_processes() {
    use jazari_wire::{Gpm, MigDevice};
    let slice = |n: u32, c: u32, m: u32, procs: Vec<Process>, sm: Option<f64>| MigDevice {
        uuid: format!("MIG-{n}"),
        slices_compute: Some(c),
        slices_memory: Some(m),
        processes: procs,
        gpm: sm.map(|sm| Gpm { sm_active_pct: Some(sm), ..Default::default() }),
        ..Default::default()
    };
    // 3g.71gb held by job 9 (acct-a), SM 40 %; 2g.35gb by job 10, SM 2 % (idle); a 1g with
    // a process of ub outside any job; a 1g with nothing.
    let mut g = gpu(0, 0, vec![]);
    g.util_gpu_pct = None;
    g.mig_devices = vec![
        slice(0, 3, 4, vec![Process { pid: 1, job: Some("9".into()), ..Default::default() }], Some(40.0)),
        slice(1, 2, 2, vec![Process { pid: 2, job: Some("10".into()), ..Default::default() }], Some(2.0)),
        slice(2, 1, 1, vec![Process { pid: 3, user: Some("ub".into()), ..Default::default() }], None),
        slice(3, 1, 1, vec![], None),
    ];
    let job = |id: &str| Job {
        scheduler: "slurm".into(),
        id: id.into(),
        account: Some("acct-a".into()),
        ..Default::default()
    };
    let r = report(0, 70_000, vec![g], vec![job("9"), job("10")]);
    let c = charges(&r, &map(), P);
    let by = |gpu: &str| {
        c.iter().filter(|c| c.key.gpu == gpu).fold(Amounts::default(), |mut a, c| {
            a.add(&c.amounts);
            a
        })
    };
    // A 70 s interval: the 3g slice is 4/8 of a GPU (35 s), the 2g 2/7 (20 s), a 1g 1/7 (10 s).
    let (s0, s1, s2, s3) = (by("MIG-0"), by("MIG-1"), by("MIG-2"), by("MIG-3"));
    assert!((s0.allocated_s - 35.0).abs() < 1e-9 && (s0.busy_s - 14.0).abs() < 1e-9 && s0.idle_allocated_s == 0.0);
    assert!((s0.sm_active_s - 14.0).abs() < 1e-9 && (s0.gpm_s - 35.0).abs() < 1e-9);
    assert!(c.iter().any(|c| c.key.gpu == "MIG-0" && c.key.job == "9" && c.key.institute == "a"));
    assert!((s1.allocated_s - 20.0).abs() < 1e-9 && (s1.idle_allocated_s - 20.0).abs() < 1e-9, "SM 2 % is idle");
    assert!((s2.unscheduled_s - 10.0).abs() < 1e-9 && s2.allocated_s == 0.0);
    assert!(c.iter().any(|c| c.key.gpu == "MIG-2" && c.key.institute == "b"));
    assert_eq!((s3.allocated_s, s3.unscheduled_s), (0.0, 0.0));
    // Capacity is one GPU for the interval, whatever the fractions add up to (15/14 here).
    let cap: f64 = c.iter().map(|c| c.amounts.capacity_s).sum();
    assert!((cap - 70.0).abs() < 1e-9, "{cap}");
    assert!(c.iter().all(|c| c.amounts.allocated_s <= c.amounts.capacity_s * 15.0 / 14.0 + 1e-9));
}

#[test]
fn compute_instances_sharing_a_gpu_instance_share_its_memory() {
    use jazari_wire::MigDevice;
    // A 3g.71gb GPU instance split into three 1-slice compute instances: each reports the
    // instance's 4 memory slices, and the three together are still half the GPU.
    let mut g = gpu(0, 0, vec![]);
    g.mig_devices = (0..3)
        .map(|ci| MigDevice {
            uuid: format!("MIG-ci{ci}"),
            gpu_instance_id: Some(1),
            compute_instance_id: Some(ci),
            slices_compute: Some(1),
            slices_memory: Some(4),
            processes: vec![Process { pid: ci + 1, job: Some("9".into()), ..Default::default() }],
            ..Default::default()
        })
        .collect();
    let job = Job { scheduler: "slurm".into(), id: "9".into(), account: Some("acct-a".into()), ..Default::default() };
    let c = charges(&report(0, 60_000, vec![g], vec![job]), &map(), P);
    let alloc: f64 = c.iter().map(|c| c.amounts.allocated_s).sum();
    assert!((alloc - 30.0).abs() < 1e-9, "three thirds of half a GPU for 60 s, not 1.5 GPUs: {alloc}");
    let each: Vec<f64> = c.iter().filter(|c| c.key.gpu.starts_with("MIG-")).map(|c| c.amounts.allocated_s).collect();
    assert!(each.iter().all(|a| (a - 10.0).abs() < 1e-9), "{each:?}");
}
