//! Findings and their notifications, end to end: real agents on fake-NVML
//! scenarios (an XID 79, an idle job, a lost GPU, throttling), posted report
//! streams (rising ECC), a node that stops reporting and comes back, a quota
//! that runs out; a real HTTP receiver and a real SMTP server started by the
//! test, one of them down for a while.

mod common;
use common::receivers::{SmtpSink, Webhook};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The example configuration with fast rules, a short stale threshold and the receivers.
fn config(webhook: &Webhook, smtp: Option<&SmtpSink>, quota_gpu_hours: &str) -> String {
    let mut cfg = std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap();
    for (from, to) in [
        ("interval = \"10s\"\n# A node that missed", "interval = \"500ms\"\n# A node that missed"),
        ("stale_after_intervals = 3", "stale_after_intervals = 4"),
        ("gpu_hours = 120000", &format!("gpu_hours = {quota_gpu_hours}")),
        ("accounts = { \"nlp-lab\" = 80000, \"speech-lab\" = 40000 }", "accounts = {}"),
        ("max_gpus = 96", "max_gpus = 2"),
    ] {
        assert!(cfg.contains(from), "the example config has no `{from}`");
        cfg = cfg.replacen(from, to, 1);
    }
    cfg = with_alerts(
        &cfg,
        &[
            ("evaluate_every", "\"300ms\""),
            ("quota_every", "\"1s\""),
            ("repeat_interval", "\"1m\""),
            ("clear_after", "\"1s\""),
            ("idle_allocated_after", "\"2s\""),
            ("xid_window", "\"3s\""),
            ("throttle_after", "\"2s\""),
            ("low_sm_active_pct", "20.0"),
            ("low_sm_active_after", "\"1s\""),
        ],
    );
    cfg += &format!("\n[[alerts.webhook]]\nurl = \"{}\"\nmin_severity = \"info\"\n", webhook.url());
    if let Some(s) = smtp {
        cfg += &format!(
            "\n[[alerts.email]]\nsmtp = \"smtp://127.0.0.1:{}\"\nfrom = \"jazari@example.org\"\nto = [\"admins@example.org\"]\nmin_severity = \"critical\"\n",
            s.port
        );
    }
    cfg
}

/// (finding id, status) → how many times notified, over every body the receiver got.
fn notified(webhook: &Webhook) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for b in webhook.bodies() {
        let v: Value = serde_json::from_str(&b).unwrap();
        for f in v["findings"].as_array().unwrap() {
            *out.entry((f["id"].as_str().unwrap().to_string(), f["status"].as_str().unwrap().to_string()))
                .or_default() += 1;
        }
    }
    out
}

fn count(n: &BTreeMap<(String, String), usize>, prefix: &str, status: &str) -> usize {
    n.iter().filter(|((id, s), _)| id.starts_with(prefix) && s == status).map(|(_, c)| c).sum()
}

