//! The Slurm adapter against a stand-in `squeue` (a file `cat` prints, in
//! Slurm 22.05's JSON shape) and the real agent with the fake NVML, over
//! real HTTP: a queue of 10,000 jobs, Slurm as the authority for allocation
//! (stray job ids, processes outside Slurm, unix-group institutes, GPU
//! numbering learned per node), and replays after an outage.

mod common;
use common::slurm::*;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Peak and current resident memory of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    (kb("VmHWM:") / 1024.0, kb("VmRSS:") / 1024.0)
}

fn allocated(rows: &std::collections::BTreeMap<String, Value>, key: &str) -> f64 {
    rows.get(key).and_then(|r| r["allocated_gpu_seconds"].as_f64()).unwrap_or(0.0)
}

#[test]
fn a_queue_of_10000_jobs_is_polled_whole_and_charged() {
    let dir = TempDir::new("squeue-big");
    let file = dir.path().join("squeue.json");
    let now = now_s();
    let running = unique_job_id(0);
    let mut jobs = vec![FakeJob::running(running, "climate", "carol", "n-big", &[0, 1], now - 300)];
    for k in 1..10_000u64 {
        let acct = ["nlp-lab", "vision-lab", "climate", "robotics"][k as usize % 4];
        jobs.push(FakeJob::pending(running + k, acct, "alice", 1));
    }
    // A pending array of 3 tasks asking 2 GPUs each, and a typed request counted once.
    jobs[1].array_tasks = Some("3-5".into());
    jobs[1].per_node = "gres:gpu:2".into();
    jobs[1].account = "nlp-lab".into();
    jobs[2].per_node = "gres:gpu:h200:1".into();
    jobs[2].account = "nlp-lab".into();
    let text = squeue_json(&jobs);
    write_atomic(&file, &text);
    let c = Collector::start_with_config(&config_with_standin(&file, "2s", &[]));
    let pid = c.proc.as_ref().unwrap().0.id();
    let spool = TempDir::new("spool");
    let mut agent = Proc(
        agent_run(&c.url, &c.node_token_file, spool.path(), "n-big", &["--interval", "500ms"])
            .env("FAKE_NVML_CONFIG", scenario("h200x8"))
            .spawn()
            .unwrap(),
    );
    let mut s = Value::Null;
    wait_until("the collector to hold the whole queue", Duration::from_secs(60), || {
        s = c.get("/api/v1/scheduler");
        s["jobs"].as_array().is_some_and(|j| j.len() == 10_000)
    });
    assert!(s["error"].is_null(), "{}", s["error"]);
    // Queued GPUs per institute: every array task, a typed request once.
    let q = &s["queued_gpus"];
    let count = |m: usize| (3..10_000usize).filter(|k| k % 4 == m).count() as u64;
    assert_eq!(q["ibn-sina"].as_u64().unwrap(), count(0) + 3 * 2 + 1, "{q}");
    assert_eq!(q["al-haytham"].as_u64().unwrap(), count(1), "{q}");
    assert_eq!(q["al-biruni"].as_u64().unwrap(), count(2), "{q}");
    assert_eq!(q["al-jazari"].as_u64().unwrap(), count(3), "{q}");
    let array = s["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"].as_str() == Some((running + 1).to_string().as_str()))
        .unwrap();
    assert_eq!(array["display_id"], format!("{}_[3-5]", running + 1));
    assert_eq!(array["pending_tasks"], 3);

    // The running job's account reaches the ledger, through Slurm (the h200x8
    // scenario's processes carry other job ids: they are unscheduled here).
    wait_until("the running job charged", Duration::from_secs(30), || {
        allocated(&c.usage("job"), &running.to_string()) > 0.0
    });
    let by_inst = c.usage("institute");
    assert!(allocated(&by_inst, "al-biruni") > 0.0, "{by_inst:?}");
    let n: Value = c.get("/api/v1/nodes/n-big");
    assert_eq!(n["gpus"][0]["allocated_to"]["job"], running.to_string(), "{n}");
    assert_eq!(n["gpus"][0]["allocated_to"]["account"], "climate");

    // Figures for the record: how long a poll takes, how much it reads, the collector's memory.
    let polls = &c.get("/api/v1/scheduler")["polls"];
    let (peak, rss) = memory_mib(pid);
    eprintln!(
        "10000-job queue: {} bytes per poll, last poll {:.3} s, {} polls; collector peak RSS {peak:.0} MiB, now {rss:.0} MiB",
        text.len(),
        polls["last_duration_s"].as_f64().unwrap(),
        polls["polls"]
    );
    assert!(polls["last_bytes"].as_u64().unwrap() as usize == text.len());
    // The metrics say the same.
    let metrics = metrics(&c.url);
    assert!(metrics.contains("jazari_scheduler_jobs 10000"), "{metrics}");
    assert!(metrics.contains("jazari_scheduler_poll_seconds"));
    assert!(metrics.contains("jazari_scheduler_poll_duration_seconds_count "), "{metrics}");
    assert!(metrics.contains(&format!("jazari_scheduler_output_bytes {}", text.len())));
    let _ = agent.0.kill();
}

