//! Slurm's indices on a node with MIG slices: what they name, what a job is
//! charged for them, and what happens where they do not fit.

use super::*;
use crate::accounting::{InstituteMap, MigCharge, Policy, gpu_charges};
use crate::scheduler::history::History;
use crate::scheduler::slurm::parse_squeue;
use crate::scheduler::{IndexMap, allocations};
use jazari_wire::{Gpm, Host, MigDevice, Process, Report, WIRE_VERSION};

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm").join(name)).unwrap()
}

fn slice(uuid: &str, gi: u32, compute: u32, memory: u32, job: Option<&str>) -> MigDevice {
    MigDevice {
        uuid: uuid.into(),
        gpu_instance_id: Some(gi),
        compute_instance_id: Some(0),
        slices_compute: Some(compute),
        slices_memory: Some(memory),
        processes: job
            .map(|j| vec![Process { pid: 900 + gi, job: Some(j.into()), user: Some("u".into()), ..Default::default() }])
            .unwrap_or_default(),
        gpm: Some(Gpm { sm_active_pct: Some(40.0), tensor_active_pct: Some(0.0), ..Default::default() }),
        ..Default::default()
    }
}

/// Node `vm` as `scripts/slurm-up` with JAZARI_SLURM_MIG=1 set it up for the
/// fixtures: 4 whole H200s (minors 2, 3, 0, 1), then an H200 split into two
/// 3g.71gb slices, listed by NVML in the other order of their GPU instances.
pub(crate) fn vm(procs: [Option<&str>; 2]) -> Report {
    let mut gpus: Vec<Gpu> = [2, 3, 0, 1]
        .iter()
        .enumerate()
        .map(|(i, m)| Gpu {
            index: i as u32,
            minor: Some(*m),
            uuid: Some(format!("GPU-{i}")),
            util_gpu_pct: Some(50),
            ..Default::default()
        })
        .collect();
    gpus.push(Gpu {
        index: 4,
        minor: Some(4),
        uuid: Some("GPU-4".into()),
        mig_enabled: Some(true),
        mig_devices: vec![slice("MIG-gi2", 2, 3, 4, procs[1]), slice("MIG-gi1", 1, 3, 4, procs[0])],
        ..Default::default()
    });
    Report {
        version: WIRE_VERSION,
        node: "vm".into(),
        instance: "i".into(),
        seq: 0,
        interval_start_ms: 1_795_959_800_000,
        interval_end_ms: 1_795_959_870_000,
        host: Host::default(),
        gpus,
        jobs: vec![],
        events: vec![],
    }
}

fn history(file: &str) -> History {
    let mut h = History::default();
    h.take_squeue(&parse_squeue(&fixture(file)).unwrap(), 1_795_959_800_000);
    h
}

fn slice_dev(uuid: &str) -> Device {
    Device::Slice { gpu: 4, uuid: uuid.into() }
}

#[test]
fn slurm_lists_gpus_then_each_mig_gpus_slices_by_instance() {
    let r = vm([None, None]);
    let want = |first: [u32; 4]| -> Vec<Device> {
        first.into_iter().map(Device::Gpu).chain([slice_dev("MIG-gi1"), slice_dev("MIG-gi2")]).collect()
    };
    assert_eq!(devices(&r.gpus, GpuIndex::Nvml), want([0, 1, 2, 3]));
    assert_eq!(devices(&r.gpus, GpuIndex::Minor), want([2, 3, 0, 1]), "by minor number");
    assert_eq!(map_indices(&[4], Some("3g.71gb"), &r.gpus, GpuIndex::Nvml), Some(vec![slice_dev("MIG-gi1")]));
    assert_eq!(slurm_index(&slice_dev("MIG-gi2"), &r.gpus, GpuIndex::Nvml), Some(5));
    // Without MIG slices on the node, an index is an NVML index or a minor, as before.
    let mut plain = r.clone();
    plain.gpus.truncate(4);
    assert_eq!(
        map_indices(&[0, 2], Some("h200"), &plain.gpus, GpuIndex::Minor),
        Some(vec![Device::Gpu(2), Device::Gpu(0)])
    );
}

#[test]
fn mig_profiles_name_their_compute_slices() {
    assert_eq!(mig_compute_slices("3g.71gb"), Some(3));
    assert_eq!(mig_compute_slices("1g.18gb+me"), Some(1));
    assert_eq!(mig_compute_slices("nvidia_h200_7g.141gb"), Some(7));
    assert_eq!(mig_compute_slices("1g.5gb"), Some(1));
    for whole in ["h200", "a100", "nvidia_h100_80gb_hbm3", "tesla_v100-sxm2-16gb"] {
        assert_eq!(mig_compute_slices(whole), None, "{whole}");
    }
}