#[test]
fn a_failing_gpu_and_a_silent_node_are_notified_once_resolved_once_and_none_lost() {
    let hook = Webhook::start();
    let smtp = SmtpSink::start();
    let c = Collector::start_with_config(&config(&hook, Some(&smtp), "120000"));
    let spool = TempDir::new("spool");
    let run = |scenario: &str| {
        Proc(
            agent_run(&c.url, &c.node_token_file, spool.path(), "alert-n1", &["--interval", "300ms"])
                .env("FAKE_NVML_CONFIG", common::scenario(scenario))
                .spawn()
                .unwrap(),
        )
    };
    let agent = run("xid79");
    wait_until("the XID 79 notified", Duration::from_secs(20), || {
        count(&notified(&hook), "xid/alert-n1", "firing") == 1
    });
    let body = hook.bodies().into_iter().find(|b| b.contains("xid/alert-n1")).unwrap();
    assert!(
        body.contains("XID 79") && body.contains("alert-n1") && body.contains("\"severity\":\"critical\""),
        "{body}"
    );
    wait_until("the XID mailed", Duration::from_secs(20), || smtp.mails().iter().any(|m| m.contains("XID 79")));
    let f = c.get("/api/v1/findings");
    assert!(f["findings"].as_array().unwrap().iter().any(|x| x["kind"] == "xid" && x["node"] == "alert-n1"), "{f}");

    // The receiver goes down; the node goes silent; the XID is over.
    hook.up.store(false, std::sync::atomic::Ordering::SeqCst);
    drop(agent);
    wait_until("notifications refused while down", Duration::from_secs(20), || *hook.refused.lock().unwrap() >= 1);
    std::thread::sleep(Duration::from_secs(2));
    hook.up.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_until("the queued notifications delivered", Duration::from_secs(40), || {
        let n = notified(&hook);
        count(&n, "node_stale/alert-n1", "firing") == 1 && count(&n, "xid/alert-n1", "resolved") == 1
    });
    // The node comes back (without XIDs): its silence is resolved.
    let _agent = run("h200x8");
    wait_until("the stale node resolved", Duration::from_secs(20), || {
        count(&notified(&hook), "node_stale/alert-n1", "resolved") == 1
    });
    std::thread::sleep(Duration::from_secs(2));
    let n = notified(&hook);
    for (id, want) in [("xid/alert-n1", 1), ("node_stale/alert-n1", 1)] {
        assert_eq!(count(&n, id, "firing"), want, "{id} firing: {n:?}");
        assert_eq!(count(&n, id, "resolved"), want, "{id} resolved: {n:?}");
        assert_eq!(count(&n, id, "repeat"), 0, "{id} repeated inside the interval: {n:?}");
    }
    let mails = smtp.mails();
    let xid_mails = mails.iter().filter(|m| m.contains("FIRING critical xid")).count();
    assert_eq!(xid_mails, 1, "{mails:?}");
    assert!(mails.iter().any(|m| m.contains("RESOLVED critical xid")), "{mails:?}");
    assert!(mails.iter().all(|m| m.contains("Subject: [jazari")), "{mails:?}");
    let m = metrics(&c.url);
    assert!(m.contains("jazari_notifications_queued 0"), "{m}");
    assert!(!m.contains("jazari_notifications_failed_total 0\n"), "{m}");
}

/// A report of `node` at `end_ms` whose GPU 0 has `corrected` ECC errors so far.
fn ecc_report(node: &str, seq: u64, end_ms: i64, corrected: u64) -> Vec<u8> {
    let mut r: Value = serde_json::from_slice(&once_report(node)).unwrap();
    r["seq"] = seq.into();
    r["instance"] = "ecc-stream".into();
    r["interval_start_ms"] = (end_ms - 60_000).into();
    r["interval_end_ms"] = end_ms.into();
    r["gpus"][0]["ecc"] = serde_json::json!({"aggregate_corrected": corrected, "volatile_uncorrected": 0});
    r["events"] = serde_json::json!([]);
    serde_json::to_vec(&r).unwrap()
}