/// A node whose NVML order differs from its minor numbers, with Slurm
/// numbering GPUs by minor (gres.conf listing /dev/nvidia0..3):
/// NVML 0 = minor 1, NVML 1 = minor 0, NVML 2 = minor 3, NVML 3 = minor 2.
const MINORS: [u32; 4] = [1, 0, 3, 2];

#[test]
fn slurm_decides_who_holds_each_gpu() {
    let dir = TempDir::new("authority");
    let file = dir.path().join("squeue.json");
    let node = "n-authority";
    let now = now_s();
    let (a, b, stray, queued) = (unique_job_id(10), unique_job_id(11), unique_job_id(12), unique_job_id(13));
    // Job a (nlp-lab) has IDX 0 and 2 = minors 0, 2 = NVML 1, 3; job b has IDX 1
    // = minor 1 = NVML 0, and is known only by its unix group (robotics: al-jazari).
    let jobs = vec![
        FakeJob::running(a, "nlp-lab", "alice", node, &[0, 2], now - 60),
        FakeJob::running(b, "physics-x", "erin", node, &[1], now - 60).group("robotics"),
        FakeJob::pending(queued, "physics-x", "erin", 2).group("robotics"),
    ];
    write_atomic(&file, &squeue_json(&jobs));
    let (a_s, b_s, stray_s) = (a.to_string(), b.to_string(), stray.to_string());
    let ea = [("SLURM_JOB_ID", a_s.as_str()), ("SLURM_JOB_GPUS", "0,2")];
    let eb = [("SLURM_JOB_ID", b_s.as_str()), ("SLURM_JOB_GPUS", "1")];
    let es = [("SLURM_JOB_ID", stray_s.as_str()), ("SLURM_JOB_GPUS", "3")];
    // a's ranks run on NVML 1 and 3; b holds NVML 0 but runs no GPU process,
    // and a process outside Slurm runs there; a stray process claims a job
    // Slurm does not run, on NVML 2 (free).
    let scen = scenario_json(
        &[
            FakeGpu { minor: MINORS[0], util: 40, procs: &["outsider"] },
            FakeGpu { minor: MINORS[1], util: 90, procs: &["a0"] },
            FakeGpu { minor: MINORS[2], util: 70, procs: &["stray"] },
            FakeGpu { minor: MINORS[3], util: 90, procs: &["a1"] },
        ],
        &[("a0", 2001, &ea), ("a1", 2001, &ea), ("b-idle", 2005, &eb), ("stray", 2003, &es), ("outsider", 2004, &[])],
    );
    let scen_file = dir.path().join("node.json");
    std::fs::write(&scen_file, scen).unwrap();
    let c = Collector::start_with_config(&config_with_standin(&file, "1s", &[]));
    let spool = TempDir::new("spool");
    let status = agent_run(&c.url, &c.node_token_file, spool.path(), node, &["--interval", "500ms", "--count", "8"])
        .env("FAKE_NVML_CONFIG", &scen_file)
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("every report charged", Duration::from_secs(20), || {
        c.get("/api/v1/scheduler")["polls"]["pending_reports"] == 0
    });

    // Allocation as Slurm says, under the numbering learned from where a's processes run.
    let n: Value = c.get(&format!("/api/v1/nodes/{node}"));
    let held_by = |i: usize| n["gpus"][i]["allocated_to"]["job"].as_str().map(str::to_string);
    assert_eq!(held_by(0).as_deref(), Some(b_s.as_str()), "{n}");
    assert_eq!(n["gpus"][0]["allocated_to"]["institute"], "al-jazari", "by unix group");
    assert_eq!(held_by(1).as_deref(), Some(a_s.as_str()));
    assert_eq!(held_by(2), None, "the stray process's claim gives it no GPU");
    assert_eq!(held_by(3).as_deref(), Some(a_s.as_str()));

    let jobs = c.usage("job");
    let (ja, jb) = (allocated(&jobs, &a_s), allocated(&jobs, &b_s));
    assert!(ja > 0.0 && (ja - 2.0 * jb).abs() < 1e-6, "a holds 2 GPUs, b 1: {ja} {jb}");
    assert_eq!(allocated(&jobs, &stray_s), 0.0, "a job Slurm does not run is never charged: {jobs:?}");
    let inst = c.usage("institute");
    assert!((allocated(&inst, "al-jazari") - jb).abs() < 1e-6, "{inst:?}");
    assert!(allocated(&inst, "ibn-sina") > 0.0);
    // The stray process's GPU use is unscheduled, not anyone's allocation.
    let unscheduled: f64 = inst.values().map(|r| r["unscheduled_gpu_seconds"].as_f64().unwrap_or(0.0)).sum();
    assert!((unscheduled - jb).abs() < 1e-6, "one GPU used outside any Slurm allocation: {unscheduled} vs {jb}");

    // Queue pressure by group.
    let s = c.get("/api/v1/scheduler");
    assert_eq!(s["queued_gpus"]["al-jazari"], 2, "{s}");

    // Findings: the stray claim and the outsider; no numbering problem.
    let f = c.get("/api/v1/findings");
    let kinds: Vec<(&str, &str)> = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["kind"].as_str().unwrap(), x["job"].as_str().unwrap_or("")))
        .collect();
    assert!(kinds.contains(&("unknown_job", stray_s.as_str())), "{f}");
    assert!(kinds.iter().any(|k| k.0 == "foreign_process"), "{f}");
    assert!(!kinds.iter().any(|k| k.0 == "gpu_index_mismatch" || k.0 == "wrong_gpu"), "{f}");
}

