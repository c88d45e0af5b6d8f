//! End to end: two real collectors of two clusters, each fed by the real
//! agent, seen at once by `jazari quota`, `jazari report` (each cluster, and
//! the network's totals) and `jazari top`; when one goes away, the other is
//! still shown, the missing one is named (on stderr, with exit status 3; in
//! the dashboard's header).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// A collector whose cluster is `name`, with one node's reports in it.
fn cluster(name: &str) -> Collector {
    let example = std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap();
    assert!(example.contains("cluster = \"jazari-demo\""), "the example's cluster name moved");
    let c =
        Collector::start_with_config(&example.replace("cluster = \"jazari-demo\"", &format!("cluster = \"{name}\"")));
    let spool = TempDir::new("spool");
    let node = format!("{name}-node");
    let ok = agent_run(&c.url, &c.node_token_file, spool.path(), &node, &["--interval", "300ms", "--count", "3"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "the agent of {name}");
    c
}

/// `jazari ARGS` with a client file naming both collectors, each with its own token.
fn jazari(config_home: &Path, args: &[&str]) -> Output {
    Command::new(jazari_bin())
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("JAZARI_URL")
        .env_remove("JAZARI_TOKEN_FILE")
        .output()
        .unwrap()
}

/// `jazari top` in a tmux session, when tmux is there.
struct Top(String);
impl Top {
    fn start(config_home: &Path) -> Option<Top> {
        if !Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success()) {
            skip("tmux is not installed; the dashboard part of the network test needs it");
            return None;
        }
        let name = format!("jazari-network-{}", std::process::id());
        let cmd = format!(
            "env -u JAZARI_URL -u JAZARI_TOKEN_FILE XDG_CONFIG_HOME={} NO_COLOR=1 {} top --refresh 500ms",
            config_home.display(),
            jazari_bin().display()
        );
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "30", &cmd])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        Some(Top(name))
    }
    fn keys(&self, k: &[&str]) {
        assert!(Command::new("tmux").args(["send-keys", "-t", &self.0]).args(k).status().unwrap().success());
    }
    fn wait_for(&self, what: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().unwrap();
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            if s.contains(what) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "the dashboard never showed {what:?}:\n{s}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}
impl Drop for Top {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn quota_and_report_show_both_clusters_and_the_network() {
    let east = cluster("east");
    let mut west = cluster("west");
    let home = TempDir::new("client-config");
    std::fs::create_dir_all(home.path().join("jazari")).unwrap();
    let client = format!(
        "[[collector]]\nname = \"east\"\nurl = \"{}\"\ntoken_file = \"{}\"\n\n[[collector]]\nname = \"west\"\nurl = \"{}\"\ntoken_file = \"{}\"\n",
        east.url,
        east.admin_file.display(),
        west.url,
        west.admin_file.display()
    );
    std::fs::write(home.path().join("jazari/client.toml"), client).unwrap();
    let home = home.path();

    // Quota, with --url twice (each takes its token from its [[collector]] table).
    let v = json(&jazari(home, &["quota", "--url", &east.url, "--url", &west.url, "--format", "json"]));
    let clusters = v["clusters"].as_array().unwrap();
    assert_eq!((clusters[0]["cluster"].as_str(), clusters[1]["cluster"].as_str()), (Some("east"), Some("west")));
    let used = |c: &Value, id: &str| {
        f(&c["institutes"].as_array().unwrap().iter().find(|i| i["institute"] == id).unwrap()["used_gpu_hours"])
    };
    let ibn = v["totals"]["institutes"].as_array().unwrap().iter().find(|i| i["institute"] == "ibn-sina").unwrap();
    assert!(used(&clusters[0], "ibn-sina") > 0.0 && used(&clusters[1], "ibn-sina") > 0.0);
    assert!((f(&ibn["used_gpu_hours"]) - used(&clusters[0], "ibn-sina") - used(&clusters[1], "ibn-sina")).abs() < 1e-9);
    assert_eq!(ibn["gpus_in_use"], 8, "4 GPUs in each cluster: {ibn}");
    assert_eq!(ibn["granted_gpu_hours"], 240000.0);
    assert_eq!(v["totals"]["clusters_answered"], 2);
    let out = jazari(home, &["quota", "--by", "user"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(
        t.contains("Cluster east · ") && t.contains("Cluster west · ") && t.contains("Network (2 clusters)"),
        "{t}"
    );
    assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
    let out = jazari(home, &["quota", "--check"]);
    let lines = String::from_utf8(out.stdout).unwrap();
    assert!(lines.contains(" east/ibn-sina: ") && lines.contains(" west/ibn-sina: "), "{lines}");

    // Report over both clusters: each cluster's report and the sums.
    let now = jazari::time::now_ms();
    let (from, to) =
        (jazari::time::format_date(now - jazari::time::DAY_MS), jazari::time::format_date(now + jazari::time::DAY_MS));
    let report = ["report", "--from", &from, "--to", &to];
    let v = json(&jazari(home, &[&report[..], &["--format", "json"]].concat()));
    let reports = v["clusters"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0]["cluster_name"].as_str(), reports[1]["cluster_name"].as_str()),
        (Some("east"), Some("west"))
    );
    let net = &v["network"];
    for field in ["allocated_gpu_hours", "utilised_gpu_hours", "idle_allocated_gpu_hours", "energy_kwh"] {
        let sum = f(&reports[0]["cluster"][field]) + f(&reports[1]["cluster"][field]);
        assert!((f(&net["total"][field]) - sum).abs() < 1e-9, "{field}: {} vs {sum}", net["total"][field]);
    }
    assert!(f(&net["total"]["allocated_gpu_hours"]) > 0.0, "{net}");
    let ibn = net["institutes"].as_array().unwrap().iter().find(|i| i["id"] == "ibn-sina").unwrap();
    assert_eq!(ibn["clusters"], serde_json::json!(["east", "west"]));
    // Each cluster's part is that cluster's own report.
    let alone = json(&jazari(
        home,
        &[&report[..], &["--format", "json", "--url", &east.url, "--token-file"], &[east.admin_file.to_str().unwrap()]]
            .concat(),
    ));
    assert_eq!(alone["cluster_name"], "east");
    assert_eq!(alone["cluster"]["allocated_gpu_hours"], reports[0]["cluster"]["allocated_gpu_hours"]);
    for (format, want) in [("md", "## Network"), ("html", "<h2>Network</h2>"), ("csv", "\nwest,cluster,,west,")] {
        let out = jazari(home, &[&report[..], &["--format", format]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(want) && text.contains("east") && text.contains("west"), "{format}: {text}");
    }

    // The dashboard over both: the network and each cluster; it keeps going when west goes away.
    let top = Top::start(home);
    if let Some(t) = &top {
        let s = t.wait_for("network of 2: ");
        assert!(s.contains("east 8 GPUs") && s.contains("west 8 GPUs"), "{s}");
        t.keys(&["2"]);
        let s = t.wait_for("west/west-node");
        assert!(s.contains("east/east-node"), "{s}");
    }

    // West goes away: east is still shown, west is named, exit status 3.
    west.stop();
    if let Some(t) = &top {
        let s = t.wait_for("west unreachable (");
        assert!(s.contains("east/east-node") && s.contains("network of 2 (1 answering)"), "{s}");
        t.keys(&["q"]);
    }
    let out = jazari(home, &["quota", "--url", &east.url, "--url", &west.url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cluster west unreachable: "), "{err}");
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("Cluster east · ") && t.contains("1 of 2 clusters; no answer from west"), "{t}");
    let file = TempDir::new("report-out");
    let path = file.path().join("network.md");
    let out = jazari(home, &[&report[..], &["--format", "md", "--out", path.to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cluster west unreachable: "), "{err}");
    let md = std::fs::read_to_string(&path).unwrap();
    assert!(md.contains("## GPU usage report: east") && md.contains("Incomplete: no answer from west"), "{md}");
    let out = jazari(home, &["quota", "--check"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("UNKNOWN cluster west unreachable: "));
}