#[test]
fn each_rule_raises_its_finding_for_the_right_institute_and_clears() {
    let hook = Webhook::start();
    let c = Collector::start_with_config(&config(&hook, None, "1"));
    let dir = TempDir::new("rules");
    // Throttling: GPU 0 thermally slowed (hw_thermal_slowdown), the other idle.
    let hot = dir.path().join("hot.json");
    let scen = std::fs::read_to_string(common::scenario("xid79")).unwrap();
    let mut v: Value = serde_json::from_str(&scen).unwrap();
    v["gpus"][0]["throttle_reasons"] = 0x40.into();
    v["gpus"][1]["xid_events"] = serde_json::json!([]);
    std::fs::write(&hot, v.to_string()).unwrap();
    let spools: Vec<TempDir> = (0..4).map(|_| TempDir::new("spool")).collect();
    let agents: Vec<Proc> = [
        ("rule-idle", common::scenario("h200x8")),
        ("rule-lost", common::scenario("gpu-lost")),
        ("rule-hot", hot),
        ("rule-lowsm", root().join("tests/fake-nvml/scenarios/h200-gpm.json")),
    ]
    .into_iter()
    .zip(&spools)
    .map(|((node, scen), spool)| {
        Proc(
            agent_run(&c.url, &c.node_token_file, spool.path(), node, &["--interval", "300ms"])
                .env("FAKE_NVML_CONFIG", scen)
                .spawn()
                .unwrap(),
        )
    })
    .collect();
    // Rising corrected ECC: a report a minute, 200 more errors each, as they are
    // taken in (the stream then stops, and its node goes stale: the finding clears).
    let node = c.with_token(&c.node_token);
    let start = now_ms() - 11 * 60_000;
    for k in 0..11u64 {
        let (status, body) = node
            .post_json("/api/v1/reports", &ecc_report("rule-ecc", k + 1, start + k as i64 * 60_000, k * 200), None)
            .unwrap();
        assert_eq!(status, 200, "{body}");
        std::thread::sleep(Duration::from_millis(400));
    }
    wait_until("the corrected ECC rate notified, then resolved", Duration::from_secs(20), || {
        let n = notified(&hook);
        count(&n, "ecc_corrected_rate/rule-ecc", "firing") == 1
            && count(&n, "ecc_corrected_rate/rule-ecc", "resolved") == 1
    });
    let kinds = |f: &Value| -> Vec<(String, String)> {
        f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["kind"].as_str().unwrap().to_string(),
                    x["node"].as_str().or(x["institute"].as_str()).unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let want = [
        ("idle_allocated", "rule-idle"),
        ("gpu_lost", "rule-lost"),
        ("throttling", "rule-hot"),
        ("low_sm_active", "rule-lowsm"),
        ("quota_runout", "ibn-sina"),
        ("cap_exceeded", "ibn-sina"),
    ];
    let mut f = Value::Null;
    wait_until("every rule's finding", Duration::from_secs(30), || {
        f = c.get("/api/v1/findings");
        let k = kinds(&f);
        want.iter().all(|(kind, subject)| k.iter().any(|(a, b)| a == kind && b == subject))
    });
    let by_kind = |kind: &str| f["findings"].as_array().unwrap().iter().find(|x| x["kind"] == kind).unwrap().clone();
    // The idle job on rule-idle is carol's 4713 (climate): al-biruni's finding. (The
    // agents share this host's processes, so the other nodes see the scenario's jobs too.)
    let idle = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "idle_allocated" && x["node"] == "rule-idle" && x["job"] == "4713")
        .unwrap_or_else(|| panic!("{f}"))
        .clone();
    assert_eq!((idle["job"].as_str(), idle["institute"].as_str()), (Some("4713"), Some("al-biruni")), "{idle}");
    assert!(idle["message"].as_str().unwrap().contains("2 GPUs"), "{idle}");
    assert_eq!(by_kind("gpu_lost")["severity"], "critical");
    // 100 % NVML utilisation with 18 % of the SMs active (GPM) on the h200-gpm node's GPU 0.
    let low = by_kind("low_sm_active");
    assert!(low["message"].as_str().unwrap().contains("GPU 0: SM 18% at 100% NVML"), "{low}");
    assert_eq!(low["node"], "rule-lowsm");
    assert!(by_kind("quota_runout")["message"].as_str().unwrap().contains("runs out"), "{f}");
    // An institute token sees its own institute's findings, no others'.
    let biruni = token_add(&c.config, &c.store, &["--institute", "al-biruni"]);
    let theirs: Value = c.with_token(&biruni).get("/api/v1/findings").unwrap();
    let list = theirs["findings"].as_array().unwrap();
    assert!(list.iter().any(|x| x["kind"] == "idle_allocated"), "{theirs}");
    assert!(list.iter().all(|x| x["institute"] == "al-biruni"), "{theirs}");
    // The agents stop: their nodes go stale, and their GPU findings clear.
    drop(agents);
    wait_until("GPU findings cleared once the nodes are stale", Duration::from_secs(30), || {
        let f = c.get("/api/v1/findings");
        let k = kinds(&f);
        !k.iter().any(|(a, _)| a == "idle_allocated" || a == "throttling" || a == "gpu_lost")
            && k.iter().filter(|(a, _)| a == "node_stale").count() >= 3
    });
    let cleared = c.get("/api/v1/findings?cleared=true");
    assert!(
        cleared["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "idle_allocated" && x["cleared_ms"].is_i64()),
        "{cleared}"
    );
    wait_until("the idle job's finding resolved to the receiver", Duration::from_secs(10), || {
        count(&notified(&hook), "idle_allocated/rule-idle", "resolved") == 1
    });
    let n = notified(&hook);
    assert_eq!(count(&n, "idle_allocated/rule-idle", "firing"), 1, "{n:?}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn quota_check_exits_with_the_worst_state() {
    let hook = Webhook::start();
    let c = Collector::start_with_config(&config(&hook, None, "120000"));
    let check = || {
        let out = std::process::Command::new(jazari_bin())
            .args(["quota", "--check", "--url", &c.url, "--token-file"])
            .arg(&c.admin_file)
            .output()
            .unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, text) = check();
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.lines().count(), 4, "one line per institute: {text}");
    assert!(text.lines().any(|l| l.starts_with("OK ibn-sina: 0.0 of 120,000 GPU-h used")), "{text}");
    // Over the cap of 2 GPUs: a warning.
    let spool = TempDir::new("spool");
    assert!(
        agent_run(&c.url, &c.node_token_file, spool.path(), "q-node", &["--interval", "200ms", "--count", "3"])
            .status()
            .unwrap()
            .success()
    );
    let (code, text) = check();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("WARNING ibn-sina") && text.contains("cap"), "{text}");
    // The collector gone: unknown.
    let out = std::process::Command::new(jazari_bin())
        .args(["quota", "--check", "--url", "http://127.0.0.1:1", "--token-file"])
        .arg(&c.admin_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("UNKNOWN"));
}

