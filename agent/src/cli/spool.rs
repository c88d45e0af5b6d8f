//! `jazari-agent spool inspect` and `jazari-agent spool replay`.

use super::settings::{FileConfig, TargetArgs};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jazari_agent::push::answer::{backoff, jitter};
use jazari_agent::push::client::Client;
use jazari_agent::push::deliver::{Settled, Stop, deliver};
use jazari_agent::spool::{DeadLetters, Spool, inspect};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum SpoolCommand {
    /// Show what the spool holds: segments, reports per agent instance and their
    /// sequence ranges, the cursor, damaged ranges and dead letters. Changes nothing.
    Inspect(InspectArgs),
    /// Send what the spool (or the dead-letter file) holds now, with progress; say what
    /// was accepted and what refused. The agent must not be running on the same spool.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Agent configuration file (TOML), for its `spool_dir` [default: /etc/jazari/agent.toml when it exists].
    #[arg(long, value_name = "FILE", env = "JAZARI_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Spool folder [default: /var/lib/jazari-agent/spool].
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Send the dead-letter file (reports refused for good) instead of the spool;
    /// those accepted now leave it, those refused again stay.
    #[arg(long)]
    dead_letters: bool,
}

/// Tries in a row that find the collector away before a replay gives up.
const TRIES: u32 = 4;
const BATCH: usize = 200;

pub fn spool(cmd: &SpoolCommand) -> Result<()> {
    match cmd {
        SpoolCommand::Inspect(a) => {
            let file = FileConfig::load(a.config.as_deref())?;
            let args = TargetArgs { spool_dir: a.spool_dir.clone(), ..Default::default() };
            let dir = args.spool_dir(&file);
            let found = inspect::inspect(&dir).with_context(|| format!("inspecting the spool {}", dir.display()))?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                print!("{found}");
            }
            Ok(())
        }
        SpoolCommand::Replay(a) => {
            let file = FileConfig::load(a.target.config.as_deref())?;
            let target = a.target.target(&file)?;
            let token = target.token()?;
            let client = Client::new(&target.collector, &token, &target.tls)?;
            let dir = a.target.spool_dir(&file);
            anyhow::ensure!(dir.is_dir(), "no spool folder {} (give --spool-dir DIR)", dir.display());
            if a.dead_letters { replay_dead_letters(&dir, &client) } else { replay_spool(&dir, &client) }
        }
    }
}

/// Counts of a replay.
#[derive(Default)]
struct Tally {
    accepted: u64,
    refused: u64,
}

/// Sends `records` with a few tries while the collector is away; the reason it stopped, if it did.
fn send(
    client: &Client,
    records: &[Vec<u8>],
    settle: &mut dyn FnMut(std::ops::Range<usize>, Settled),
) -> Option<String> {
    let mut done = 0;
    let mut tries = 0;
    loop {
        // What was settled before a failure is not sent again.
        let base = done;
        let res = deliver(client, &records[base..], |r, how| {
            done = base + r.end;
            settle(base + r.start..base + r.end, how);
        });
        match res {
            Ok(()) => return None,
            Err(Stop::Refused { status, why }) => return Some(format!("the collector refused ({status}: {why})")),
            Err(Stop::Retry { after, why }) => {
                tries += 1;
                if tries >= TRIES {
                    return Some(why);
                }
                let wait = after.unwrap_or_else(|| backoff(tries - 1, Duration::from_secs(8), jitter()));
                eprintln!("  {why}; trying again in {:.0} s", wait.as_secs_f64());
                jazari_agent::push::pause(wait, &AtomicBool::new(false), || false);
            }
        }
    }
}

fn replay_spool(dir: &Path, client: &Client) -> Result<()> {
    let mut spool = Spool::open(dir, u64::MAX).with_context(|| format!("opening the spool {}", dir.display()))?;
    let mut dead = DeadLetters::new(dir, u64::MAX);
    let total = spool.pending()?;
    eprintln!("replaying {total} reports from {} to {}", dir.display(), client.url());
    let mut t = Tally::default();
    let mut stopped = None;
    while stopped.is_none() {
        let batch = spool.peek(BATCH, 256 << 10)?;
        if batch.is_empty() {
            break;
        }
        let (records, ends): (Vec<Vec<u8>>, Vec<_>) = batch.into_iter().unzip();
        let mut ack_err = None;
        stopped = send(client, &records, &mut |r, how| {
            match how {
                Settled::Accepted => t.accepted += r.len() as u64,
                Settled::PutAside { status, why } => {
                    t.refused += 1;
                    eprintln!("  refused for good ({status}: {why}); kept in {}", dead.path().display());
                    if let Err(e) = dead.put(&records[r.start], status, &why) {
                        eprintln!("  cannot write {}: {e}", dead.path().display());
                    }
                }
            }
            if let Err(e) = spool.ack(ends[r.end - 1]) {
                ack_err = Some(e);
            }
        });
        if let Some(e) = ack_err {
            anyhow::bail!("cannot update the spool cursor in {}: {e}", dir.display());
        }
        eprintln!(
            "  {}/{total} sent ({} accepted, {} refused for good)",
            t.accepted + t.refused,
            t.accepted,
            t.refused
        );
    }
    let left = spool.pending()?;
    println!(
        "accepted {}, refused for good {} (in {}), left in the spool {left}",
        t.accepted,
        t.refused,
        dead.path().display()
    );
    match stopped {
        Some(why) => anyhow::bail!("replay stopped: {why}; {left} reports stay in the spool"),
        None => Ok(()),
    }
}

fn replay_dead_letters(dir: &Path, client: &Client) -> Result<()> {
    let _lock = jazari_agent::spool::lock(dir)?;
    let dead = DeadLetters::new(dir, u64::MAX);
    let Some(letters) = dead.read().with_context(|| format!("reading {}", dead.path().display()))? else {
        println!("no dead letters in {}", dead.path().display());
        return Ok(());
    };
    let total = letters.len();
    eprintln!("replaying {total} dead letters from {} to {}", dead.path().display(), client.url());
    let mut t = Tally::default();
    let mut kept = Vec::new();
    let mut stopped = None;
    for chunk in letters.chunks(BATCH) {
        if stopped.is_some() {
            kept.extend_from_slice(chunk);
            continue;
        }
        let records: Vec<Vec<u8>> = chunk.iter().map(|l| l.report.clone()).collect();
        let mut settled = 0;
        stopped = send(client, &records, &mut |r, how| {
            settled = r.end;
            match how {
                Settled::Accepted => t.accepted += r.len() as u64,
                Settled::PutAside { status, why } => {
                    t.refused += 1;
                    eprintln!("  refused again ({status}: {why})");
                    let mut l = chunk[r.start].clone();
                    l.status = Some(status);
                    l.error = Some(why);
                    kept.push(l);
                }
            }
        });
        kept.extend_from_slice(&chunk[settled..]);
        eprintln!("  {}/{total} sent ({} accepted, {} refused again)", t.accepted + t.refused, t.accepted, t.refused);
    }
    if kept.is_empty() {
        std::fs::remove_file(dead.path()).with_context(|| format!("removing {}", dead.path().display()))?;
    } else {
        dead.rewrite(&kept).with_context(|| format!("rewriting {}", dead.path().display()))?;
    }
    println!("accepted {}, refused again {}, left in {}: {}", t.accepted, t.refused, dead.path().display(), kept.len());
    match stopped {
        Some(why) => anyhow::bail!("replay stopped: {why}"),
        None => Ok(()),
    }
}
