//! End to end: `jazari top` in a real terminal (tmux) against a collector fed by
//! the real agent; keys reach every view and a drill-down, and a node that
//! stopped reporting is found by filtering, opened, and listed as a finding.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux_available() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if !ok {
        skip("tmux is not installed; the dashboard end-to-end test needs it");
    }
    ok
}

struct Tmux(String);
impl Tmux {
    fn keys(&self, k: &[&str]) {
        let mut c = Command::new("tmux");
        c.args(["send-keys", "-t", &self.0]).args(k);
        assert!(c.status().unwrap().success());
    }
    fn screen(&self) -> String {
        String::from_utf8(Command::new("tmux").args(["capture-pane", "-p", "-t", &self.0]).output().unwrap().stdout)
            .unwrap()
    }
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "screen never showed {what:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
    }
}

#[test]
fn top_shows_every_view_and_drills_down() {
    if !tmux_available() {
        return;
    }
    // Nodes report every 2 s here: one that misses 3 intervals is stale after 6 s.
    let example = std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap();
    let from = "interval = \"10s\"\n# A node that missed";
    assert!(example.contains(from), "the example config's [nodes] interval moved");
    let mut c = Collector::start_with_config(&example.replace(from, "interval = \"2s\"\n# A node that missed"));
    let spool = TempDir::new("spool");
    let gone_spool = TempDir::new("spool-gone");
    assert!(
        agent_run(&c.url, &c.node_token_file, gone_spool.path(), "gone-node", &["--interval", "200ms", "--count", "1"])
            .status()
            .unwrap()
            .success()
    );
    let _live = Proc(
        agent_run(&c.url, &c.node_token_file, spool.path(), "real-node", &["--interval", "500ms"]).spawn().unwrap(),
    );
    wait_until("gone-node stale and real-node reporting", Duration::from_secs(20), || {
        let v = c.get("/api/v1/cluster");
        v["summary"]["nodes"] == 2 && v["summary"]["nodes_reporting"] == 1
    });
    let session = format!("jazari-top-{}", std::process::id());
    let cmd = format!(
        "NO_COLOR=1 {} top --url {} --token-file {} --refresh 1s; echo EXITED $? > {}",
        jazari_bin().display(),
        c.url,
        c.admin_file.display(),
        c.dir.path().join("exit").display()
    );
    assert!(
        Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "36", &cmd])
            .status()
            .unwrap()
            .success()
    );
    let t = Tmux(session);
    let s = t.wait_for("GPUs 16");
    assert!(s.contains("ibn-sina") && s.contains("al-biruni"), "{s}");
    assert!(s.contains("idle-allocated 2"), "carol's GPUs: {s}");
    t.keys(&["2"]);
    let s = t.wait_for("sorted by name");
    assert!(s.contains("real-node"), "{s}");
    // The list is brief: the drill-down shows the node once it came whole,
    // fetched even while refresh is paused.
    t.keys(&["p"]);
    t.wait_for("PAUSED");
    t.keys(&["Enter"]);
    let s = t.wait_for("CUDA");
    assert!(s.contains("alice") && s.contains("4711") && s.contains("sleep"), "node detail: {s}");
    t.keys(&["Escape", "p", "Tab"]);
    let s = t.wait_for("running jobs");
    assert!(s.contains("4713") && s.contains("IDLE"), "{s}");
    t.keys(&["Enter"]);
    t.wait_for("GPUs of the job");
    t.keys(&["Escape", "4"]);
    let s = t.wait_for("quota burn-down");
    assert!(s.contains("120,000"), "{s}");
    t.keys(&["5"]);
    t.wait_for("last 24h (w: 1h/24h/7d)");
    t.keys(&["w"]);
    t.wait_for("last 7d (w: 1h/24h/7d)");
    t.keys(&["?"]);
    t.wait_for("Keys (any key closes)");
    t.keys(&["Escape"]);
    // The node that stopped reporting: found by its state, opened, listed as a finding.
    t.keys(&["2", "/"]);
    t.keys(&["-l", "state:stale"]);
    t.keys(&["Enter"]);
    let s = t.wait_for("filter: state:stale");
    let s = if s.contains("gone-node") { s } else { t.wait_for("gone-node") };
    assert!(!s.contains("real-node"), "only the stale node: {s}");
    t.keys(&["Enter"]);
    t.wait_for("gone-node · STALE");
    t.keys(&["Escape", "Escape", "6"]);
    let s = t.wait_for("node_stale");
    assert!(s.contains("gone-node") && s.contains("findings"), "{s}");
    assert!(!s.contains("scheduler/agent") && !s.contains("Slurm allocated"), "{s}");
    t.keys(&["7"]);
    t.wait_for("GPU-hours in");
    // The collector goes away: a banner, and the dashboard keeps running.
    c.stop();
    t.wait_for("collector unreachable");
    c.restart();
    t.keys(&["q"]);
    let exit = c.dir.path().join("exit");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !exit.exists() {
        assert!(Instant::now() < deadline, "q did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(exit).unwrap().trim(), "EXITED 0");
}