#[test]
fn a_job_without_tensor_work_on_an_ai_partition_is_a_finding() {
    use common::slurm::{FakeJob, config_with_standin, squeue_json, write_atomic};
    // h200-gpm: job 4712 (bob, vision-lab) runs FP64 on GPU 4 with SM 35 % and no tensor work; the
    // stand-in Slurm gives it that GPU alone, in AI partition "ai". Alice's 4711 trains with tensor
    // cores on GPUs 0-3, also in "ai"; neither is a finding until Slurm names the partition.
    let dir = TempDir::new("tensor-idle");
    let file = dir.path().join("squeue.json");
    let now = now_ms() / 1000;
    let jobs = [
        FakeJob::running(4712, "vision-lab", "bob", "rule-tensor", &[4], now - 300).partition("ai"),
        FakeJob::running(4711, "nlp-lab", "alice", "rule-tensor", &[0, 1, 2, 3], now - 300).partition("ai"),
    ];
    write_atomic(&file, &squeue_json(&jobs));
    let cfg = with_alerts(
        &config_with_standin(&file, "1s", &[]),
        &[
            ("evaluate_every", "\"300ms\""),
            ("clear_after", "\"1s\""),
            ("tensor_idle_partitions", "[\"ai\", \"ai-large\"]"),
            ("tensor_idle_after", "\"1s\""),
        ],
    );
    let c = Collector::start_with_config(&cfg);
    let spool = TempDir::new("spool");
    let _agent = Proc(
        agent_run(&c.url, &c.node_token_file, spool.path(), "rule-tensor", &["--interval", "300ms"])
            .env("FAKE_NVML_CONFIG", common::scenario("h200-gpm"))
            .spawn()
            .unwrap(),
    );
    let mut f = Value::Null;
    let tensor = |f: &Value| -> Vec<Value> {
        f["findings"].as_array().unwrap().iter().filter(|x| x["kind"] == "tensor_idle").cloned().collect()
    };
    wait_until("the tensor-idle finding", Duration::from_secs(30), || {
        f = c.get("/api/v1/findings");
        !tensor(&f).is_empty()
    });
    let t = tensor(&f);
    assert_eq!(t.len(), 1, "only bob's job: {f}");
    let x = &t[0];
    assert_eq!((x["job"].as_str(), x["node"].as_str()), (Some("4712"), Some("rule-tensor")), "{x}");
    assert_eq!((x["institute"].as_str(), x["severity"].as_str()), (Some("al-haytham"), Some("info")));
    let msg = x["message"].as_str().unwrap();
    assert!(msg.contains("AI partition ai") && msg.contains("GPU 4: tensor 0%, SM 35%"), "{msg}");
    // Slurm moves the job out of the AI partitions: the finding clears.
    let moved = [jobs[0].clone().partition("cpu"), jobs[1].clone()];
    write_atomic(&file, &squeue_json(&moved));
    wait_until("the tensor-idle finding to clear", Duration::from_secs(20), || {
        tensor(&c.get("/api/v1/findings")).is_empty()
    });
}
