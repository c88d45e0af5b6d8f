//! GPM activity and MIG slices through the real `jazari-agent` binary and the fake NVML.

mod common;
use common::*;
use jazari_wire::{Gpm, GpuSourceState, Limits, MigDevice, Report, validate};
use serde_json::Value;
use std::collections::HashSet;

const MIB: u64 = 1024 * 1024;

fn once(name: &str) -> (Report, Value) {
    once_in(&scenario(name), name)
}

fn once_in(s: &Scenario, name: &str) -> (Report, Value) {
    let out = run_agent(s, &["once", "--node", "test-node"]);
    let raw = reports(&out).remove(0);
    let r: Report = serde_json::from_value(raw.clone()).expect("a valid report");
    // Every report the agent writes passes the collector's limits.
    let lim = Limits { now_ms: jazari_wire::now_ms(), max_interval_ms: 3_600_000, oldest_ms: 0, max_users: 4096 };
    validate(&r, 0, lim).unwrap_or_else(|e| panic!("{name}: {e}"));
    (r, raw)
}

fn scenario_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(scenario_file(name)).unwrap()).unwrap()
}

/// Checks every GPM value against the scenario's, within the agent's rounding
/// (two decimals); a metric the scenario leaves out must be absent.
fn assert_gpm(got: Option<&Gpm>, want: &Value, what: &str) {
    let got = got.unwrap_or_else(|| panic!("{what}: no gpm"));
    let fields = [
        ("sm_active_pct", got.sm_active_pct),
        ("sm_occupancy_pct", got.sm_occupancy_pct),
        ("tensor_active_pct", got.tensor_active_pct),
        ("dram_active_pct", got.dram_active_pct),
        ("fp64_active_pct", got.fp64_active_pct),
    ];
    for (name, v) in fields {
        match (want.get(name).and_then(Value::as_f64), v) {
            (Some(w), Some(v)) => assert!((w - v).abs() <= 0.005, "{what}.{name}: {v}, scenario {w}"),
            (None, None) => {}
            (w, v) => panic!("{what}.{name}: {v:?}, scenario {w:?}"),
        }
    }
}

#[test]
fn gpm_values_are_the_scenarios_and_differ_from_utilisation() {
    let sc = scenario("h200-gpm");
    let (r, _) = once_in(&sc, "h200-gpm");
    let s = scenario_json("h200-gpm");
    assert_eq!(r.gpus.len(), 8);
    for (k, g) in r.gpus.iter().enumerate() {
        assert_gpm(g.gpm.as_ref(), &s["gpus"][k]["gpm"], &format!("gpus[{k}]"));
    }
    // NVML's duty cycle says GPU 0 is full; SM activity says it is mostly idle.
    let g0 = &r.gpus[0];
    assert_eq!(g0.util_gpu_pct, Some(100));
    let gpm = g0.gpm.as_ref().unwrap();
    assert_eq!((gpm.sm_active_pct, gpm.tensor_active_pct), (Some(18.0), Some(0.0)));
    // A metric NVML does not answer is absent, a measured zero is zero.
    assert_eq!(r.gpus[7].gpm.as_ref().unwrap().fp64_active_pct, None);
    assert_eq!(r.gpus[6].gpm.as_ref().unwrap().fp64_active_pct, Some(0.0));
    // Processes and jobs are those of h200x8.
    assert_eq!(g0.processes[0].job, Some(sc.job("4711")));
    let ids: Vec<_> = sc.own_jobs(&r.jobs).iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, [sc.job("4711"), sc.job("4712"), sc.job("4713")]);
}

#[test]
fn gpm_is_absent_not_zero_where_the_gpu_has_none() {
    for name in ["h200x8", "mig", "unsupported-fan-ecc", "xid79", "gpu-lost"] {
        let (r, raw) = once(name);
        assert!(!r.gpus.is_empty(), "{name}");
        for (k, g) in raw["gpus"].as_array().unwrap().iter().enumerate() {
            assert!(g.get("gpm").is_none(), "{name}: gpus[{k}] has gpm: {}", g["gpm"]);
            assert!(g.get("mig_devices").is_none(), "{name}: gpus[{k}] has mig_devices");
        }
    }
    // MIG mode without MIG devices: no slices (and no error).
    let (r, _) = once("mig");
    assert_eq!(r.gpus[0].mig_enabled, Some(true));
    assert!(r.gpus[0].mig_devices.is_empty());
}

