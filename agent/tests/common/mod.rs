//! Helpers for tests that run the real `jazari-agent` binary against the fake NVML library.
#![allow(dead_code)]

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

pub fn scenario(name: &str) -> PathBuf {
    workspace_root().join("tests/fake-nvml/scenarios").join(format!("{name}.json"))
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
