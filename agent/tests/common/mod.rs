//! Helpers for tests that run the real `jazari-agent` binary against the fake
//! NVML library, or against a stand-in collector.
#![allow(dead_code)]

pub mod collector;
pub mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jazari-agent"))
}

/// Path of `libfake_nvml.so`, built on first use with the same profile as this test.
pub fn fake_lib() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = agent_bin().parent().unwrap().to_path_buf();
        let release = dir.ends_with("release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-q", "-p", "fake-nvml"]).current_dir(workspace_root());
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo to build fake-nvml");
        assert!(status.success(), "building fake-nvml failed");
        let lib = dir.join("libfake_nvml.so");
        assert!(lib.exists(), "no {}", lib.display());
        lib
    })
    .clone()
}

/// The scenario file as written in the repository.
pub fn scenario_file(name: &str) -> PathBuf {
    workspace_root().join("tests/fake-nvml/scenarios").join(format!("{name}.json"))
}

/// A copy of a scenario whose Slurm job ids are unique to this copy: the
/// agent counts a job's processes over the whole host, so another run of the
/// same scenario (or a real job) on this host must never carry the same id.
pub struct Scenario {
    path: PathBuf,
    /// Job id in the scenario file → job id in this copy.
    pub jobs: BTreeMap<String, String>,
}

impl Scenario {
    /// This copy's id for the scenario's job `original`.
    pub fn job(&self, original: &str) -> String {
        self.jobs.get(original).unwrap_or_else(|| panic!("no job {original} in the scenario")).clone()
    }

    /// The jobs of a report that belong to this scenario, in report order.
    pub fn own_jobs<'a>(&self, jobs: &'a [jazari_wire::Job]) -> Vec<&'a jazari_wire::Job> {
        jobs.iter().filter(|j| self.jobs.values().any(|id| *id == j.id)).collect()
    }
}

impl std::ops::Deref for Scenario {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A random number, different in every test process and call.
pub fn unique() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).expect("read /dev/urandom");
    u64::from_le_bytes(b)
}

/// A hermetic copy of the scenario `name` (see [`Scenario`]). Numeric ids stay
/// numeric and keep their order.
pub fn scenario(name: &str) -> Scenario {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scenario_file(name)).unwrap()).expect("scenario JSON");
    let base = unique() % 1_000_000 + 1;
    let mut jobs = BTreeMap::new();
    if let Some(procs) = doc.get_mut("processes").and_then(|p| p.as_object_mut()) {
        for p in procs.values_mut() {
            let Some(id) = p.pointer_mut("/env/SLURM_JOB_ID") else { continue };
            let original = id.as_str().expect("SLURM_JOB_ID is a string").to_string();
            let n: u64 = original.parse().expect("numeric job ids in scenarios");
            let new = (base * 1_000_000 + n).to_string();
            *id = serde_json::Value::String(new.clone());
            jobs.insert(original, new);
        }
    }
    let path = std::env::temp_dir().join(format!("jazari-scenario-{name}-{}-{base}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    Scenario { path, jobs }
}

/// Runs the agent with the fake NVML library on a scenario.
pub fn run_agent(scenario_path: &Path, args: &[&str]) -> Output {
    Command::new(agent_bin())
        .args(args)
        .env("JAZARI_NVML_LIB", fake_lib())
        .env("FAKE_NVML_CONFIG", scenario_path)
        .env("JAZARI_LOG", "info")
        .output()
        .expect("run jazari-agent")
}

/// Parses every JSON line of stdout.
pub fn reports(out: &Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "agent failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a report per line"))
        .collect()
}

/// Whether this test runs as root: the fake NVML starts a scenario's processes
/// under the scenario's uids only then (otherwise they are the tester's own).
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
