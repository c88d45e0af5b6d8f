//! End to end: real `jazari serve` and `jazari-agent` processes over loopback HTTP.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

#[test]
fn agent_push_shows_the_node_and_charges_institutes() {
    let c = Collector::start();
    let spool = TempDir::new("spool");
    let status =
        agent_run(&c.url, &c.node_token_file, spool.path(), "gpu-a1", &["--interval", "300ms", "--count", "4"])
            .status()
            .unwrap();
    assert!(status.success());
    let cluster = c.get("/api/v1/cluster");
    let node = &cluster["nodes"][0];
    assert_eq!(node["name"], "gpu-a1");
    assert_eq!(node["gpus"].as_array().unwrap().len(), 8);
    assert_eq!(cluster["summary"]["gpus_idle_allocated"], 2, "carol's job holds GPUs 6-7 idle");
    let usage = c.usage("institute");
    // alice's job 4711 (nlp-lab) on 4 GPUs, bob's 4712 (vision-lab) on 2, carol's 4713 (climate) idle on 2.
    let alloc = |i: &str| usage[i]["allocated_gpu_seconds"].as_f64().unwrap();
    assert!(alloc("ibn-sina") > 0.0 && alloc("al-haytham") > 0.0 && alloc("al-biruni") > 0.0);
    assert!((alloc("ibn-sina") - 2.0 * alloc("al-haytham")).abs() < 1e-6, "4 GPUs against 2");
    let carol = &usage["al-biruni"];
    assert_eq!(carol["idle_allocated_gpu_seconds"], carol["allocated_gpu_seconds"]);
    assert_eq!(carol["busy_gpu_seconds"].as_f64().unwrap(), 0.0);
    // Node and jobs endpoints.
    let node = c.get("/api/v1/nodes/gpu-a1");
    assert_eq!(node["gpus"][0]["allocated_to"]["user"], "alice");
    if is_root() {
        assert_eq!(node["gpus"][0]["processes"][0]["user"], "alice");
    }
    let jobs = c.get("/api/v1/jobs");
    let ids: Vec<&str> = jobs["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["4711", "4712", "4713"]);
    let carol_job = &jobs["jobs"][2];
    assert_eq!(carol_job["idle_gpus"], 2);
    assert_eq!(carol_job["institute"], "al-biruni");
    // History at report resolution.
    let h = c.get("/api/v1/history?node=gpu-a1&resolution=raw");
    assert_eq!(h["points"].as_array().unwrap().len(), 4 * 8);
    // Coverage: 4 reports.
    assert_eq!(c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01")["nodes"][0]["reports"], 4);
    // Prometheus.
    let metrics = metrics(&c.url);
    assert!(
        metrics.contains("jazari_gpu_utilization_ratio{cluster=\"jazari-demo\",node=\"gpu-a1\",gpu=\"0\",uuid=\"GPU-"),
        "{metrics}"
    );
    // No job, user or process labels: no label carries a job id or a user (a number such
    // as a timestamp may contain the digits 4711, so label values are what is checked).
    for bad in ["job=", "user=", "pid=", "=\"4711\"", "=\"alice\""] {
        assert!(!metrics.contains(bad), "{bad} on a series: {metrics}");
    }
}

#[test]
fn the_same_batch_posted_ten_times_counts_once() {
    let c = Collector::start();
    let one = once_report("n-dedup");
    let batch = format!("[{}]", String::from_utf8(one).unwrap().trim());
    let node = c.with_token(&c.node_token);
    let mut answers = vec![];
    let mut usages = vec![];
    for _ in 0..10 {
        let (status, body) = node.post_json("/api/v1/reports", batch.as_bytes(), None).unwrap();
        assert_eq!(status, 200, "{body}");
        answers.push(serde_json::from_str::<Value>(&body).unwrap());
        usages.push(c.usage("institute"));
    }
    assert_eq!(answers[0], serde_json::json!({"accepted": 1, "duplicates": 0, "overlapping": 0}));
    for a in &answers[1..] {
        assert_eq!(a, &serde_json::json!({"accepted": 0, "duplicates": 1, "overlapping": 0}));
    }
    assert!(!usages[0].is_empty());
    assert!(usages.iter().all(|u| u == &usages[0]), "usage changed after the first post");
    // zstd and gzip bodies are the same report: still a duplicate.
    let (status, body) = node.post_json("/api/v1/reports", batch.as_bytes(), Some(3)).unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":0,"duplicates":1,"overlapping":0}"#));
}

/// Each rejection has its status, and nothing is stored.
#[test]
fn rejections_have_their_status_and_store_nothing() {
    let c = Collector::start();
    let good = String::from_utf8(once_report("n-reject")).unwrap();
    let post = |token: Option<&str>, body: &[u8], encoding: Option<&str>| -> (u16, String) {
        let mut req = http().post(format!("{}/api/v1/reports", c.url));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(e) = encoding {
            req = req.header("Content-Encoding", e);
        }
        let resp = req.body(body.to_vec()).send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let nothing_stored = |c: &Collector| {
        assert!(c.usage("institute").is_empty(), "ledger written");
        assert!(c.get("/api/v1/cluster")["nodes"].as_array().unwrap().is_empty(), "live state written");
        assert!(c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01")["nodes"].as_array().unwrap().is_empty());
    };
    // 401: no token, unknown token, wrong secret: the same answer.
    let (s1, b1) = post(None, good.as_bytes(), None);
    let (s2, b2) = post(Some("jzr_nosuchid_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), good.as_bytes(), None);
    let mut wrong = c.node_token.clone();
    wrong.pop();
    wrong.push('#');
    let (s3, b3) = post(Some(&wrong), good.as_bytes(), None);
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert!(b1 == b2 && b2 == b3, "unknown and wrong tokens get the same answer");
    // An admin token cannot send reports.
    assert_eq!(post(Some(&c.admin), good.as_bytes(), None).0, 403);
    // 413: too large as sent, and a small zstd body that inflates past the limit.
    // Too large as sent: announced with Expect: 100-continue, so the refusal
    // comes before the body is sent (a client streaming it would race the close).
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.port)).unwrap();
        write!(
            s,
            "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            c.node_token,
            9 << 20
        )
        .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    }
    let bomb = zstd::encode_all(&vec![b' '; 70 << 20][..], 19).unwrap();
    assert!(bomb.len() < 1 << 20);
    assert_eq!(post(Some(&c.node_token), &bomb, Some("zstd")).0, 413);
    // 400: not JSON, a wrongly typed field (named), a value out of range (named).
    let (s, b) = post(Some(&c.node_token), b"{not json", None);
    assert_eq!(s, 400, "{b}");
    let mut v: Value = serde_json::from_str(&good).unwrap();
    v["gpus"][2]["util_gpu_pct"] = Value::from("busy");
    let (s, b) = post(Some(&c.node_token), v.to_string().as_bytes(), None);
    assert_eq!(s, 400);
    assert!(b.contains("gpus[2].util_gpu_pct"), "{b}");
    let mut v: Value = serde_json::from_str(&good).unwrap();
    v["gpus"][1]["util_gpu_pct"] = Value::from(250);
    let (s, b) = post(Some(&c.node_token), v.to_string().as_bytes(), None);
    assert_eq!(s, 400);
    assert!(b.contains("gpus[1].util_gpu_pct") && b.contains("250"), "{b}");
    // A batch with one bad report stores none of it.
    let mut bad = serde_json::from_str::<Value>(&good).unwrap();
    bad["interval_end_ms"] = Value::from(0);
    let batch = format!("[{good},{bad}]");
    assert_eq!(post(Some(&c.node_token), batch.as_bytes(), None).0, 400);
    // 403: a node token for another node.
    let n1 = token_add(&c.config, &c.store, &["--node", "other-node"]);
    let (s, b) = post(Some(&n1), good.as_bytes(), None);
    assert_eq!(s, 403);
    assert!(b.contains("other-node") && b.contains("n-reject"), "{b}");
    // 415: an encoding we do not read.
    assert_eq!(post(Some(&c.node_token), good.as_bytes(), Some("br")).0, 415);
    nothing_stored(&c);
    // And the good report still goes in.
    assert_eq!(post(Some(&c.node_token), good.as_bytes(), None).0, 200);
    assert!(!c.usage("institute").is_empty());
}

#[test]
fn readers_need_a_reading_token_and_institutes_see_only_their_own() {
    let c = Collector::start();
    let spool = TempDir::new("spool");
    assert!(
        agent_run(&c.url, &c.node_token_file, spool.path(), "n-priv", &["--interval", "200ms", "--count", "2"])
            .status()
            .unwrap()
            .success()
    );
    // A node token cannot read.
    let err = c.with_token(&c.node_token).get::<Value>("/api/v1/cluster").unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    // An institute token sees its own users and jobs, not the others'.
    let vision = token_add(&c.config, &c.store, &["--institute", "al-haytham"]);
    let cl: Value = c.with_token(&vision).get("/api/v1/cluster").unwrap();
    let text = cl.to_string();
    assert!(text.contains("bob") && text.contains("4712"));
    assert!(!text.contains("alice") && !text.contains("4711") && !text.contains("carol"), "{text}");
    let usage: Value = c.with_token(&vision).get("/api/v1/usage?from=2000-01-01&to=2100-01-01").unwrap();
    let rows = usage["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["institute"], "al-haytham");
    let err = c.with_token(&vision).get::<Value>("/api/v1/usage?institute=ibn-sina").unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let jobs: Value = c.with_token(&vision).get("/api/v1/jobs").unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    // Unknown group and unknown institute are explained.
    let err = c.admin().get::<Value>("/api/v1/usage?group_by=planet").unwrap_err().to_string();
    assert!(err.contains("planet") && err.contains("institute, account"), "{err}");
    let err = c.admin().get::<Value>("/api/v1/usage?institute=nope").unwrap_err().to_string();
    assert!(err.contains("ibn-sina"), "{err}");
}

/// The collector goes away while the agent samples, then comes back: every
/// sampled interval is counted once.
#[test]
fn collector_outage_loses_nothing_and_counts_nothing_twice() {
    let outage = std::env::var("JAZARI_TEST_OUTAGE_S").ok().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let mut c = Collector::start();
    let spool = TempDir::new("spool");
    let interval = 0.25;
    let count = ((outage + 3.0) / interval) as u64;
    let mut agent = Proc(
        agent_run(
            &c.url,
            &c.node_token_file,
            spool.path(),
            "n-outage",
            &["--interval", "250ms", "--count", &count.to_string(), "--linger", "120s"],
        )
        .spawn()
        .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1000));
    c.stop();
    std::thread::sleep(Duration::from_secs_f64(outage));
    c.restart();
    let status = agent.0.wait().unwrap();
    assert!(status.success());
    let cov = c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01");
    let node = &cov["nodes"][0];
    assert_eq!(node["reports"].as_u64().unwrap(), count, "every sampled report arrived once");
    let covered = node["covered_s"].as_f64().unwrap();
    // The reports tile time: the sum of intervals is the sampling span (count × interval, give or take a tick).
    assert!((covered - count as f64 * interval).abs() < 2.0 * interval, "covered {covered} s for {count} reports");
    let capacity = c.total("capacity_gpu_seconds");
    assert!((capacity - 8.0 * covered).abs() < 1e-6, "capacity {capacity} vs 8 × {covered}");
}

#[test]
fn an_agent_restarted_with_a_full_spool_replays_it_once() {
    let mut c = Collector::start();
    let spool = TempDir::new("spool");
    c.stop();
    // Collector away: 5 reports wait in the spool; the agent gives up waiting and exits.
    let out = agent_run(
        &c.url,
        &c.node_token_file,
        spool.path(),
        "n-spool",
        &["--interval", "100ms", "--count", "5", "--linger", "1s"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    c.restart();
    // A new agent instance replays the old reports first, then sends its own.
    let out = agent_run(&c.url, &c.node_token_file, spool.path(), "n-spool", &["--interval", "100ms", "--count", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let node = &c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01")["nodes"][0];
    assert_eq!(node["reports"], 7);
    // Run once more: nothing left to replay, nothing counted twice.
    let out = agent_run(&c.url, &c.node_token_file, spool.path(), "n-spool", &["--interval", "100ms", "--count", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01")["nodes"][0]["reports"], 8);
}

#[test]
fn bad_config_and_token_commands_explain_themselves() {
    let d = TempDir::new("cfg");
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "cluster = \"x\"\n[nodes]\nintervall = \"10s\"\n").unwrap();
    let out = Command::new(jazari_bin()).arg("check-config").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("intervall") && err.contains('3'), "{err}");
    // The generated config, with its store where this user may make it, passes; check-config
    // also looks at the machine: the store's folder, the listen address, the files named.
    let out = Command::new(jazari_bin()).arg("gen-config").output().unwrap();
    let generated = String::from_utf8(out.stdout).unwrap();
    let store_line = format!("store = \"{}/state/jazari.sqlite\"", d.path().display());
    let good = generated.replace("store = \"/var/lib/jazari/jazari.sqlite\"", &store_line);
    assert_ne!(good, generated, "gen-config's store line changed: update this test");
    std::fs::write(d.path().join("gen.toml"), &good).unwrap();
    let out = Command::new(jazari_bin()).arg("check-config").arg(d.path().join("gen.toml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A store whose folder cannot be made (under a plain file).
    std::fs::write(d.path().join("plain"), "").unwrap();
    let unmakeable = format!("store = \"{}/plain/state/jazari.sqlite\"", d.path().display());
    let bad_machine = good.replace(&store_line, &unmakeable);
    std::fs::write(d.path().join("machine.toml"), &bad_machine).unwrap();
    let out = Command::new(jazari_bin()).arg("check-config").arg(d.path().join("machine.toml")).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plain/state") && err.contains("1 problem"), "{err}");
    let out = Command::new(jazari_bin())
        .args(["token", "add", "--institute", "atlantis", "--config"])
        .arg(root().join("config/jazari.example.toml"))
        .arg("--store")
        .arg(d.path().join("s.sqlite"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ibn-sina"));
    // A store in a folder that cannot be made.
    let out = Command::new(jazari_bin())
        .args(["serve", "--config"])
        .arg(root().join("config/jazari.example.toml"))
        .arg("--store")
        .arg(d.path().join("plain/dir/s.sqlite"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain/dir"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn without_slurm_the_collector_says_so_and_carries_on() {
    // Reports wait for Slurm up to 2 intervals + timeout + 1 interval: 4.5 s here.
    let cfg = config_with_slurm(r#"["/nonexistent/squeue", "--json"]"#, "500ms")
        .replace("timeout = \"20s\"", "timeout = \"3s\"");
    let c = Collector::start_with_config(&cfg);
    let spool = TempDir::new("spool");
    assert!(
        agent_run(&c.url, &c.node_token_file, spool.path(), "n-noslurm", &["--interval", "300ms", "--count", "3"])
            .status()
            .unwrap()
            .success()
    );
    let s = c.get("/api/v1/scheduler");
    assert!(s["error"].as_str().unwrap().contains("/nonexistent/squeue"), "{s}");
    // The agents' facts alone still charge the institutes, once the collector
    // has waited long enough to know Slurm will not say otherwise.
    assert_eq!(s["polls"]["pending_reports"], 3, "{s}");
    wait_until("reports charged from the agents' facts", Duration::from_secs(20), || {
        c.get("/api/v1/scheduler")["polls"]["pending_reports"] == 0
    });
    assert!(c.usage("institute")["ibn-sina"]["allocated_gpu_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn reports_refused_for_the_token_stay_in_the_spool_and_arrive_once_it_is_fixed() {
    // A token for another node is a mistake an admin fixes: the reports wait in the spool
    // (never dead-lettered, never dropped) and go in, once each, with the right token.
    let c = Collector::start();
    let other = c.dir.path().join("other.token");
    std::fs::write(&other, token_add(&c.config, &c.store, &["--node", "someone-else"])).unwrap();
    let spool = TempDir::new("spool");
    let out = agent_run(
        &c.url,
        &other,
        spool.path(),
        "n-refused",
        &["--interval", "100ms", "--count", "3", "--linger", "1s"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("403") && log.contains("someone-else"), "{log}");
    assert!(!spool.path().join("dead-letter.ndjson").exists(), "a refused token must not dead-letter reports");
    assert!(c.usage("institute").is_empty());
    let inspect = Command::new(agent_bin())
        .args(["spool", "inspect", "--json", "--spool-dir"])
        .arg(spool.path())
        .output()
        .unwrap();
    assert!(inspect.status.success());
    let held: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(held["waiting"], 3, "{held}");

    let right = c.dir.path().join("right.token");
    std::fs::write(&right, token_add(&c.config, &c.store, &["--node", "n-refused"])).unwrap();
    let replay = Command::new(agent_bin())
        .args(["spool", "replay", "--collector", &c.url, "--token-file"])
        .arg(&right)
        .arg("--spool-dir")
        .arg(spool.path())
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let cov = c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01");
    let node = cov["nodes"].as_array().unwrap().iter().find(|n| n["node"] == "n-refused").cloned();
    assert_eq!(node.map(|n| n["reports"].clone()), Some(serde_json::json!(3)), "each report once: {cov}");
    assert!(!c.usage("institute").is_empty(), "the replayed reports are charged");
}

#[test]
fn since_a_version_the_cluster_and_jobs_send_only_what_changed() {
    let c = Collector::start();
    let node = c.with_token(&c.node_token);
    let post = |r: &Value| {
        let (status, body) = node.post_json("/api/v1/reports", r.to_string().as_bytes(), None).unwrap();
        assert_eq!(status, 200, "{body}");
    };
    let mut a: Value = serde_json::from_slice(&once_report("n-a")).unwrap();
    let b: Value = serde_json::from_slice(&once_report("n-b")).unwrap();
    post(&a);
    post(&b);
    let full = c.get("/api/v1/cluster");
    assert_eq!(full.get("delta"), None, "a whole answer");
    let v = full["version"].as_str().expect("a version").to_string();
    let jobs_full = c.get("/api/v1/jobs");
    let jobs_v = jobs_full["version"].as_str().unwrap().to_string();
    assert_eq!(jobs_full.get("changed"), None);
    let names = |view: &Value| -> Vec<String> {
        view["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect()
    };
    // Nothing came: no node and no job, the summary whole.
    let same = c.get(&format!("/api/v1/cluster?since={v}"));
    assert_eq!(same["delta"], true);
    assert!(names(&same).is_empty(), "{same}");
    assert_eq!(same["summary"], full["summary"], "the summary is always whole");
    let jobs = c.get(&format!("/api/v1/jobs?since={jobs_v}"));
    assert_eq!((jobs["jobs"].as_array().unwrap().len(), &jobs["changed"]), (0, &serde_json::json!([])));
    // n-a reports again: it comes whole, n-b does not; its jobs come, named in `changed`.
    a["seq"] = (a["seq"].as_u64().unwrap() + 1).into();
    for f in ["interval_start_ms", "interval_end_ms"] {
        a[f] = (a[f].as_i64().unwrap() + 10_000).into();
    }
    post(&a);
    let after = c.get(&format!("/api/v1/cluster?since={v}"));
    assert_eq!(names(&after), ["n-a"]);
    assert_eq!(after["nodes"][0]["gpus"].as_array().unwrap().len(), 8);
    let jobs = c.get(&format!("/api/v1/jobs?since={jobs_v}"));
    let ids: Vec<&str> = jobs["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["4711", "4712", "4713"], "the jobs of n-a");
    assert_eq!(jobs["changed"], serde_json::json!(["4711", "4712", "4713"]));
    // A version this collector did not make: everything.
    let other = c.get("/api/v1/cluster?since=elsewhere-1-1");
    assert_eq!((names(&other).len(), other.get("delta")), (2, None));
}

/// `?brief=true`: the lists' fields only, a fraction of the bytes, and
/// `?since=` still applies; `/api/v1/jobs?id=` gives one job whole.
#[test]
fn brief_views_keep_what_lists_show_and_one_job_comes_whole() {
    let c = Collector::start();
    let node = c.with_token(&c.node_token);
    for name in ["n-a", "n-b"] {
        let (status, body) = node.post_json("/api/v1/reports", &once_report(name), None).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let full = c.get("/api/v1/cluster");
    let brief = c.get("/api/v1/cluster?brief=true");
    assert_eq!((full.get("brief"), &brief["brief"]), (None, &Value::Bool(true)));
    assert_eq!(brief["summary"], full["summary"]);
    assert!(
        brief.to_string().len() * 4 < full.to_string().len() * 3,
        "{} of {} bytes",
        brief.to_string().len(),
        full.to_string().len()
    );
    let (g, w) = (&brief["nodes"][0]["gpus"][0], &full["nodes"][0]["gpus"][0]);
    for kept in
        ["index", "uuid", "health", "util_gpu_pct", "mem_used_bytes", "temperature_c", "power_mw", "allocated_to"]
    {
        assert_eq!(g[kept], w[kept], "{kept} is kept");
    }
    for left in ["pci_bus_id", "name", "energy_mj", "ecc", "sm_clock_mhz"] {
        assert!(w.get(left).is_some() && g.get(left).is_none(), "{left} is left out");
    }
    assert_eq!(brief["nodes"][0]["jobs"], full["nodes"][0]["jobs"]);
    assert!(brief["nodes"][0]["host"].get("kernel").is_none());
    // Since a version, brief too.
    let v = brief["version"].as_str().unwrap();
    let same = c.get(&format!("/api/v1/cluster?brief=true&since={v}"));
    assert_eq!(
        (&same["delta"], &same["brief"], same["nodes"].as_array().unwrap().len()),
        (&Value::Bool(true), &Value::Bool(true), 0)
    );
    // Jobs: brief without their GPUs; one id whole.
    let jobs = c.get("/api/v1/jobs?brief=true");
    assert_eq!(jobs["brief"], true);
    let j = jobs["jobs"].as_array().unwrap().iter().find(|j| j["id"] == "4711").unwrap().clone();
    assert!(j["gpus"].as_array().unwrap().is_empty() && j["gpu_count"].as_u64().unwrap() > 0, "{j}");
    let one = c.get("/api/v1/jobs?id=4711");
    let ids: Vec<&str> = one["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert!(!ids.is_empty() && ids.iter().all(|i| *i == "4711"), "{ids:?}");
    assert_eq!(one["jobs"][0]["gpus"].as_array().unwrap().len() as u64, j["gpu_count"].as_u64().unwrap());
    assert!(c.get("/api/v1/jobs?id=nope")["jobs"].as_array().unwrap().is_empty());
}