#[test]
fn in_run_each_report_carries_the_mean_since_the_previous_one() {
    let out = run_agent(&scenario("h200-gpm"), &["run", "--stdout", "--count", "3", "--interval", "250ms"]);
    let rs: Vec<Report> = reports(&out).into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    assert_eq!(rs.len(), 3);
    // The first report only takes the baselines.
    assert!(rs[0].gpus.iter().all(|g| g.gpm.is_none()), "first report: {:?}", rs[0].gpus[0].gpm);
    let s = scenario_json("h200-gpm");
    for r in &rs[1..] {
        for (k, g) in r.gpus.iter().enumerate() {
            assert_gpm(g.gpm.as_ref(), &s["gpus"][k]["gpm"], &format!("seq {} gpus[{k}]", r.seq));
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("fake-nvml:"), "{stderr}");
}

#[test]
fn samples_closer_than_nvml_allows_are_not_compared() {
    // Reports 30 ms apart: NVML wants GPM samples more than 100 ms apart, and
    // the fake refuses (and says so) when asked sooner.
    let out = run_agent(&scenario("h200-gpm"), &["run", "--stdout", "--count", "4", "--interval", "30ms"]);
    let rs = reports(&out);
    assert_eq!(rs.len(), 4);
    for r in &rs {
        let r: Report = serde_json::from_value(r.clone()).unwrap();
        assert!(r.gpus.iter().all(|g| g.gpm.is_none()), "seq {}: {:?}", r.seq, r.gpus[0].gpm);
        assert_eq!(r.gpus[0].util_gpu_pct, Some(100), "the rest of the report is there");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("fake-nvml:"), "the agent asked NVML for GPM metrics too soon:\n{stderr}");
}

#[test]
fn mig_slices_have_their_own_identity_slices_memory_and_processes() {
    let sc = scenario("h200-mig");
    let (r, _) = once_in(&sc, "h200-mig");
    let s = scenario_json("h200-mig");
    assert_eq!(r.gpus.len(), 3);
    let all: Vec<&MigDevice> = r.gpus.iter().flat_map(|g| &g.mig_devices).collect();
    assert_eq!(all.len(), 11);
    let uuids: HashSet<&str> = all.iter().map(|d| d.uuid.as_str()).collect();
    assert_eq!(uuids.len(), 11, "distinct UUIDs");
    assert!(uuids.iter().all(|u| u.starts_with("MIG-")), "{uuids:?}");

    // GPU 0: seven 1g.18gb: 1 of 7 compute slices, 1 of 8 memory slices each.
    let g0 = &r.gpus[0];
    assert_eq!(g0.mig_enabled, Some(true));
    assert_eq!(g0.mig_devices.len(), 7);
    for (k, d) in g0.mig_devices.iter().enumerate() {
        assert_eq!(d.uuid, s["gpus"][0]["mig_devices"][k]["uuid"].as_str().unwrap());
        assert_eq!((d.gpu_instance_id, d.compute_instance_id), (Some(7 + k as u32), Some(0)));
        assert_eq!((d.slices_compute, d.slices_memory), (Some(1), Some(1)), "1g.18gb slice {k}");
        assert_eq!(d.mem_total_bytes, Some(16384 * MIB));
        assert_gpm(d.gpm.as_ref(), &s["gpus"][0]["mig_devices"][k]["gpm"], &format!("gpus[0].mig_devices[{k}]"));
    }
    // NVML has no utilisation and this GPU no whole-GPU GPM in MIG mode: absent.
    assert_eq!((g0.util_gpu_pct, g0.gpm.as_ref()), (None, None));

    // GPU 1: 3g.71gb + 2g.35gb + 1g.18gb + 1g.18gb; MIG slots 4-6 are empty and skipped.
    let g1 = &r.gpus[1];
    let shape: Vec<_> = g1.mig_devices.iter().map(|d| (d.slices_compute, d.slices_memory)).collect();
    assert_eq!(shape, [(Some(3), Some(4)), (Some(2), Some(2)), (Some(1), Some(1)), (Some(1), Some(1))]);
    assert_eq!(g1.mig_devices[0].mem_total_bytes, Some(66560 * MIB));
    assert_eq!(g1.mig_devices[0].mem_used_bytes, Some(60400 * MIB));
    assert_eq!(g1.mig_devices[0].gpu_instance_id, Some(2));
    assert!(g1.mig_devices[3].processes.is_empty(), "an idle slice lists no process");

    // GPU 2 is whole: no slices, its own GPM.
    let g2 = &r.gpus[2];
    assert_eq!(g2.mig_enabled, Some(false));
    assert!(g2.mig_devices.is_empty());
    assert_gpm(g2.gpm.as_ref(), &s["gpus"][2]["gpm"], "gpus[2]");

    // Slice processes are attributed like whole-GPU ones: job, and user where
    // the scenario's uids are real (root).
    let who = |d: &MigDevice| -> Vec<(Option<String>, Option<String>)> {
        d.processes.iter().map(|p| (p.user.clone(), p.job.clone())).collect()
    };
    let job = |d: &MigDevice| -> Vec<Option<String>> { d.processes.iter().map(|p| p.job.clone()).collect() };
    let some = |s: &str| Some(sc.job(s));
    let name = |s: &str| Some(s.to_string());
    assert_eq!(job(&g0.mig_devices[0]), [some("5201")]);
    assert_eq!(job(&g0.mig_devices[1]), [some("5201")]);
    assert_eq!(job(&g0.mig_devices[2]), [some("5202")]);
    assert_eq!(job(&g0.mig_devices[3]), [some("5203")]);
    assert_eq!(job(&g0.mig_devices[4]), [None], "dave's notebook runs outside Slurm");
    assert_eq!(job(&g0.mig_devices[5]), [some("5204")]);
    assert_eq!(job(&g1.mig_devices[0]), [some("5205"), some("5205")]);
    assert_eq!(job(&g1.mig_devices[1]), [some("5206")]);
    assert_eq!(job(&g1.mig_devices[2]), [some("5207")]);
    assert!(g0.mig_devices[0].processes[0].gpu_mem_bytes.is_some());
    if is_root() {
        assert_eq!(who(&g0.mig_devices[0]), [(name("alice"), some("5201"))]);
        assert_eq!(who(&g0.mig_devices[2]), [(name("bob"), some("5202"))]);
        assert_eq!(who(&g1.mig_devices[1]), [(name("grace"), some("5206"))]);
        assert_eq!(who(&g1.mig_devices[2]), [(name("alice"), some("5207"))]);
        assert_eq!(g0.mig_devices[3].processes[0].uid, Some(3103));
    } else {
        skip("not root: the scenario's processes run as this user, so per-user names are not checked");
        assert!(g0.mig_devices[0].processes[0].user.is_some());
    }
    // As NVML does for a privileged caller, the MIG-mode GPU lists every slice's processes too.
    let pids = |ps: &[jazari_wire::Process]| ps.iter().map(|p| p.pid).collect::<HashSet<_>>();
    let on_slices: HashSet<u32> = g0.mig_devices.iter().flat_map(|d| pids(&d.processes)).collect();
    assert_eq!(pids(&g0.processes), on_slices);
    // Jobs on slices are jobs of the node.
    let ids: Vec<_> = sc.own_jobs(&r.jobs).iter().map(|j| j.id.clone()).collect();
    let want: Vec<_> = (5201..=5208).map(|n| sc.job(&n.to_string())).collect();
    assert_eq!(ids, want);
}

#[test]
fn scenario_mistakes_about_gpm_and_mig_are_refused() {
    let dir = std::env::temp_dir().join(format!("jazari-gpm-mig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gpu = |extra: &str| {
        format!(
            r#"{{"gpus": [{{"name": "NVIDIA A100", "uuid": "GPU-1", "pci_bus_id": "00000000:18:00.0",
               "memory_total_mib": 81920 {extra}}}]}}"#
        )
    };
    let cases = [
        ("unknown-gpm-key", gpu(r#", "gpm": {"sm_active": 5}"#)),
        ("gpm-before-hopper", gpu(r#", "compute_capability": "8.0", "gpm": {"sm_active_pct": 5}"#)),
        ("gpm-over-100", gpu(r#", "gpm": {"sm_active_pct": 101}"#)),
        ("mig-off", gpu(r#", "mig_devices": [{"uuid": "MIG-1", "profile": "1g.18gb", "gpu_instance_id": 7}]"#)),
        (
            "unknown-profile",
            gpu(
                r#", "mig_enabled": true, "mig_devices": [{"uuid": "MIG-1", "profile": "1g.5gb", "gpu_instance_id": 7}]"#,
            ),
        ),
    ];
    for (name, text) in cases {
        let s = dir.join(format!("{name}.json"));
        std::fs::write(&s, text).unwrap();
        let out = run_agent(&s, &["once"]);
        let r: Report = serde_json::from_value(reports(&out).remove(0)).unwrap();
        assert!(matches!(r.host.gpu_source, GpuSourceState::Unavailable(_)), "{name}: {:?}", r.host.gpu_source);
        assert!(String::from_utf8_lossy(&out.stderr).contains("fake-nvml"), "{name}: the fake says why");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mig_slices_keep_their_facts_and_get_gpm_from_report_to_report() {
    let sc = scenario("h200-mig");
    let out = run_agent(&sc, &["run", "--stdout", "--count", "3", "--interval", "150ms"]);
    let rs: Vec<Report> = reports(&out).into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    assert_eq!(rs.len(), 3);
    let facts = |r: &Report| -> Vec<_> {
        r.gpus
            .iter()
            .flat_map(|g| &g.mig_devices)
            .map(|d| (d.uuid.clone(), d.gpu_instance_id, d.compute_instance_id, d.slices_compute, d.slices_memory))
            .collect()
    };
    assert_eq!(facts(&rs[0]).len(), 11);
    assert_eq!(facts(&rs[1]), facts(&rs[0]), "read once per UUID, then kept");
    assert_eq!(facts(&rs[2]), facts(&rs[0]));
    // GPM per GPU instance from the second report on; the first takes the baselines.
    assert!(rs[0].gpus.iter().flat_map(|g| &g.mig_devices).all(|d| d.gpm.is_none()));
    let s = scenario_json("h200-mig");
    for r in &rs[1..] {
        for (i, g) in r.gpus.iter().enumerate() {
            for (k, d) in g.mig_devices.iter().enumerate() {
                let what = format!("seq {} gpus[{i}].mig_devices[{k}]", r.seq);
                assert_gpm(d.gpm.as_ref(), &s["gpus"][i]["mig_devices"][k]["gpm"], &what);
            }
        }
        assert_eq!(r.gpus[0].mig_devices[2].processes[0].job, Some(sc.job("5202")));
    }
}