#[test]
fn a_typed_mig_gres_is_charged_its_slice_not_a_gpu() {
    // The real squeue of jobs 6 (gpu:h200:2, IDX 0-1), 7 (bare gpu:1 given an h200, IDX 2) and
    // 8 (gpu:3g.71gb:1, IDX 4); and the array whose task 2 (job 13) got both slices (IDX 4-5).
    let r = vm([None, None]);
    let a = allocations(&r, &history("squeue-typed-gpus.json"), GpuIndex::Nvml);
    let on = |d: &str| a.by_slice.get(d).map(|v| v.iter().map(|h| h.job.as_str()).collect::<Vec<_>>());
    assert_eq!(on("MIG-gi1"), Some(vec!["8"]));
    assert_eq!(on("MIG-gi2"), None);
    let gpus: Vec<(u32, &str)> =
        a.by_gpu.iter().flat_map(|(i, v)| v.iter().map(move |h| (*i, h.job.as_str()))).collect();
    assert_eq!(gpus, [(0, "6"), (1, "6"), (2, "7")], "no whole GPU for job 8");
    let policy = Policy { idle_threshold_pct: 5.0, mig_charge: MigCharge::Max };
    let charges = gpu_charges(&r, &InstituteMap::default(), policy, &a);
    let job = |id: &str| -> f64 {
        charges.iter().flat_map(|g| &g.parts).filter(|p| p.key.job == id).map(|p| p.amounts.allocated_s).sum()
    };
    // 70 s: the 3g slice is 4/8 of a GPU under "max" (35 s), never a GPU (70 s).
    assert!((job("8") - 35.0).abs() < 1e-9, "{}", job("8"));
    assert!((job("6") - 140.0).abs() < 1e-9);
    let slice8: Vec<_> = charges.iter().flat_map(|g| &g.parts).filter(|p| p.key.job == "8").collect();
    assert!(slice8.iter().all(|p| p.key.gpu == "MIG-gi1" && (p.amounts.sm_active_s - 14.0).abs() < 1e-9));
    // Both slices for the array task.
    let a = allocations(&r, &history("squeue-array.json"), GpuIndex::Nvml);
    assert_eq!((on_job(&a, "MIG-gi1"), on_job(&a, "MIG-gi2")), (Some("10_2".into()), Some("10_2".into())));
}

fn on_job(a: &crate::accounting::Allocations, uuid: &str) -> Option<String> {
    a.slice_holder(uuid).map(|h| h.job.clone())
}

#[test]
fn indices_that_do_not_fit_the_type_fall_back_to_the_processes_and_say_why() {
    let r = vm([None, Some("8")]);
    // Slurm says job 8 (gpu:3g.71gb) has IDX 4, but the only slice with its process is gi 2 (IDX 5):
    // the mapping fits, so Slurm's word holds.
    let a = allocations(&r, &history("squeue-typed-gpus.json"), GpuIndex::Nvml);
    assert_eq!(on_job(&a, "MIG-gi1").as_deref(), Some("8"));
    // A 1g gres cannot be a 3g slice; an h200 gres cannot be a slice; an index past the list names nothing.
    for (ty, idx) in [(Some("1g.18gb"), 4), (Some("h200"), 4), (Some("3g.71gb"), 0), (None, 9)] {
        assert_eq!(map_indices(&[idx], ty, &r.gpus, GpuIndex::Nvml), None, "{ty:?} IDX {idx}");
        let why = mismatch(&[idx], ty, &r.gpus, GpuIndex::Nvml).unwrap();
        assert!(why.contains(&format!("IDX {idx}")) && why.contains("AutoDetect=nvml"), "{why}");
    }
    let mut jobs = parse_squeue(&fixture("squeue-typed-gpus.json")).unwrap();
    jobs.iter_mut().find(|j| j.id == "8").unwrap().gpus[0].gpu_type = Some("1g.18gb".into());
    let mut h = History::default();
    h.take_squeue(&jobs, 1_795_959_800_000);
    let a = allocations(&r, &h, GpuIndex::Nvml);
    assert_eq!((on_job(&a, "MIG-gi1"), on_job(&a, "MIG-gi2").as_deref()), (None, Some("8")), "where its process runs");
}

#[test]
fn a_mig_run_known_by_count_takes_a_free_slice_of_its_profile() {
    let mut jobs = parse_squeue(&fixture("squeue-typed-gpus.json")).unwrap();
    let j8 = jobs.iter_mut().find(|j| j.id == "8").unwrap();
    j8.gpus[0].indices = None;
    let mut h = History::default();
    h.take_squeue(&jobs, 1_795_959_800_000);
    let a = allocations(&vm([None, None]), &h, GpuIndex::Nvml);
    assert_eq!(on_job(&a, "MIG-gi1").as_deref(), Some("8"));
    assert!(a.by_gpu.values().flatten().all(|h| h.job != "8"), "not GPU 3, the free whole one");
}

#[test]
fn auto_learns_nvml_order_from_processes_on_slices() {
    // Job 8's process on the slice at IDX 4 (gi 1); job 6's on GPU 0 and 1 = IDX 0-1.
    let mut r = vm([Some("8"), None]);
    for g in r.gpus.iter_mut().take(2) {
        g.processes = vec![Process { pid: 7, job: Some("6".into()), ..Default::default() }];
    }
    let mut m = IndexMap::new(GpuIndex::Auto);
    m.learn(&r, &history("squeue-typed-gpus.json"));
    let v = &m.votes["vm"];
    assert_eq!((v.nvml, v.minor, v.neither), (2, 0, 0), "the slice votes for neither side alone; {v:?}");
    assert!(m.problem("vm").is_none());
    assert_eq!(m.for_node("vm"), GpuIndex::Nvml);
}