#[test]
fn a_configured_numbering_that_disagrees_is_a_finding() {
    let dir = TempDir::new("numbering");
    let file = dir.path().join("squeue.json");
    let node = "n-numbering";
    let a = unique_job_id(20);
    write_atomic(&file, &squeue_json(&[FakeJob::running(a, "nlp-lab", "alice", node, &[0], now_s() - 60)]));
    let a_s = a.to_string();
    let ea = [("SLURM_JOB_ID", a_s.as_str()), ("SLURM_JOB_GPUS", "0")];
    // a's process runs on NVML 1, which is minor 0: Slurm numbers by minor.
    let scen = scenario_json(
        &[FakeGpu { minor: 1, util: 0, procs: &[] }, FakeGpu { minor: 0, util: 80, procs: &["a0"] }],
        &[("a0", 2001, &ea)],
    );
    let scen_file = dir.path().join("node.json");
    std::fs::write(&scen_file, scen).unwrap();
    let cfg = config_with_standin(&file, "1s", &[("gpu_index = \"auto\"", "gpu_index = \"nvml\"")]);
    let c = Collector::start_with_config(&cfg);
    let spool = TempDir::new("spool");
    let mut agent = Proc(
        agent_run(&c.url, &c.node_token_file, spool.path(), node, &["--interval", "500ms"])
            .env("FAKE_NVML_CONFIG", &scen_file)
            .spawn()
            .unwrap(),
    );
    let mut f = Value::Null;
    wait_until("a numbering finding", Duration::from_secs(20), || {
        f = c.get("/api/v1/findings");
        f["findings"].as_array().unwrap().iter().any(|x| x["kind"] == "gpu_index_mismatch")
    });
    let m = f["findings"].as_array().unwrap().iter().find(|x| x["kind"] == "gpu_index_mismatch").unwrap();
    assert!(m["message"].as_str().unwrap().contains("minor"), "{m}");
    let _ = agent.0.kill();
}

