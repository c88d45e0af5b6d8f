//! Helpers for end-to-end tests: a real `jazari serve` process on loopback,
//! tokens made with `jazari token add`, and the real agent with the fake NVML.
#![allow(dead_code)]

pub mod pg;
pub mod receivers;
pub mod slurm;
pub mod tls;

use jazari::client::Client;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn jazari_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jazari"))
}

/// Builds the agent and the fake NVML library (same profile) once.
fn build_agent_side() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = jazari_bin().parent().unwrap().to_path_buf();
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-q", "-p", "jazari-agent", "-p", "fake-nvml"]).current_dir(root());
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        assert!(cmd.status().unwrap().success(), "building the agent failed");
        dir
    })
    .clone()
}

pub fn agent_bin() -> PathBuf {
    build_agent_side().join("jazari-agent")
}

pub fn fake_lib() -> PathBuf {
    build_agent_side().join("libfake_nvml.so")
}

pub fn scenario(name: &str) -> PathBuf {
    root().join("tests/fake-nvml/scenarios").join(format!("{name}.json"))
}

/// A plain HTTP client for requests the product's client does not make (no token, raw bodies).
pub fn http() -> reqwest::blocking::Client {
    jazari::tls::install_provider();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// `GET /metrics` (no token).
pub fn metrics(url: &str) -> String {
    http().get(format!("{url}/metrics")).send().unwrap().text().unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("jazari-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a child process when dropped.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A collector with a fresh store and its tokens.
pub struct Collector {
    pub dir: TempDir,
    pub config: PathBuf,
    pub store: PathBuf,
    pub port: u16,
    pub url: String,
    pub admin: String,
    pub node_token: String,
    pub node_token_file: PathBuf,
    pub admin_file: PathBuf,
    pub proc: Option<Proc>,
}

pub fn token_add(config: &Path, store: &Path, args: &[&str]) -> String {
    let out = Command::new(jazari_bin())
        .args(["token", "add"])
        .args(args)
        .arg("--config")
        .arg(config)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    assert!(out.status.success(), "token add: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Collector {
    pub fn start() -> Self {
        Self::start_with_config(&std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap())
    }

    pub fn start_with_config(config_text: &str) -> Self {
        let dir = TempDir::new("collector");
        let store = pg::store_in(dir.path(), "collector");
        Self::start_on(dir, config_text, store)
    }

    /// A collector on `store` (a SQLite path or a PostgreSQL URL), with new tokens.
    pub fn start_on(dir: TempDir, config_text: &str, store: PathBuf) -> Self {
        let config = dir.path().join("jazari.toml");
        std::fs::write(&config, config_text).unwrap();
        let admin = token_add(&config, &store, &["--admin"]);
        let node_token = token_add(&config, &store, &["--node", "*"]);
        let admin_file = dir.path().join("admin.token");
        let node_token_file = dir.path().join("node.token");
        std::fs::write(&admin_file, &admin).unwrap();
        std::fs::write(&node_token_file, &node_token).unwrap();
        let port = free_port();
        let mut c = Collector {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            config,
            store,
            port,
            admin,
            node_token,
            node_token_file,
            admin_file,
            proc: None,
        };
        c.restart();
        c
    }

    /// A second collector on the same store (a shared PostgreSQL database),
    /// with the same tokens and configuration, on its own port.
    pub fn beside(&self) -> Self {
        let dir = TempDir::new("collector-beside");
        let port = free_port();
        let mut c = Collector {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            config: self.config.clone(),
            store: self.store.clone(),
            port,
            admin: self.admin.clone(),
            node_token: self.node_token.clone(),
            node_token_file: self.node_token_file.clone(),
            admin_file: self.admin_file.clone(),
            proc: None,
        };
        c.restart();
        c
    }

    /// Starts (again) the collector process on the same store and port.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(jazari_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .arg("--store")
            .arg(&self.store)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env("JAZARI_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("collector did not start");
    }

    pub fn stop(&mut self) {
        self.proc = None;
    }

    pub fn admin(&self) -> Client {
        Client::new(&self.url, &self.admin, Duration::from_secs(10))
    }

    pub fn with_token(&self, token: &str) -> Client {
        Client::new(&self.url, token, Duration::from_secs(10))
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        self.admin().get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Usage rows by `group` over a wide period, keyed by group value.
    pub fn usage(&self, group: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
        let v = self.get(&format!("/api/v1/usage?from=2000-01-01&to=2100-01-01&group_by={group}"));
        v["rows"].as_array().unwrap().iter().map(|r| (r[group].as_str().unwrap_or("").to_string(), r.clone())).collect()
    }

    pub fn total(&self, field: &str) -> f64 {
        self.usage("institute").values().map(|r| r[field].as_f64().unwrap()).sum()
    }
}

/// One report of the h200x8 scenario from the real agent, as JSON.
pub fn once_report(node: &str) -> Vec<u8> {
    let out = Command::new(agent_bin())
        .args(["once", "--node", node])
        .env("JAZARI_NVML_LIB", fake_lib())
        .env("FAKE_NVML_CONFIG", scenario("h200x8"))
        .env("JAZARI_PROC_SCOPE", "descendants")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Runs the real agent against the fake NVML, pushing to `url`.
pub fn agent_run(url: &str, token_file: &Path, spool: &Path, node: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(agent_bin());
    c.args(["run", "--collector", url, "--token-file"])
        .arg(token_file)
        .arg("--spool-dir")
        .arg(spool)
        .args(["--node", node])
        .args(extra)
        .env("JAZARI_NVML_LIB", fake_lib())
        .env("FAKE_NVML_CONFIG", scenario("h200x8"))
        // Only the jobs of the processes it started: other tests' and users' jobs on this host stay out.
        .env("JAZARI_PROC_SCOPE", "descendants")
        .env("JAZARI_LOG", "warn");
    c
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// The example config with the Slurm adapter on, running `command` every `interval`.
pub fn config_with_slurm(command: &str, interval: &str) -> String {
    let example = std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap();
    let from = "kind = \"none\"\ncommand = [\"squeue\", \"--json\"]\ninterval = \"30s\"";
    assert!(example.contains(from), "the example's [scheduler] section changed; update tests/common");
    example.replace(from, &format!("kind = \"slurm\"\ncommand = {command}\ninterval = \"{interval}\""))
}

/// Whether this test runs as root (the fake NVML then starts a scenario's
/// processes under the scenario's uids; otherwise as the tester).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Says that a test, or a part of one, is skipped and why, where the normal
/// `cargo test` output shows it (written to stderr directly, not captured);
/// under `CI=true` a skip is a failure.
pub fn skip(why: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true, and this test cannot run: {why}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// `config` with an `[alerts]` table of `settings` appended (the example has its
/// `[alerts]` commented out, with the defaults).
pub fn with_alerts(config: &str, settings: &[(&str, &str)]) -> String {
    let mut out = format!("{config}\n[alerts]\n");
    for (k, v) in settings {
        out += &format!("{k} = {v}\n");
    }
    out
}
