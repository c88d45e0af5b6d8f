//! The real `jazari-agent` binary against every fake NVML scenario.

mod common;
use common::*;
use jazari_wire::{EventKind, GpuSourceState, Health, Report};
use std::collections::HashSet;
use std::process::Command;

fn once(name: &str) -> Report {
    once_in(&scenario(name))
}

fn once_in(s: &Scenario) -> Report {
    let out = run_agent(s, &["once", "--node", "test-node"]);
    serde_json::from_value(reports(&out).remove(0)).expect("a valid report")
}

#[test]
fn h200_node_reports_gpus_processes_users_and_jobs() {
    let s = scenario("h200x8");
    let r = once_in(&s);
    assert_eq!(r.node, "test-node");
    assert_eq!(r.host.gpu_source, GpuSourceState::Ok);
    assert_eq!(r.host.driver_version.as_deref(), Some("570.124.06"));
    assert_eq!(r.host.cuda_version.as_deref(), Some("12.8"));
    assert_eq!(r.gpus.len(), 8);
    let uuids: HashSet<_> = r.gpus.iter().map(|g| g.uuid.clone().unwrap()).collect();
    assert_eq!(uuids.len(), 8, "distinct UUIDs");
    let g0 = &r.gpus[0];
    assert_eq!(g0.name.as_deref(), Some("NVIDIA H200"));
    assert_eq!(g0.mem_total_bytes, Some(144384 * 1024 * 1024));
    assert_eq!(g0.pci_bus_id.as_deref(), Some("00000000:18:00.0"));
    assert_eq!(g0.util_gpu_pct, Some(97));
    assert!(g0.energy_mj.unwrap() >= 8_400_000_000);
    // H200 SXM has no fans: NOT_SUPPORTED leaves the field absent.
    assert_eq!(g0.fan_pct, None);
    assert_eq!(r.gpus[3].ecc.as_ref().unwrap().aggregate_corrected, Some(2));

    // Processes carry their owner and job, found through the real /proc.
    let p0 = &g0.processes[0];
    assert_eq!(p0.job, Some(s.job("4711")));
    if is_root() {
        // Started as uid 2001, which has no passwd entry: the job's user names it.
        assert_eq!(p0.user.as_deref(), Some("alice"));
        assert_eq!(p0.uid, Some(2001));
        let users: HashSet<_> = r.gpus.iter().flat_map(|g| &g.processes).filter_map(|p| p.user.clone()).collect();
        assert_eq!(users, HashSet::from(["alice".to_string(), "bob".to_string()]));
    } else {
        skip("not root: the scenario's processes run as this user, so per-user names are not checked");
        assert!(p0.user.is_some(), "the owner is named through the passwd database");
    }
    // dave's notebook runs outside Slurm: no job.
    let g5 = &r.gpus[5];
    assert_eq!(g5.processes.len(), 2);
    assert_eq!(g5.processes.iter().filter(|p| p.job.is_none()).count(), 1);

    // Jobs, including carol's, which holds GPUs 6-7 and runs nothing on them
    // (other jobs on this host, if any, are not the scenario's).
    let jobs = s.own_jobs(&r.jobs);
    let ids: Vec<_> = jobs.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, [s.job("4711"), s.job("4712"), s.job("4713")]);
    let carol = jobs[2];
    assert_eq!(carol.account.as_deref(), Some("climate"));
    assert_eq!(carol.user.as_deref(), Some("carol"));
    assert_eq!(carol.gpu_ids, Some(vec![6, 7]));
    assert!(r.gpus[6].processes.is_empty() && r.gpus[7].processes.is_empty());
    assert_eq!(jobs[0].processes, 2);
}

