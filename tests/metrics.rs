//! `/metrics` end to end, on a collector fed by the real agent over the fake
//! NVML: a scrape passes `promtool check metrics`; a real Prometheus scrapes
//! it (with the metrics token) and answers what the collector's JSON API
//! says; the Grafana dashboard asks only for metrics a scrape has.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Families every fed collector exports.
const EXPECTED: &[&str] = &[
    "jazari_build_info",
    "jazari_nodes",
    "jazari_gpus",
    "jazari_gpu_utilization_ratio",
    "jazari_gpu_memory_used_bytes",
    "jazari_gpu_memory_total_bytes",
    "jazari_gpu_temperature_celsius",
    "jazari_gpu_power_watts",
    "jazari_gpu_sm_clock_hertz",
    "jazari_gpu_allocated",
    "jazari_gpu_idle_allocated",
    "jazari_gpu_energy_joules_total",
    "jazari_gpu_ecc_errors_total",
    "jazari_gpu_xid_events_total",
    "jazari_node_last_report_timestamp_seconds",
    "jazari_institute_allocated_gpu_seconds_total",
    "jazari_institute_busy_gpu_seconds_total",
    "jazari_institute_idle_allocated_gpu_seconds_total",
    "jazari_quota_granted_gpu_seconds",
    "jazari_quota_used_gpu_seconds",
    "jazari_reports_accepted_total",
    "jazari_reports_refused_total",
    "jazari_ingest_batch_duration_seconds_bucket",
    "jazari_store_write_duration_seconds_count",
    "jazari_store_read_duration_seconds_sum",
];

/// A collector with two nodes reported by the real agent: `gpu-a1` (8 H200,
/// three jobs) and `gpu-x1` (an XID 79 pending), three reports each; and
/// one report refused (no token).
fn fed(config: &str) -> Collector {
    let c = Collector::start_with_config(config);
    let refused = http().post(format!("{}/api/v1/reports", c.url)).body("{}").send().unwrap();
    assert_eq!(refused.status(), 401);
    let spool = TempDir::new("spool");
    for (node, scenario_name) in [("gpu-a1", "h200x8"), ("gpu-x1", "xid79")] {
        let status = agent_run(&c.url, &c.node_token_file, &spool.path().join(node), node, &["--interval", "300ms"])
            .args(["--count", "3"])
            .env("FAKE_NVML_CONFIG", scenario(scenario_name))
            .status()
            .unwrap();
        assert!(status.success(), "agent for {node}");
    }
    c
}

fn example() -> String {
    std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap()
}

/// Sample names of a Prometheus text scrape.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

