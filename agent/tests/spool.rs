//! The real agent's spool against damage and a full disk: every report is
//! delivered, or counted and named (sequence range) as dropped.

mod common;
use common::collector::{Answer, Collector};
use common::process::{Agent, TempDir, agent_command};
use common::{is_root, skip};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A node's folder: a token file and a spool folder (at `spool`).
fn node(spool: &Path) -> (TempDir, Vec<String>) {
    let dir = TempDir::new("spool");
    std::fs::write(dir.join("token"), "tok\n").unwrap();
    let args = vec![
        "--token-file".to_string(),
        dir.join("token").display().to_string(),
        "--spool-dir".to_string(),
        spool.display().to_string(),
        "--node".to_string(),
        "spool-test".to_string(),
    ];
    (dir, args)
}

fn run(collector: &Collector, node_args: &[String], extra: &[&str]) -> Agent {
    let mut cmd = agent_command();
    cmd.args(["run", "--collector", &collector.url()]).args(node_args).args(extra);
    Agent::spawn_cmd(&mut cmd)
}

/// (offset, length) of each record of a segment file, read by its format.
fn records(seg: &Path) -> Vec<(usize, usize)> {
    let b = std::fs::read(seg).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= b.len() {
        let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, 8 + len));
        at += 8 + len;
    }
    out
}

