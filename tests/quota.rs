//! End to end: collector + agent (fake NVML) + `jazari quota`.

mod common;
use common::*;
use std::process::Command;

fn quota(c: &Collector, token_file: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(jazari_bin())
        .args(["quota", "--url", &c.url, "--token-file"])
        .arg(token_file)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn quota_shows_use_for_the_scenarios_institutes() {
    let c = Collector::start();
    let spool = TempDir::new("spool");
    assert!(
        agent_run(&c.url, &c.node_token_file, spool.path(), "q1", &["--interval", "300ms", "--count", "3"])
            .status()
            .unwrap()
            .success()
    );
    let out = quota(&c, &c.admin_file, &["--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_id = |id: &str| v["institutes"].as_array().unwrap().iter().find(|i| i["institute"] == id).unwrap().clone();
    for id in ["ibn-sina", "al-haytham", "al-biruni"] {
        let b = by_id(id);
        assert!(b["used_gpu_hours"].as_f64().unwrap() > 0.0, "{id}: {b}");
        assert!(b["in_flight_gpu_hours"].as_f64().unwrap() > 0.0, "{id} has a running job");
        assert_eq!(b["committed_known"], false);
        // No GPM on these GPUs: no SM-active figures (absent, not zero).
        assert!(b.get("sm_active_gpu_hours").is_none() && b.get("gpm_measured_gpu_hours").is_none(), "{b}");
    }
    let ibn = by_id("ibn-sina");
    assert_eq!(ibn["granted_gpu_hours"], 120000.0);
    assert_eq!(ibn["gpus_in_use"], 4);
    assert_eq!(ibn["by_account"][0]["key"], "nlp-lab");
    assert_eq!(by_id("al-jazari")["state"], "no_quota");

    let out = quota(&c, &c.admin_file, &["--format", "table", "--by", "user"]);
    assert!(out.status.success());
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
    assert!(t.contains("alice") && t.contains("al-haytham"), "{t}");

    // An institute token sees only its institute.
    let tok = c.dir.path().join("vision.token");
    std::fs::write(&tok, token_add(&c.config, &c.store, &["--institute", "al-haytham"])).unwrap();
    let out = quota(&c, &tok, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["institutes"].as_array().unwrap().len(), 1);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("alice"));
    let out = quota(&c, &tok, &["--institute", "ibn-sina"]);
    assert!(!out.status.success());

    // Unknown institute: an error listing the known ones.
    let out = quota(&c, &c.admin_file, &["--institute", "atlantis"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("atlantis") && err.contains("ibn-sina") && err.contains("al-jazari"), "{err}");

    // At a past date: another period, nothing used.
    let out = quota(&c, &c.admin_file, &["--format", "json", "--at", "2020-05-01"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["institutes"][0]["period"]["label"], "2020-Q2");
    assert_eq!(v["institutes"][0]["used_gpu_hours"], 0.0);
}

#[test]
fn quota_carries_sm_active_gpu_hours_where_gpm_measures_them() {
    let c = Collector::start();
    let spool = TempDir::new("spool");
    assert!(
        agent_run(&c.url, &c.node_token_file, spool.path(), "q-gpm", &["--interval", "300ms", "--count", "4"])
            .env("FAKE_NVML_CONFIG", scenario("h200-gpm"))
            .status()
            .unwrap()
            .success()
    );
    let out = quota(&c, &c.admin_file, &["--format", "json", "--institute", "ibn-sina"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &v["institutes"][0];
    let (measured, sm) = (b["gpm_measured_gpu_hours"].as_f64().unwrap(), b["sm_active_gpu_hours"].as_f64().unwrap());
    // Alice's job on GPUs 0-3 (SM active 18, 88.5, 91, 47.5 %): measured within what it used.
    assert!(measured > 0.0 && measured <= b["used_gpu_hours"].as_f64().unwrap() + 1e-9, "{b}");
    assert!((sm / measured - (18.0 + 88.5 + 91.0 + 47.5) / 400.0).abs() < 1e-6, "{b}");
    let out = quota(&c, &c.admin_file, &["--institute", "ibn-sina"]);
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(t.contains("SM active") && t.contains("measured by GPM (61%)"), "{t}");
}
