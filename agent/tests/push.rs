//! The real agent pushing to a stand-in collector that refuses, splits and
//! puts aside: what is retried, what is halved, what goes to the dead letters.

mod common;
use common::collector::{Answer, Collector, Request};
use common::process::{Agent, TempDir, agent_command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A node's folder: a token file and a spool folder.
struct Node {
    dir: TempDir,
}

impl Node {
    fn new(token: &str) -> Self {
        let dir = TempDir::new("push");
        std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
        Self { dir }
    }
    fn token_file(&self) -> String {
        self.dir.join("token").display().to_string()
    }
    fn spool(&self) -> String {
        self.dir.join("spool").display().to_string()
    }
    fn dead_letters(&self) -> std::path::PathBuf {
        self.dir.join("spool").join("dead-letter.ndjson")
    }
    /// `run` towards `url`, with these extra arguments.
    fn run(&self, url: &str, extra: &[&str]) -> Agent {
        let (tok, spool) = (self.token_file(), self.spool());
        let mut args = vec!["run", "--collector", url, "--token-file", &tok, "--spool-dir", &spool];
        args.extend_from_slice(extra);
        Agent::spawn(&args)
    }
}

/// The collector refuses the first two tries with `status`, then accepts.
fn refused_twice_then_accepted(status: u16, message: &'static str) -> (Collector, Node, String) {
    let tries = AtomicU32::new(0);
    let c = Collector::start(move |_| {
        if tries.fetch_add(1, Ordering::Relaxed) < 2 { Answer::error(status, message) } else { Answer::ok() }
    });
    let node = Node::new("secret-token-1");
    let agent = node.run(&c.url(), &["--count", "3", "--interval", "100ms", "--linger", "30s"]);
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    (c, node, log)
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn a_refused_token_is_retried_never_put_aside_and_delivered_once_accepted() {
    let (c, node, log) = refused_twice_then_accepted(401, "unknown token");
    assert_eq!(sorted(c.accepted()), [0, 1, 2]);
    assert!(!node.dead_letters().exists(), "nothing put aside:\n{log}");
    let loud: Vec<_> = log.lines().filter(|l| l.contains("ERROR") && l.contains("refuses this node's token")).collect();
    assert_eq!(loud.len(), 1, "said once while it lasts:\n{log}");
    assert!(loud[0].contains("401: unknown token"), "the collector's message: {}", loud[0]);
    assert!(loud[0].contains(&node.token_file()), "names the token file: {}", loud[0]);
    assert!(!log.contains("secret-token-1"), "the token is never logged:\n{log}");
    assert!(c.requests().iter().all(|(r, _)| r.authorization.as_deref() == Some("Bearer secret-token-1")));
}

#[test]
fn a_forbidden_token_is_retried_never_put_aside() {
    let (c, node, log) = refused_twice_then_accepted(403, "token revoked");
    assert_eq!(sorted(c.accepted()), [0, 1, 2]);
    assert!(!node.dead_letters().exists(), "{log}");
    assert!(log.contains("403: token revoked"), "{log}");
}

#[test]
fn a_wrong_path_is_retried_never_put_aside() {
    let (c, node, log) = refused_twice_then_accepted(404, "no route");
    assert_eq!(sorted(c.accepted()), [0, 1, 2]);
    assert!(!node.dead_letters().exists(), "{log}");
    assert!(log.contains("no report endpoint") && log.contains("/api/v1/reports (404: no route)"), "{log}");
}

#[test]
fn a_rotated_token_is_read_again_without_a_restart() {
    let c = Collector::start(|r: &Request| {
        if r.authorization.as_deref() == Some("Bearer new-token-2") {
            Answer::ok()
        } else {
            Answer::error(401, "unknown token")
        }
    });
    let node = Node::new("old-token-1");
    let agent = node.run(&c.url(), &["--count", "2", "--interval", "100ms", "--linger", "30s"]);
    agent.wait_log("refuses this node's token", Duration::from_secs(20));
    std::fs::write(node.dir.join("token"), "new-token-2\n").unwrap();
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    assert_eq!(sorted(c.accepted()), [0, 1], "{log}");
    assert!(log.contains("token file changed"), "{log}");
    assert!(!log.contains("old-token-1") && !log.contains("new-token-2"), "tokens are never logged:\n{log}");
}

#[test]
fn too_large_batches_are_halved_and_a_report_refused_alone_is_put_aside() {
    // Busy at first, so reports pile up into one batch; then at most two
    // reports a request; seq 3 is too large even alone, seq 4 invalid.
    let tries = AtomicU32::new(0);
    let c = Collector::start(move |r: &Request| {
        let seqs = r.seqs();
        if tries.fetch_add(1, Ordering::Relaxed) == 0 {
            Answer::busy()
        } else if seqs.contains(&4) {
            Answer::error(422, "gpus[0].util_gpu_pct over 100")
        } else if seqs.len() > 2 || seqs.contains(&3) {
            Answer::error(413, "body over the limit")
        } else {
            Answer::ok()
        }
    });
    let node = Node::new("tok");
    let agent = node.run(&c.url(), &["--count", "8", "--interval", "50ms", "--linger", "30s"]);
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    assert_eq!(sorted(c.accepted()), [0, 1, 2, 5, 6, 7], "{log}");
    let sizes: Vec<usize> = c.requests().iter().map(|(r, _)| r.reports.len()).collect();
    assert!(sizes.iter().any(|&n| n > 2), "a batch was sent whole first: {sizes:?}");
    assert!(log.contains("sending it in halves"), "{log}");
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(node.dead_letters())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let put_aside: Vec<_> =
        letters.iter().map(|l| (l["report"]["seq"].as_u64().unwrap(), l["status"].as_u64().unwrap())).collect();
    assert_eq!(put_aside, [(3, 413), (4, 422)]);
    assert_eq!(letters[1]["error"], "gpus[0].util_gpu_pct over 100");
    assert!(log.contains("(422: gpus[0].util_gpu_pct over 100)"), "the collector's message is logged:\n{log}");
}

#[test]
fn spool_replay_sends_what_is_waiting_and_dead_letters_on_request() {
    // A collector that is away: the agent keeps everything in its spool.
    let node = Node::new("tok");
    let away = Collector::start(|_| Answer::busy());
    let agent = node.run(&away.url(), &["--count", "5", "--interval", "20ms", "--linger", "1ms"]);
    let (exit, log) = agent.wait(Duration::from_secs(30));
    assert!(exit.success(), "{log}");
    drop(away);
    let inspect = agent_command().args(["spool", "inspect", "--json", "--spool-dir", &node.spool()]).output().unwrap();
    let found: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(found["waiting"], 5);
    // Replay: seq 2 is invalid for good.
    let c = Collector::start(
        |r: &Request| {
            if r.seqs().contains(&2) { Answer::error(400, "bad report") } else { Answer::ok() }
        },
    );
    let url = c.url();
    let tok = node.token_file();
    let spool = node.spool();
    let out = agent_command()
        .args(["spool", "replay", "--spool-dir", &spool, "--collector", &url, "--token-file", &tok])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("replaying 5 reports"), "{stderr}");
    assert!(stdout.contains("accepted 4, refused for good 1"), "{stdout}");
    assert_eq!(sorted(c.accepted()), [0, 1, 3, 4]);
    // The dead letter, once the collector takes it.
    c.set_answer(|_| Answer::ok());
    let out = agent_command()
        .args(["spool", "replay", "--dead-letters", "--spool-dir", &spool, "--collector", &url, "--token-file", &tok])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("accepted 1, refused again 0"), "{stdout}");
    assert_eq!(sorted(c.accepted()), [0, 1, 2, 3, 4]);
    assert!(!node.dead_letters().exists());
    let inspect = agent_command().args(["spool", "inspect", "--spool-dir", &spool]).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("waiting       0 reports") && text.contains("dead letters  0 reports"), "{text}");
}