#[test]
fn without_nvml_the_host_is_still_reported_and_said_once() {
    let out = Command::new(agent_bin())
        .args(["run", "--stdout", "--count", "3", "--interval", "50ms"])
        .env("JAZARI_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .output()
        .unwrap();
    let rs = reports(&out);
    assert_eq!(rs.len(), 3);
    for r in &rs {
        let r: Report = serde_json::from_value(r.clone()).unwrap();
        assert!(r.gpus.is_empty());
        assert!(r.host.mem_total_bytes.unwrap() > 0);
        match &r.host.gpu_source {
            GpuSourceState::Unavailable(why) => assert!(why.contains("/nonexistent/libnvidia-ml.so.1"), "{why}"),
            other => panic!("gpu_source {other:?}"),
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("NVML unavailable").count(), 1, "said once, not per interval:\n{stderr}");
    assert_eq!(rs.iter().map(|r| r["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn node_without_gpus_says_so() {
    let dir = std::env::temp_dir().join(format!("jazari-nogpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = dir.join("none.json");
    std::fs::write(&s, r#"{"description": "NVML loads, no GPU", "gpus": []}"#).unwrap();
    let out = run_agent(&s, &["once"]);
    let r: Report = serde_json::from_value(reports(&out).remove(0)).unwrap();
    assert_eq!(r.host.gpu_source, GpuSourceState::NoGpus);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no GPU"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mig_mode_is_reported_per_gpu() {
    let r = once("mig");
    assert_eq!(r.gpus[0].mig_enabled, Some(true));
    assert_eq!(r.gpus[1].mig_enabled, Some(false));
}

#[test]
fn unsupported_fan_and_ecc_are_absent_not_zero() {
    let r = once("unsupported-fan-ecc");
    let (a, b) = (&r.gpus[0], &r.gpus[1]);
    assert_eq!(a.name.as_deref(), Some("NVIDIA L40S"));
    assert_eq!(a.fan_pct, None);
    assert_eq!(a.ecc_enabled, None);
    assert_eq!(a.ecc, None);
    let json = serde_json::to_value(a).unwrap();
    assert!(json.get("fan_pct").is_none() && json.get("ecc").is_none());
    // Its neighbour has a fan and reports it.
    assert_eq!(b.fan_pct, Some(vec![34]));
    assert_eq!(a.temperature_c, Some(31));
}

#[test]
fn a_gpu_lost_mid_run_is_reported_lost_and_the_agent_carries_on() {
    let out = run_agent(&scenario("gpu-lost"), &["run", "--stdout", "--count", "3", "--interval", "100ms"]);
    let rs: Vec<Report> = reports(&out).into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    assert_eq!(rs.len(), 3);
    let uuid = rs[0].gpus[1].uuid.clone().unwrap();
    assert_eq!(rs[0].gpus[1].health, Health::Ok);
    for r in &rs[1..] {
        let g = &r.gpus[1];
        assert_eq!(g.health, Health::Lost);
        assert_eq!(g.uuid.as_deref(), Some(uuid.as_str()), "a lost GPU keeps its identity");
        assert_eq!(g.util_gpu_pct, None);
        assert_eq!(r.gpus[0].health, Health::Ok);
    }
    let lost_events: Vec<_> = rs.iter().flat_map(|r| &r.events).filter(|e| e.kind == EventKind::GpuLost).collect();
    assert_eq!(lost_events.len(), 1, "one event at the transition");
    assert_eq!(lost_events[0].gpu_uuid.as_deref(), Some(uuid.as_str()));
}

#[test]
fn xid_79_arrives_as_an_event_with_its_gpu() {
    let out = run_agent(&scenario("xid79"), &["run", "--stdout", "--count", "3", "--interval", "300ms"]);
    let rs: Vec<Report> = reports(&out).into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    let xids: Vec<_> = rs.iter().flat_map(|r| &r.events).filter(|e| matches!(e.kind, EventKind::Xid { .. })).collect();
    assert_eq!(xids.len(), 1, "{xids:?}");
    assert_eq!(xids[0].kind, EventKind::Xid { code: 79 });
    assert_eq!(xids[0].gpu_uuid, rs[0].gpus[1].uuid);
}

#[test]
fn help_documents_flags_and_environment() {
    let out = Command::new(agent_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--nvml-lib",
        "JAZARI_NVML_LIB",
        "--node",
        "once",
        "run",
        "spool",
        "JAZARI_LOG",
        "JAZARI_CA_FILE",
        "HTTPS_PROXY",
    ] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let out = Command::new(agent_bin()).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["--ca-file", "JAZARI_CA_FILE", "--cert", "JAZARI_CERT", "--key", "JAZARI_KEY", "--dead-letter-max-mib"]
    {
        assert!(help.contains(word), "run --help lacks {word}:\n{help}");
    }
    let out = Command::new(agent_bin()).args(["spool", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("inspect") && help.contains("replay"), "{help}");
    let out = Command::new(agent_bin()).args(["once", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--pretty"));
}

#[test]
fn a_broken_scenario_falls_back_to_host_only() {
    let dir = std::env::temp_dir().join(format!("jazari-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = dir.join("broken.json");
    std::fs::write(&s, "{ not json").unwrap();
    let out = run_agent(&s, &["once"]);
    let r: Report = serde_json::from_value(reports(&out).remove(0)).unwrap();
    assert!(matches!(r.host.gpu_source, GpuSourceState::Unavailable(_)));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_example_agent_config_is_read_and_a_wrong_key_is_named() {
    let example = workspace_root().join("config/agent.example.toml");
    let out = common::process::agent_command()
        .args(["run", "--stdout", "--count", "1", "--config"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(reports(&out).len(), 1);
    let dir = std::env::temp_dir().join(format!("jazari-agent-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("agent.toml");
    std::fs::write(&bad, "collector = \"https://c:9470\"\nca_flie = \"/etc/ca.pem\"\n").unwrap();
    let out = common::process::agent_command().args(["run", "--stdout", "--config"]).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("agent.toml") && stderr.contains("ca_flie"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn other_jobs_on_the_host_stay_out_of_a_scoped_agent_and_in_a_real_one() {
    // A stray job on this host (another test, another user's job), not started by the agent.
    let stray_id = (unique() % 1_000_000_000 + 1).to_string();
    let mut stray = Command::new("sleep")
        .arg("30")
        .env("SLURM_JOB_ID", &stray_id)
        .env("SLURM_JOB_USER", "stray")
        .spawn()
        .expect("start a stray process");
    let s = scenario("h200x8");
    let ids = |scope: &str| -> Vec<String> {
        let out = Command::new(agent_bin())
            .args(["once", "--node", "test-node", "--proc-scope", scope])
            .env("JAZARI_NVML_LIB", fake_lib())
            .env("FAKE_NVML_CONFIG", &*s)
            .output()
            .expect("run jazari-agent");
        let r: Report = serde_json::from_value(reports(&out).remove(0)).unwrap();
        r.jobs.into_iter().map(|j| j.id).collect()
    };
    let scoped = ids("descendants");
    let all = ids("all");
    let _ = stray.kill();
    let _ = stray.wait();
    assert!(!scoped.contains(&stray_id), "{scoped:?}");
    assert!(all.contains(&stray_id), "a real node's agent sees every job: {all:?}");
    // The scenario's own jobs are there either way.
    for id in s.jobs.values() {
        assert!(scoped.contains(id) && all.contains(id), "{id} in {scoped:?} and {all:?}");
    }
}