#[test]
fn reports_replayed_after_an_outage_meet_the_jobs_of_their_time() {
    let dir = TempDir::new("replay");
    let file = dir.path().join("squeue.json");
    let node = "n-replay";
    let (j, k) = (unique_job_id(30), unique_job_id(31));
    let t0 = now_s();
    write_atomic(&file, &squeue_json(&[FakeJob::running(j, "climate", "carol", node, &[0], t0 - 30)]));
    let scen =
        scenario_json(&[FakeGpu { minor: 0, util: 0, procs: &[] }, FakeGpu { minor: 1, util: 0, procs: &[] }], &[]);
    let scen_file = dir.path().join("node.json");
    std::fs::write(&scen_file, scen).unwrap();
    let mut c = Collector::start_with_config(&config_with_standin(&file, "1s", &[]));
    let spool = TempDir::new("spool");
    let started = Instant::now();
    let agent_start_ms = now_ms();
    let mut agent = Proc(
        agent_run(&c.url, &c.node_token_file, spool.path(), node, &["--interval", "500ms", "--count", "30"])
            .env("FAKE_NVML_CONFIG", &scen_file)
            .spawn()
            .unwrap(),
    );
    // The agent's first report starts between its spawn and its arrival (a loaded host
    // may take a while to start it).
    let reports = |c: &Collector| {
        let cov = c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01");
        cov["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .map_or(0, |n| n["reports"].as_u64().unwrap())
    };
    wait_until("the agent's first report", Duration::from_secs(20), || reports(&c) > 0);
    let first_seen_ms = now_ms();
    wait_until("Slurm's job seen", Duration::from_secs(10), || {
        c.get("/api/v1/scheduler")["jobs"].as_array().is_some_and(|j| !j.is_empty())
    });
    std::thread::sleep(Duration::from_secs(2));
    // The collector goes away; while it is away, j ends and k starts.
    c.stop();
    std::thread::sleep(Duration::from_secs(3));
    let j_end = now_s();
    std::thread::sleep(Duration::from_secs(3));
    let k_start = now_s();
    write_atomic(
        &file,
        &squeue_json(&[
            FakeJob::running(j, "climate", "carol", node, &[0], t0 - 30).ended("COMPLETED", j_end),
            FakeJob::running(k, "vision-lab", "bob", node, &[1], k_start),
        ]),
    );
    std::thread::sleep(Duration::from_secs(3));
    c.restart();
    assert!(agent.0.wait().unwrap().success());
    wait_until("the replayed reports charged", Duration::from_secs(30), || {
        c.get("/api/v1/scheduler")["polls"]["pending_reports"] == 0
    });
    assert!(started.elapsed() < Duration::from_secs(60));
    let jobs = c.usage("job");
    let (cj, ck) = (allocated(&jobs, &j.to_string()), allocated(&jobs, &k.to_string()));
    // The agent's reports cover its time without a gap, from its start.
    let cov = c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01");
    let covered =
        cov["nodes"].as_array().unwrap().iter().find(|n| n["node"] == node).unwrap()["covered_s"].as_f64().unwrap();
    // j from the agent's first report to its end; k from its start to the last report's end
    // (the first report's start plus the time covered, without a gap).
    let (earliest, latest) = (agent_start_ms as f64 / 1000.0, first_seen_ms as f64 / 1000.0);
    let want_j = (j_end as f64 - latest, j_end as f64 - earliest);
    let want_k = (earliest + covered - k_start as f64, latest + covered - k_start as f64);
    let within = |x: f64, (lo, hi): (f64, f64)| x >= lo - 1.0 && x <= hi + 1.0;
    assert!(within(cj, want_j), "j charged {cj} s, ran {want_j:?} s of the agent's time");
    assert!(within(ck, want_k), "k charged {ck} s, ran {want_k:?} s of the agent's time");
}

#[test]
fn a_job_no_poll_saw_is_charged_from_sacct() {
    let dir = TempDir::new("sacct");
    let (squeue, sacct) = (dir.path().join("squeue.json"), dir.path().join("sacct.json"));
    let node = "n-sacct";
    let j = unique_job_id(40);
    // j starts and ends between two polls; the stand-in squeue never lists it.
    // sacct knows it when it ends (slurmctld tells slurmdbd at once); a report
    // is charged once the poll after the one after its time has run, so this
    // is in time.
    write_atomic(&squeue, &squeue_json(&[]));
    write_atomic(&sacct, &sacct_json(&[]));
    let scen =
        scenario_json(&[FakeGpu { minor: 0, util: 0, procs: &[] }, FakeGpu { minor: 1, util: 0, procs: &[] }], &[]);
    let scen_file = dir.path().join("node.json");
    std::fs::write(&scen_file, scen).unwrap();
    // Jazari appends its window and states to the command: `sh -c` ignores them.
    let sacct_cmd = format!(r#"sacct_command = ["sh", "-c", "cat {}", "sacct"]"#, sacct.display());
    let cfg = config_with_standin(&squeue, "4s", &[("sacct_command = []", sacct_cmd.as_str())]);
    let c = Collector::start_with_config(&cfg);
    let spool = TempDir::new("spool");
    let mut agent = Proc(
        agent_run(&c.url, &c.node_token_file, spool.path(), node, &["--interval", "500ms"])
            .env("FAKE_NVML_CONFIG", &scen_file)
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let start = now_s();
    std::thread::sleep(Duration::from_secs(2));
    let end = now_s();
    write_atomic(&sacct, &sacct_json(&[(j, "vision-lab", "bob", node, 2, start, end, "COMPLETED")]));
    let mut s = Value::Null;
    wait_until("sacct read", Duration::from_secs(10), || {
        s = c.get("/api/v1/scheduler");
        s["polls"]["last_ended_jobs"] == 1
    });
    assert!(s["polls"]["sacct_error"].is_null(), "{s}");
    std::thread::sleep(Duration::from_secs(9));
    let _ = agent.0.kill();
    wait_until("every report charged", Duration::from_secs(20), || {
        c.get("/api/v1/scheduler")["polls"]["pending_reports"] == 0
    });
    let got = allocated(&c.usage("job"), &j.to_string());
    let want = 2.0 * (end - start) as f64;
    assert!((got - want).abs() < 1e-6, "2 GPUs × {} s: charged {got}", end - start);
    assert!(allocated(&c.usage("institute"), "al-haytham") > 0.0);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