#[test]
fn replay_refuses_a_spool_the_agent_is_using() {
    let node = Node::new("tok");
    let c = Collector::start(|_| Answer::busy());
    let agent = node.run(&c.url(), &["--interval", "50ms"]);
    agent.wait_log("agent running", Duration::from_secs(20));
    let out = agent_command()
        .args([
            "spool",
            "replay",
            "--spool-dir",
            &node.spool(),
            "--collector",
            &c.url(),
            "--token-file",
            &node.token_file(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use by another jazari-agent") && stderr.contains(&agent.pid().to_string()), "{stderr}");
}

#[test]
fn on_sigterm_sampling_stops_and_the_spool_is_still_delivered_during_the_linger() {
    let start = std::time::Instant::now();
    let c =
        Collector::start(move |_| if start.elapsed() < Duration::from_secs(2) { Answer::busy() } else { Answer::ok() });
    let node = Node::new("tok");
    let agent = node.run(&c.url(), &["--interval", "50ms", "--linger", "30s"]);
    agent.wait_log("collector answered 503", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    agent.terminate();
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    let got = sorted(c.accepted());
    assert!(got.len() >= 3, "{got:?}");
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>(), "everything sampled, delivered:\n{log}");
    assert!(!log.contains("stopping with reports in the spool"), "{log}");
}
