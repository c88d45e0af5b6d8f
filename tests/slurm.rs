//! Against a real Slurm with slurmdbd (Debian's slurm-wlm; `scripts/slurm-up`
//! starts one: node `vm`-like host with 4 typed fake GPUs whose Slurm indices
//! follow gres.conf's device order 2,3,0,1). The agent's fake NVML lists the
//! GPUs in the same order as Slurm, so their minors differ from their NVML
//! indices and `gpu_index = "auto"` has to learn that Slurm means NVML order.
//!
//! - allocation, the idle-allocated flag, ledger charges, committed hours and
//!   queue pressure come out as Slurm says;
//! - jobs of eight shapes (1-3 GPUs, typed, an array, cancelled running and
//!   pending, a time-limit hit, a job shorter than a poll, a requeue, four
//!   accounts and three users) are charged, job by job, what `sacct` says
//!   they held: `AllocTRES gres/gpu × Elapsed`, within one report interval;
//! - a typed MIG gres (`gpu:3g.71gb`) on the MIG node `<host>m` (its own
//!   partition `mig`, so no other test's job lands on its slices) is charged
//!   the slice's fraction of a GPU, under the slice's MIG UUID, not a GPU.

mod common;
use common::slurm::*;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests share Slurm's four GPUs: one at a time.
static SLURM: Mutex<()> = Mutex::new(());

/// Slurm's GPUs on this host, in NVML order: IDX 0-3 are the device files with minors 2, 3, 0, 1.
const MINORS: [u32; 4] = [2, 3, 0, 1];

fn slurm_up() -> bool {
    let answers = |cmd: &str, args: &[&str]| Command::new(cmd).args(args).output().is_ok_and(|o| o.status.success());
    let idle = Command::new("sinfo").args(["-h", "-o", "%t"]).output().is_ok_and(|o| {
        let s = String::from_utf8_lossy(&o.stdout);
        o.status.success() && ["idle", "mix", "alloc", "comp"].iter().any(|t| s.contains(t))
    });
    let ok = idle && answers("sacct", &["-n", "-X", "-S", "now-1minutes"]);
    if !ok {
        skip("no running Slurm with slurmdbd; start one with `sudo scripts/slurm-up` (.ci/run does)");
    }
    ok
}

/// Waits until nothing runs in partition `p`: a job of the test before may outlive it (Slurm
/// enforces a time limit up to a minute late), and would take GPUs this test counts on.
fn wait_for_idle(p: &str) {
    wait_until(&format!("partition {p} to run no job"), Duration::from_secs(150), || {
        Command::new("squeue")
            .args(["-h", "-p", p, "-t", "R,CG,CF,S"])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.iter().all(u8::is_ascii_whitespace))
    });
}

fn hostname() -> String {
    String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap().trim().to_string()
}

