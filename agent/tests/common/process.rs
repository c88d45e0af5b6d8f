//! The agent as a running process: its log read as it comes, a folder of its
//! own, signals.
#![allow(dead_code)]

use super::agent_bin;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> Self {
        let p = std::env::temp_dir().join(format!("jazari-{what}-{}-{}", std::process::id(), super::unique()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The agent binary with a test environment: no NVML (host-only reports),
/// no proxy from the tester's environment, info logs.
pub fn agent_command() -> Command {
    let mut c = Command::new(agent_bin());
    c.env("JAZARI_NVML_LIB", "/nonexistent/libnvidia-ml.so.1").env("JAZARI_LOG", "info");
    for v in
        ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"]
    {
        c.env_remove(v);
    }
    for v in ["JAZARI_CA_FILE", "JAZARI_CERT", "JAZARI_KEY"] {
        c.env_remove(v);
    }
    c
}

/// A running agent whose stderr is collected as it comes.
pub struct Agent {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    pub fn spawn(args: &[&str]) -> Self {
        Self::spawn_cmd(agent_command().args(args))
    }

    pub fn spawn_cmd(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start jazari-agent");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            })
        };
        Self { child, log, reader: Some(reader) }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log holds `needle` (panics after `timeout`, with the log).
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let end = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(Instant::now() < end, "no `{needle}` in the agent's log after {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks the agent to stop (SIGTERM), as systemd does.
    pub fn terminate(&self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    /// Waits for the agent to exit (panics after `timeout`); its status and whole log.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return (status, self.log());
            }
            assert!(Instant::now() < end, "the agent did not stop within {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