fn inspect(spool: &Path) -> Value {
    let out = agent_command().args(["spool", "inspect", "--json", "--spool-dir"]).arg(spool).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn damaged_records_are_skipped_named_and_the_intact_ones_after_them_delivered() {
    let dir = TempDir::new("damage");
    let spool = dir.join("spool");
    let (_n, args) = node(&spool);
    // Twelve reports kept in the spool while the collector is away.
    let away = Collector::start(|_| Answer::busy());
    let (exit, log) =
        run(&away, &args, &["--count", "12", "--interval", "20ms", "--linger", "1ms"]).wait(Duration::from_secs(30));
    assert!(exit.success(), "{log}");
    drop(away);
    let seg = spool.join("0000000000000000.seg");
    let recs = records(&seg);
    assert_eq!(recs.len(), 12);
    let mut bytes = std::fs::read(&seg).unwrap();
    // Record 3's length field is corrupt, record 7's payload has a flipped bit,
    // and a crash tore a write at the end (header and half a payload).
    bytes[recs[3].0 + 2] ^= 0x10;
    bytes[recs[7].0 + 8 + 20] ^= 0x01;
    let torn = bytes[recs[11].0..recs[11].0 + recs[11].1 / 2].to_vec();
    bytes.extend_from_slice(&torn);
    std::fs::write(&seg, &bytes).unwrap();

    let found = inspect(&spool);
    assert_eq!(found["waiting"], 10);
    let damaged = found["damaged"].as_array().unwrap();
    let sides: Vec<(Value, Value)> =
        damaged.iter().map(|d| (d["before"]["seq"].clone(), d["after"]["seq"].clone())).collect();
    assert_eq!(sides, [(2.into(), 4.into()), (6.into(), 8.into()), (11.into(), Value::Null)], "{found:#}");
    assert_eq!(found["streams"][0]["missing"], 2);
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "inspect changes nothing");

    let c = Collector::start(|_| Answer::ok());
    let (exit, log) = run(&c, &args, &["--count", "1", "--linger", "20s"]).wait(Duration::from_secs(30));
    assert!(exit.success(), "{log}");
    let mut by_instance: std::collections::BTreeMap<String, BTreeSet<u64>> = Default::default();
    for (r, _) in c.requests() {
        for rep in r.reports {
            by_instance
                .entry(rep["instance"].as_str().unwrap().into())
                .or_default()
                .insert(rep["seq"].as_u64().unwrap());
        }
    }
    let mut sets: Vec<BTreeSet<u64>> = by_instance.into_values().collect();
    sets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    assert_eq!(sets, [BTreeSet::from([0, 1, 2, 4, 5, 6, 8, 9, 10, 11]), BTreeSet::from([0])], "{log}");
    assert_eq!(c.accepted().len(), 11, "the ten intact reports and the new one, each once");
    assert!(log.contains("bytes holding no whole record"), "the torn write is cut and said:\n{log}");
    let skipped: Vec<_> = log.lines().filter(|l| l.contains("damaged bytes")).collect();
    assert_eq!(skipped.len(), 2, "{log}");
    assert!(
        skipped[0].contains("between seq 2 of spool-test/") && skipped[0].contains("and seq 4 of"),
        "{}",
        skipped[0]
    );
    assert!(skipped[1].contains("checksum mismatch") && skipped[1].contains("between seq 6"), "{}", skipped[1]);
    assert!(log.contains("damaged_ranges=2"), "counted: {log}");
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&at).output();
        match out {
            Ok(o) if o.status.success() => Ok(Self(at)),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Runs only as root (it mounts a tmpfs); elsewhere it says so, and fails under CI.
fn tmpfs_or_skip(at: PathBuf) -> Option<Tmpfs> {
    if !is_root() {
        skip("not root: mounting a small tmpfs to fill the disk needs root");
        return None;
    }
    match Tmpfs::mount(at, "256k") {
        Ok(m) => Some(m),
        Err(e) => {
            skip(&format!("cannot mount a tmpfs: {e}"));
            None
        }
    }
}

/// The sequence ranges `first..=last` named in log lines containing `what`.
fn ranges(log: &str, what: &str) -> Vec<(u64, u64, u64)> {
    log.lines()
        .filter(|l| l.contains(what))
        .map(|l| {
            let count: u64 = l.split(what).nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
            let seq = l.split("(seq ").nth(1).expect("a seq range").split_whitespace().next().unwrap();
            let (a, b) = seq.split_once("..=").unwrap();
            (count, a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

fn stat(log: &str, key: &str) -> u64 {
    let line = log.lines().find(|l| l.contains("agent stopped")).expect("the agent's last line");
    let at =
        line.find(&format!(" {key}=")).or_else(|| line.find(&format!("={key}="))).unwrap_or_else(|| panic!("{key}"));
    line[at + key.len() + 2..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn a_full_disk_keeps_the_newest_reports_counts_the_rest_and_recovers_without_a_restart() {
    let dir = TempDir::new("disk");
    let Some(disk) = tmpfs_or_skip(dir.join("disk")) else { return };
    let spool = disk.0.join("spool");
    let (_n, args) = node(&spool);
    let c = Collector::start(|_| Answer::busy());
    std::fs::create_dir_all(&spool).unwrap();
    // Someone else's file leaves the spool about 20 KiB.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; (256 - 20) << 10]).unwrap();
    let agent =
        run(&c, &args, &["--interval", "20ms", "--spool-max-mib", "1", "--max-backoff", "1s", "--linger", "30s"]);
    agent.wait_log("cannot write a report", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&filler).unwrap();
    agent.wait_log("the disk takes writes again", Duration::from_secs(10));
    // Now the spool itself fills the disk: its oldest segments go.
    agent.wait_log("the disk is full: dropped the oldest segment", Duration::from_secs(60));
    c.set_answer(|_| Answer::ok());
    c.wait_accepted(Duration::from_secs(30), |got| got.len() > 20);
    agent.terminate();
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");

    let accepted = c.accepted();
    let unique: BTreeSet<u64> = accepted.iter().copied().collect();
    assert_eq!(unique.len(), accepted.len(), "each report delivered once");
    let dropped = ranges(&log, "dropped the oldest segment with ");
    assert!(!dropped.is_empty(), "{log}");
    assert_eq!(stat(&log, "dropped_memory"), 0, "nothing held in memory was lost:\n{log}");
    assert_eq!(dropped.iter().map(|d| d.0).sum::<u64>(), stat(&log, "dropped"), "every drop said:\n{log}");
    assert!(stat(&log, "write_errors") > 0);
    let last = *unique.last().unwrap();
    for seq in 0..=last {
        let in_dropped = dropped.iter().filter(|(_, a, b)| (*a..=*b).contains(&seq)).count();
        assert_eq!(
            in_dropped + usize::from(unique.contains(&seq)),
            1,
            "seq {seq} must be delivered or named dropped, once; dropped {dropped:?}\n{log}"
        );
    }
    let newest_dropped = dropped.iter().map(|d| d.2).max().unwrap();
    assert!((newest_dropped + 1..=last).all(|s| unique.contains(&s)), "the newest are kept");
    let left = inspect(&spool);
    assert_eq!(left["waiting"], 0, "{left:#}\n{log}");
}
