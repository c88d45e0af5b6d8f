//! Pushing reports to the collector.
//!
//! Sampling never waits on the network: each report goes to the spool first,
//! and a sender thread drains the spool in order, in batches, zstd-compressed.
//! What each answer does:
//! - accepted: the reports are acknowledged in the spool;
//! - no answer (connection, TLS), 408, 429, 5xx: retried with capped
//!   exponential backoff and jitter (a `Retry-After` is honoured), logged once
//!   per change of reason;
//! - 401, 403, 404 and any other answer about the agent's set-up: retried
//!   with backoff up to [`PushConfig::refused_max_backoff`] and an error line
//!   saying what to fix (at most every ten minutes while it lasts); the token
//!   file is read again meanwhile; the reports are never put aside for it;
//! - 413: the batch is sent in halves; a single report refused so, or a
//!   report refused with 400 or 422, goes to the dead-letter file
//!   ([`DeadLetters`], bounded) and the spool goes on.

pub mod answer;
pub mod client;
pub mod deliver;
mod link;

use crate::spool::{DeadLetters, Ident, Pos, Spool};
use answer::{backoff, jitter};
use client::Client;
use deliver::{Settled, Stop, deliver};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to send.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// File holding the node's token (read again while the collector refuses it).
    pub token_file: PathBuf,
    pub spool_dir: PathBuf,
    pub dead_letter_max_bytes: u64,
    pub max_batch: usize,
    pub max_batch_bytes: usize,
    /// Longest wait between tries while the collector is away.
    pub max_backoff: Duration,
    /// Longest wait between tries while the collector refuses this agent.
    pub refused_max_backoff: Duration,
}

/// What the sender did, for the log at exit and for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SenderStats {
    pub accepted: u64,
    pub put_aside: u64,
    /// Reports refused for good that could not be written to the dead-letter file either.
    pub put_aside_lost: u64,
    /// Tries that found the collector away.
    pub retries: u64,
    /// Tries the collector refused (token, URL).
    pub refusals: u64,
}

impl std::fmt::Display for SenderStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted={} dead_lettered={} dead_letter_lost={} retries={} refusals={}",
            self.accepted, self.put_aside, self.put_aside_lost, self.retries, self.refusals
        )
    }
}

/// Drains the spool to the collector until `stop` says so. `wake` is
/// signalled after each append.
pub fn sender(
    cfg: PushConfig,
    mut client: Client,
    token: String,
    spool: Arc<Mutex<Spool>>,
    wake: Receiver<()>,
    stop: Arc<AtomicBool>,
) -> SenderStats {
    let mut dead = DeadLetters::new(&cfg.spool_dir, cfg.dead_letter_max_bytes);
    let mut link = link::LinkLog::new(client.url(), &cfg.token_file);
    let mut token = token;
    let mut stats = SenderStats::default();
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let peeked = spool.lock().unwrap().peek(cfg.max_batch, cfg.max_batch_bytes);
        let batch = match peeked {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("cannot read the spool {}: {e}", cfg.spool_dir.display());
                pause(Duration::from_secs(5), &stop, || false);
                continue;
            }
        };
        if batch.is_empty() {
            match wake.recv_timeout(Duration::from_secs(1)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let (records, ends): (Vec<Vec<u8>>, Vec<Pos>) = batch.into_iter().unzip();
        let res = deliver(&client, &records, |r, how| {
            match how {
                Settled::Accepted => stats.accepted += r.len() as u64,
                Settled::PutAside { status, why } => put_aside(&mut dead, &records[r.start], status, &why, &mut stats),
            }
            if let Err(e) = spool.lock().unwrap().ack(ends[r.end - 1]) {
                tracing::error!("cannot update the spool cursor: {e}");
            }
        });
        match res {
            Ok(()) => {
                link.up();
                failures = 0;
            }
            Err(Stop::Retry { after, why }) => {
                stats.retries += 1;
                link.down(&why);
                let wait = after.unwrap_or_else(|| backoff(failures, cfg.max_backoff, jitter()));
                failures = failures.saturating_add(1);
                pause(wait.min(cfg.max_backoff * 2), &stop, || false);
            }
            Err(Stop::Refused { status, why }) => {
                stats.refusals += 1;
                link.refused(status, &why);
                let wait = backoff(failures, cfg.refused_max_backoff, jitter());
                failures = failures.saturating_add(1);
                let changed = pause(wait, &stop, || reload_token(&mut client, &cfg.token_file, &mut token));
                if changed {
                    failures = 0;
                }
            }
        }
    }
    stats
}

/// Reads the token file again; whether it holds a new token (now in use).
fn reload_token(client: &mut Client, path: &std::path::Path, current: &mut String) -> bool {
    let Ok(new) = jazari_wire::token::read(path) else { return false };
    if new == *current {
        return false;
    }
    if let Err(e) = client.set_token(&new) {
        tracing::error!("the token in {} is unusable: {e}", path.display());
        return false;
    }
    *current = new;
    tracing::info!(token_file = %path.display(), "the token file changed; trying again with the new token");
    true
}

fn put_aside(dead: &mut DeadLetters, record: &[u8], status: u16, why: &str, stats: &mut SenderStats) {
    let who = Ident::of(record).map_or_else(|| "a report".to_string(), |i| format!("report {i}"));
    match dead.put(record, status, why) {
        Ok(()) => {
            stats.put_aside += 1;
            tracing::error!(
                status,
                dead_letter = %dead.path().display(),
                total = stats.put_aside,
                "collector refused {who} for good ({status}: {why}); kept in the dead-letter file \
                 (`jazari-agent spool replay --dead-letters` sends it again)"
            );
        }
        Err(e) => {
            stats.put_aside_lost += 1;
            tracing::error!(
                status,
                total_lost = stats.put_aside_lost,
                "collector refused {who} for good ({status}: {why}), and the dead-letter file {} cannot \
                 take it ({e}): it is dropped",
                dead.path().display()
            );
        }
    }
}

/// Sleeps `d` unless `stop` is set or `early` (asked every second) says to go on; whether `early` did.
pub fn pause(d: Duration, stop: &AtomicBool, mut early: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + d;
    let mut next_check = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
        if Instant::now() >= next_check {
            if early() {
                return true;
            }
            next_check += Duration::from_secs(1);
        }
    }
    false
}