/// Submits a batch job running `cmd`; returns its id (the array's id for an array).
fn sbatch(args: &[&str], cmd: &str) -> String {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .args(["--output=/dev/null", "--wrap", cmd])
        .output()
        .unwrap();
    assert!(out.status.success(), "sbatch {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().split(';').next().unwrap().to_string()
}

/// Cancels jobs when dropped (a failed test leaves none running).
struct Cancel(Vec<String>);
impl Drop for Cancel {
    fn drop(&mut self) {
        let _ = Command::new("scancel").args(&self.0).status();
    }
}

fn state(job: &str) -> String {
    let out = Command::new("squeue").args(["-h", "-j", job, "-o", "%T"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Running as root, jobs can run as the cluster's users; else all as this user.
fn as_user(user: &str) -> Vec<String> {
    if is_root() { vec![format!("--uid={user}")] } else { vec![] }
}

/// A fake-NVML scenario for this host: Slurm's GPUs in its order, `procs[i]`
/// on NVML GPU i, `processes` defined as in [`scenario_json`].
fn host_scenario(
    dir: &std::path::Path,
    util: [u32; 4],
    procs: [&[&str]; 4],
    processes: &[FakeProc],
) -> std::path::PathBuf {
    let gpus: Vec<FakeGpu> = (0..4).map(|i| FakeGpu { minor: MINORS[i], util: util[i], procs: procs[i] }).collect();
    let file = dir.join("slurm-node.json");
    std::fs::write(&file, scenario_json(&gpus, processes)).unwrap();
    file
}

#[test]
fn slurm_allocations_drive_the_ledger() {
    let _one = SLURM.lock().unwrap_or_else(|e| e.into_inner());
    if !slurm_up() {
        return;
    }
    wait_for_idle("gpu");
    let node = hostname();
    // Climate (al-biruni) holds 2 GPUs and runs nothing on them; vision-lab (al-haytham) uses 2.
    let idle = sbatch(&["--gres=gpu:2", "-A", "climate", "-t", "60", "-J", "jazari-idle"], "sleep 900");
    let mut jobs = Cancel(vec![idle.clone()]);
    wait_until("the idle job to run", Duration::from_secs(30), || state(&idle) == "RUNNING");
    let busy = sbatch(&["--gres=gpu:h200:2", "-A", "vision-lab", "-t", "30", "-J", "jazari-busy"], "sleep 900");
    jobs.0.push(busy.clone());
    wait_until("the busy job to run", Duration::from_secs(30), || state(&busy) == "RUNNING");
    // A third job waits for GPUs: queue pressure for ibn-sina.
    let queued = sbatch(&["--gres=gpu:2", "-A", "nlp-lab", "-t", "10", "-J", "jazari-queued"], "sleep 900");
    jobs.0.push(queued.clone());

    let cfg = config_with_slurm(r#"["squeue", "--json"]"#, "1s");
    let c = Collector::start_with_config(&cfg);
    let mut s = Value::Null;
    wait_until("the collector to read Slurm", Duration::from_secs(20), || {
        s = c.get("/api/v1/scheduler");
        s["jobs"].as_array().is_some_and(|j| j.len() >= 3)
    });
    // Where Slurm put the busy job (IDX, which is the NVML index on this host).
    let job = |id: &str| s["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).unwrap().clone();
    let idx = |id: &str| -> Vec<usize> {
        job(id)["gpus"][0]["indices"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect()
    };
    let (busy_idx, idle_idx) = (idx(&busy), idx(&idle));
    assert_eq!((busy_idx.len(), idle_idx.len()), (2, 2), "{s}");
    assert_eq!(job(&busy)["gpus"][0]["gpu_type"], "h200");

    // The busy job's processes on its GPUs, its Slurm job id and GPUs in their environment.
    let gpus_env = busy_idx.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let env =
        [("SLURM_JOB_ID", busy.as_str()), ("SLURM_JOB_ACCOUNT", "vision-lab"), ("SLURM_JOB_GPUS", gpus_env.as_str())];
    let mut util = [0; 4];
    let mut procs: [&[&str]; 4] = [&[]; 4];
    for &i in &busy_idx {
        util[i] = 85;
        procs[i] = &["busy"];
    }
    let scen = host_scenario(c.dir.path(), util, procs, &[("busy", 2002, &env)]);
    push_six_reports(&c, &node, &scen);

    // Allocation and the idle flag, from Slurm, on the GPUs Slurm means.
    let n: Value = c.get(&format!("/api/v1/nodes/{node}"));
    let g = |i: usize| n["gpus"][i].clone();
    for &i in &idle_idx {
        assert_eq!(g(i)["allocated_to"]["job"], idle.as_str(), "{n}");
        assert_eq!(g(i)["allocated_to"]["institute"], "al-biruni");
        assert_eq!(g(i)["idle_allocated"], true);
    }
    for &i in &busy_idx {
        assert_eq!(g(i)["allocated_to"]["job"], busy.as_str(), "{n}");
        assert_eq!(g(i)["allocated_to"]["institute"], "al-haytham");
        assert_eq!(g(i)["idle_allocated"], false);
    }

    // Ledger charges to the right institutes.
    let usage = c.usage("institute");
    let f = |i: &str, k: &str| usage.get(i).and_then(|r| r[k].as_f64()).unwrap_or(0.0);
    assert!(f("al-biruni", "allocated_gpu_seconds") > 0.0);
    assert_eq!(f("al-biruni", "idle_allocated_gpu_seconds"), f("al-biruni", "allocated_gpu_seconds"));
    assert_eq!(f("al-biruni", "busy_gpu_seconds"), 0.0);
    assert!(f("al-haytham", "busy_gpu_seconds") > 0.0);
    assert!(
        (f("al-biruni", "allocated_gpu_seconds") - f("al-haytham", "allocated_gpu_seconds")).abs() < 1e-6,
        "2 GPUs each"
    );
    assert_eq!(f("ibn-sina", "allocated_gpu_seconds"), 0.0, "the queued job used nothing");

    // Committed hours from the time limit (60 min × 2 GPUs, less what has run), and queue pressure.
    let q: Value = c.get("/api/v1/quotas");
    let inst = |id: &str| q["institutes"].as_array().unwrap().iter().find(|i| i["institute"] == id).unwrap().clone();
    let biruni = inst("al-biruni");
    assert_eq!(biruni["committed_known"], true);
    let committed = biruni["committed_gpu_hours"].as_f64().unwrap();
    assert!(committed > 1.9 && committed <= 2.0, "committed {committed}");
    let haytham = inst("al-haytham")["committed_gpu_hours"].as_f64().unwrap();
    assert!(haytham > 0.9 && haytham <= 1.0, "30 min × 2 GPUs: {haytham}");
    assert_eq!(inst("ibn-sina")["queued_gpus"], 2);

    // The numbering was learned (minors would have put the jobs elsewhere); no disagreement.
    let fnd: Value = c.get("/api/v1/findings");
    assert_eq!(fnd["scheduler_ok"], true);
    let kinds: Vec<&str> = fnd["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(!kinds.iter().any(|k| ["wrong_gpu", "gpu_index_mismatch", "unknown_job"].contains(k)), "{fnd}");
    drop(jobs);
}

/// What `sacct` says each job held: display id → (GPUs, GPU-seconds over all its runs, states).
/// The real agent on `node` sends six reports of scenario `scen`, 500 ms
/// apart; returns once the collector has charged every one.
fn push_six_reports(c: &Collector, node: &str, scen: &std::path::Path) {
    let spool = TempDir::new("spool");
    let status = agent_run(&c.url, &c.node_token_file, spool.path(), node, &["--interval", "500ms", "--count", "6"])
        .env("FAKE_NVML_CONFIG", scen)
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("every report charged", Duration::from_secs(20), || {
        c.get("/api/v1/scheduler")["polls"]["pending_reports"] == 0
    });
}

fn sacct_held(ids: &[String]) -> BTreeMap<String, (u32, f64, Vec<String>)> {
    let out = Command::new("sacct")
        .args(["--allusers", "-X", "-D", "-n", "-P", "-o", "JobID,AllocTRES,ElapsedRaw,State", "-j", &ids.join(",")])
        .output()
        .unwrap();
    assert!(out.status.success(), "sacct: {}", String::from_utf8_lossy(&out.stderr));
    let mut held: BTreeMap<String, (u32, f64, Vec<String>)> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('|').collect();
        let gpus =
            f[1].split(',').find_map(|t| t.strip_prefix("gres/gpu=")).map(|n| n.parse::<u32>().unwrap()).unwrap_or(0);
        let e = held.entry(f[0].to_string()).or_default();
        e.0 = e.0.max(gpus);
        e.1 += gpus as f64 * f[2].parse::<f64>().unwrap();
        e.2.push(f[3].split_whitespace().next().unwrap().to_string());
    }
    held
}

/// Whether every job of `ids` has ended, as sacct says.
fn all_ended(ids: &[String]) -> bool {
    let held = sacct_held(ids);
    let running = ["RUNNING", "PENDING", "REQUEUED", "COMPLETING", "SUSPENDED"];
    !held.is_empty()
        && held.values().all(|(_, _, states)| !states.last().is_some_and(|s| running.contains(&s.as_str())))
}

#[test]
fn every_job_is_charged_what_sacct_says_it_held() {
    let _one = SLURM.lock().unwrap_or_else(|e| e.into_inner());
    if !slurm_up() {
        return;
    }
    wait_for_idle("gpu");
    let node = hostname();
    let started = Instant::now();
    let c = Collector::start_with_config(&config_with_slurm(r#"["squeue", "--json"]"#, "3s"));
    let dir = TempDir::new("slurm-shapes");
    let scen = host_scenario(dir.path(), [0; 4], [&[]; 4], &[]);
    let spool = TempDir::new("spool");
    let mut agent = Proc(
        agent_run(&c.url, &c.node_token_file, spool.path(), &node, &["--interval", "1s"])
            .env("FAKE_NVML_CONFIG", &scen)
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));

    let (alice, bob, carol) = (as_user("alice"), as_user("bob"), as_user("carol"));
    let args = |user: &[String], rest: &[&str]| -> Vec<String> {
        user.iter().cloned().chain(rest.iter().map(|s| s.to_string())).collect()
    };
    let submit = |a: Vec<String>, cmd: &str| sbatch(&a.iter().map(String::as_str).collect::<Vec<_>>(), cmd);
    let mut ids = vec![];
    // 1 GPU until its 1-minute limit (TIMEOUT).
    let timeout = submit(args(&carol, &["--gres=gpu:1", "-A", "climate", "-t", "1", "-J", "j-timeout"]), "sleep 600");
    ids.push(timeout.clone());
    let mut cancel = Cancel(vec![timeout.clone()]);
    // 2 typed GPUs, 15 s.
    ids.push(submit(args(&bob, &["--gres=gpu:h200:2", "-A", "vision-lab", "-t", "5", "-J", "j-typed"]), "sleep 15"));
    // Shorter than one poll (3 s).
    ids.push(submit(args(&alice, &["--gres=gpu:1", "-A", "nlp-lab", "-t", "5", "-J", "j-short"]), "sleep 1"));
    // An array of three 1-GPU tasks.
    ids.push(submit(
        args(&alice, &["--array=0-2", "--gres=gpu:1", "-A", "nlp-lab", "-t", "5", "-J", "j-array"]),
        "sleep 5",
    ));
    // 3 GPUs, cancelled while it runs.
    let cancelled = submit(args(&carol, &["--gres=gpu:3", "-A", "robotics", "-t", "5", "-J", "j-cancel"]), "sleep 600");
    ids.push(cancelled.clone());
    cancel.0.push(cancelled.clone());
    // 3 GPUs, completes.
    ids.push(submit(args(&carol, &["--gres=gpu:3", "-A", "climate", "-t", "5", "-J", "j-three"]), "sleep 6"));
    // Requeued while it runs (then cancelled while it waits to run again).
    let requeued = submit(
        args(&bob, &["--gres=gpu:1", "-A", "vision-lab", "-t", "5", "--requeue", "-J", "j-requeue"]),
        "sleep 600",
    );
    ids.push(requeued.clone());
    cancel.0.push(requeued.clone());
    // Cancelled before it ever runs.
    let never = submit(
        args(&alice, &["--gres=gpu:1", "-A", "nlp-lab", "-t", "5", "--begin=now+3600", "-J", "j-never"]),
        "sleep 5",
    );
    ids.push(never.clone());
    cancel.0.push(never.clone());

    wait_until("the 3-GPU job to run", Duration::from_secs(90), || state(&cancelled) == "RUNNING");
    std::thread::sleep(Duration::from_secs(8));
    assert!(Command::new("scancel").arg(&cancelled).status().unwrap().success());
    wait_until("the requeue job to run", Duration::from_secs(90), || state(&requeued) == "RUNNING");
    std::thread::sleep(Duration::from_secs(5));
    assert!(Command::new("scontrol").args(["requeue", &requeued]).status().unwrap().success());
    wait_until("the requeued job to wait again", Duration::from_secs(30), || state(&requeued) == "PENDING");
    assert!(Command::new("scancel").args([&requeued, &never]).status().unwrap().success());
    wait_until("every job to end, as sacct says", Duration::from_secs(180), || all_ended(&ids));
    // Reports past the last end, then the polls that complete Slurm's view of them.
    std::thread::sleep(Duration::from_secs(8));
    let _ = agent.0.kill();
    let _ = agent.0.wait();
    wait_until("every report charged", Duration::from_secs(30), || {
        c.get("/api/v1/scheduler")["polls"]["pending_reports"] == 0
    });

    let held = sacct_held(&ids);
    let ledger = c.usage("job");
    let mut lines = vec![];
    let mut shapes = 0;
    for (job, (gpus, want, states)) in &held {
        let got = ledger.get(job).and_then(|r| r["allocated_gpu_seconds"].as_f64()).unwrap_or(0.0);
        lines.push(format!("{job:>8} {gpus} GPU {states:?}: sacct {want:>6.0} GPU-s, ledger {got:>8.1} GPU-s"));
        // Within one report interval (1 s) of each GPU's time.
        if (got - want).abs() > *gpus as f64 * 1.0 + 1e-6 {
            panic!("job {job}: ledger {got} GPU-s, sacct {want} GPU-s\n{}", lines.join("\n"));
        }
        shapes += 1;
    }
    eprintln!("ledger vs sacct, job by job:\n{}", lines.join("\n"));
    assert!(shapes >= 10, "every run of the 8 submissions and the array's 3 tasks: {held:?}");
    let states: Vec<&str> = held.values().flat_map(|h| h.2.iter().map(String::as_str)).collect();
    for s in ["TIMEOUT", "CANCELLED", "COMPLETED", "REQUEUED"] {
        assert!(states.contains(&s), "a job ended {s}: {states:?}");
    }
    // The queue's institutes and users, as sacct says, are the ledger's.
    let users = c.usage("user");
    if is_root() {
        for u in ["alice", "bob", "carol"] {
            assert!(users.get(u).is_some_and(|r| r["allocated_gpu_seconds"].as_f64().unwrap() > 0.0), "{u}: {users:?}");
        }
    }
    let inst = c.usage("institute");
    for i in ["ibn-sina", "al-haytham", "al-biruni", "al-jazari"] {
        assert!(inst.get(i).is_some_and(|r| r["allocated_gpu_seconds"].as_f64().unwrap() > 0.0), "{i}: {inst:?}");
    }
    eprintln!("took {:.0} s", started.elapsed().as_secs_f64());
    drop(cancel);
}

/// The MIG node of `scripts/slurm-up`: `<host>m`, alone in partition `mig`, its IDX 0 an h200 and
/// IDX 1-2 two 3g.71gb slices. Jobs outside `-p mig` never land on it, so this test does not take
/// the other tests' GPUs, nor they its slices.
fn mig_node_up(node: &str) -> bool {
    let out = Command::new("sinfo").args(["-h", "-N", "-n", node, "-p", "mig", "-o", "%G %t"]).output();
    let s = out.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
    let ok = s.contains("gpu:3g.71gb:2") && ["idle", "mix", "alloc"].iter().any(|t| s.contains(t));
    if !ok {
        skip(&format!("no MIG node {node} in partition mig (`{}`); rerun `sudo scripts/slurm-up`", s.trim()));
    }
    ok
}

#[test]
fn a_typed_mig_gres_is_charged_its_slice_fraction_not_a_gpu() {
    let _one = SLURM.lock().unwrap_or_else(|e| e.into_inner());
    let node = format!("{}m", hostname());
    if !slurm_up() || !mig_node_up(&node) {
        return;
    }
    wait_for_idle("mig");
    let job =
        sbatch(&["-p", "mig", "--gres=gpu:3g.71gb:1", "-A", "climate", "-t", "30", "-J", "jazari-mig"], "sleep 900");
    let jobs = Cancel(vec![job.clone()]);
    wait_until("the MIG job to run", Duration::from_secs(30), || state(&job) == "RUNNING");
    let c = Collector::start_with_config(&config_with_slurm(r#"["squeue", "--json"]"#, "1s"));
    let mut s = Value::Null;
    wait_until("the collector to read Slurm", Duration::from_secs(20), || {
        s = c.get("/api/v1/scheduler");
        s["jobs"].as_array().is_some_and(|j| j.iter().any(|j| j["id"] == job.as_str()))
    });
    let sj = s["jobs"].as_array().unwrap().iter().find(|j| j["id"] == job.as_str()).unwrap().clone();
    let on = &sj["gpus"][0];
    assert_eq!((on["node"].as_str(), on["gpu_type"].as_str()), (Some(node.as_str()), Some("3g.71gb")), "{sj}");
    let idx: Vec<u64> = on["indices"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap()).collect();
    // IDX 1 and 2 are the slices of GPU instances 1 and 2 (GPU by GPU, slices by instance).
    assert!(idx == [1] || idx == [2], "one slice, IDX 1 or 2: {idx:?}");
    let (mine, other) = if idx == [1] { ("0001", "0002") } else { ("0002", "0001") };
    // Its slice: SM 30 %, tensor 10 %; no process of it needed (Slurm's word is the allocation).
    // The other slice: SM 0 and nothing on it; GPU 0, the h200, idle.
    let slices: [(f64, f64, &[&str]); 2] =
        if idx == [1] { [(30.0, 10.0, &[]), (0.0, 0.0, &[])] } else { [(0.0, 0.0, &[]), (30.0, 10.0, &[])] };
    let scen = c.dir.path().join("mig-node.json");
    std::fs::write(&scen, mig_scenario_json(slices, &[])).unwrap();
    push_six_reports(&c, &node, &scen);

    // The node's time: two GPUs' capacity (the MIG GPU's slices add up to one GPU).
    let by_node = c.usage("node");
    let t = by_node[&node]["capacity_gpu_seconds"].as_f64().unwrap() / 2.0;
    assert!(t > 1.0, "{by_node:?}");
    let by_job = c.usage("job");
    let f = |k: &str| by_job.get(job.as_str()).and_then(|r| r[k].as_f64()).unwrap_or(0.0);
    // A 3g.71gb slice under mig_charge = "max": 4/8 of a GPU (memory 4/8 over compute 3/7), not 1.
    assert!(
        (f("allocated_gpu_seconds") - 0.5 * t).abs() < 1e-6,
        "{} GPU-s over {t} s: {by_job:?}",
        f("allocated_gpu_seconds")
    );
    // SM active over the time GPM measured (the agent's first sample has nothing to diff against).
    assert!(f("gpm_measured_gpu_seconds") > 0.0 && f("gpm_measured_gpu_seconds") <= f("allocated_gpu_seconds") + 1e-9);
    assert!((f("sm_active_gpu_seconds") - 0.3 * f("gpm_measured_gpu_seconds")).abs() < 1e-6, "{by_job:?}");
    assert!((f("busy_gpu_seconds") - f("sm_active_gpu_seconds")).abs() < 1e-6, "a slice is busy by its SM activity");
    assert_eq!(f("idle_allocated_gpu_seconds"), 0.0);
    // Under its slice's MIG UUID; the other slice and the h200 held by nobody.
    let by_gpu = c.usage("gpu");
    let g = |k: &str| {
        by_gpu.iter().find(|(u, _)| u.ends_with(k)).map(|(_, r)| r["allocated_gpu_seconds"].as_f64().unwrap())
    };
    assert!(
        (g(mine).unwrap() - 0.5 * t).abs() < 1e-6
            && by_gpu.keys().any(|k| k == &format!("MIG-5a1d0000-0000-4000-8000-00000000{mine}"))
    );
    assert_eq!((g(other), g("a000")), (Some(0.0), Some(0.0)), "{by_gpu:?}");
    let inst = c.usage("institute");
    assert!(
        (inst["al-biruni"]["allocated_gpu_seconds"].as_f64().unwrap() - 0.5 * t).abs() < 1e-6,
        "climate's institute"
    );

    // Live: the slice is the job's; no finding says Slurm and the agent disagree.
    let n: Value = c.get(&format!("/api/v1/nodes/{node}"));
    let held = &n["gpus"][1]["mig_allocated"];
    assert_eq!(held.as_array().map(|a| a.len()), Some(1), "{n}");
    assert_eq!(held[0]["allocated_to"]["job"], job.as_str());
    assert!(held[0]["uuid"].as_str().unwrap().ends_with(mine));
    assert!(n["gpus"][0]["allocated_to"].is_null() && n["gpus"][1]["allocated_to"].is_null());
    let fnd: Value = c.get("/api/v1/findings");
    let kinds: Vec<&str> = fnd["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(!kinds.iter().any(|k| ["wrong_gpu", "gpu_index_mismatch", "unallocated_use"].contains(k)), "{fnd}");
    drop(jobs);
}