#[test]
fn a_real_scrape_passes_promtool() {
    if !have("promtool") {
        return skip("promtool is not installed (Debian package prometheus)");
    }
    let c = fed(&example());
    let text = metrics(&c.url);
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        lint.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let names = sample_names(&text);
    for n in EXPECTED {
        assert!(names.contains(*n), "no {n} in\n{text}");
    }
    assert!(text.contains(r#"jazari_gpu_xid_events_total{cluster="jazari-demo",node="gpu-x1",gpu="1","#), "{text}");
    // Attribution stays in the ledger: no job, user or process on any series.
    for private in ["4711", "alice", "job=", "user=", "pid="] {
        assert!(!text.contains(private), "`{private}` in\n{text}");
    }
    // What Prometheus asks for: OpenMetrics, encoded by the library.
    let om = http()
        .get(format!("{}/metrics", c.url))
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
        .send()
        .unwrap();
    assert_eq!(om.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let om = om.text().unwrap();
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE jazari_gpu_energy_joules counter\n# UNIT jazari_gpu_energy_joules joules\n"), "{om}");
}

#[test]
fn the_grafana_dashboard_asks_only_for_exported_metrics() {
    let c = fed(&example());
    let exported = sample_names(&metrics(&c.url));
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("config/grafana-dashboard.json")).unwrap())
            .expect("config/grafana-dashboard.json is JSON");
    let mut queries = vec![];
    collect_queries(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut used = BTreeSet::new();
    for q in &queries {
        let names = metric_names(q);
        assert!(!names.is_empty(), "a query without a jazari metric: {q}");
        used.extend(names);
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(unknown.is_empty(), "the dashboard asks for metrics the collector does not export: {unknown:?}");
    let vars: Vec<&str> =
        dashboard["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    for v in ["DS_PROMETHEUS", "cluster", "institute", "node"] {
        assert!(vars.contains(&v), "no variable {v}: {vars:?}");
    }
}

/// PromQL of panels (`expr`) and of variables (`query`, `definition`).
fn collect_queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains("jazari_") => out.push(s.clone()),
                    _ => collect_queries(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_queries(x, out)),
        _ => {}
    }
}

/// The `jazari_…` names in a query.
fn metric_names(q: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = q;
    while let Some(i) = rest.find("jazari_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// A Prometheus server, killed when dropped (also when the test panics).
struct Prometheus {
    _proc: Proc,
    url: String,
    log: std::path::PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target_port: u16, token_file: &Path) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        let yml = [
            "global:".to_string(),
            "  scrape_interval: 1s".into(),
            "  scrape_timeout: 1s".into(),
            "scrape_configs:".into(),
            "  - job_name: jazari".into(),
            "    authorization:".into(),
            format!("      credentials_file: {}", token_file.display()),
            "    static_configs:".into(),
            format!("      - targets: ['127.0.0.1:{target_port}']"),
        ];
        std::fs::write(&config, yml.join("\n") + "\n").unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Prometheus { _proc: Proc(child), url: format!("http://127.0.0.1:{port}"), log }
    }

    /// The value of an instant query that selects one series, if it does.
    fn value(&self, query: &str) -> Option<f64> {
        let q = serde_urlencoded::to_string([("query", query)]).unwrap();
        let body = http().get(format!("{}/api/v1/query?{q}", self.url)).send().ok()?.text().ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    fn wait_for(&self, what: &str, query: &str, want: f64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while std::time::Instant::now() < deadline {
            if self.value(query).is_some_and(|v| close(v, want)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "Prometheus: {what}: `{query}` is {:?}, not {want}; its log ends:\n{}",
            self.value(query),
            tail.join("\n")
        );
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn prometheus_scrapes_with_the_token_and_agrees_with_the_api() {
    if !have("prometheus") {
        return skip("prometheus is not installed (Debian package prometheus)");
    }
    let secrets = TempDir::new("metrics-token");
    let token_file = secrets.path().join("metrics.token");
    std::fs::write(&token_file, "s3cret-for-scrapers\n").unwrap();
    let config = example()
        .replace("metrics_cache = \"5s\"", "metrics_cache = \"1s\"")
        // The nodes stay reporting while Prometheus starts and scrapes.
        .replace("stale_after_intervals = 3", "stale_after_intervals = 100")
        .replace(
            "# metrics_token_file = \"/etc/jazari/metrics.token\"",
            &format!("metrics_token_file = \"{}\"", token_file.display()),
        );
    assert!(config.contains("metrics_token_file = \"/"), "the example's [server] section changed");
    let c = fed(&config);
    // Without the secret, or with another token: refused, and the refusal names the setting.
    let no = http().get(format!("{}/metrics", c.url)).send().unwrap();
    assert_eq!(no.status(), 401);
    assert!(no.text().unwrap().contains("server.metrics_token_file"));
    let admin = http().get(format!("{}/metrics", c.url)).bearer_auth(&c.admin).send().unwrap();
    assert_eq!(admin.status(), 401, "an admin token is not the metrics secret");
    let ok = http().get(format!("{}/metrics", c.url)).bearer_auth("s3cret-for-scrapers").send().unwrap();
    assert_eq!(ok.status(), 200);

    let p = Prometheus::start(secrets.path(), c.port, &token_file);
    p.wait_for("the collector is up", "up{job=\"jazari\"}", 1.0);
    // The reports the collector took in, as its coverage counts them.
    let coverage = c.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01");
    let reports: f64 = coverage["nodes"].as_array().unwrap().iter().map(|n| n["reports"].as_f64().unwrap()).sum();
    assert_eq!(reports, 6.0);
    p.wait_for("reports accepted", "jazari_reports_accepted_total", reports);

    let cluster = c.get("/api/v1/cluster");
    let node = cluster["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "gpu-a1").unwrap();
    let gpu = node["gpus"].as_array().unwrap().iter().find(|g| g["index"] == 2).unwrap();
    let util = gpu["util_gpu_pct"].as_f64().unwrap() / 100.0;
    assert!(util > 0.0);
    p.wait_for("GPU 2's utilisation", "jazari_gpu_utilization_ratio{node=\"gpu-a1\",gpu=\"2\"}", util);
    let uuid = gpu["uuid"].as_str().unwrap();
    let power = gpu["power_mw"].as_f64().unwrap() / 1000.0;
    p.wait_for("its power", &format!("jazari_gpu_power_watts{{uuid=\"{uuid}\"}}"), power);
    let last = node["last_seen_ms"].as_f64().unwrap() / 1000.0;
    p.wait_for("the last report", "jazari_node_last_report_timestamp_seconds{node=\"gpu-a1\"}", last);
    let idle = cluster["summary"]["gpus_idle_allocated"].as_f64().unwrap();
    p.wait_for("idle-allocated GPUs", "jazari_gpus{state=\"idle_allocated\"}", idle);
    p.wait_for("idle-allocated gauges", "sum(jazari_gpu_idle_allocated)", idle);
    // The ledger's totals per institute, against the usage API.
    for (institute, row) in c.usage("institute").into_iter().filter(|(i, _)| !i.is_empty()) {
        let allocated = row["allocated_gpu_seconds"].as_f64().unwrap();
        let q = format!("jazari_institute_allocated_gpu_seconds_total{{institute=\"{institute}\"}}");
        p.wait_for(&format!("{institute}'s allocated GPU-seconds"), &q, allocated);
    }
}
