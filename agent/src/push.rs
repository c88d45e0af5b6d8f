//! Pushing reports to the collector.
//!
//! Sampling never waits on the network: each report goes to the spool first,
//! and a sender thread drains the spool in order, in batches, zstd-compressed.
//! Connection errors, 5xx and 429 are retried with capped exponential backoff
//! and jitter (a `Retry-After` is honoured); any other 4xx is not retried: the
//! reason is logged and the report kept in the dead-letter file
//! `dead-letter.ndjson` beside the spool.

use crate::spool::Spool;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Collector base URL, for example `http://collector:9470`.
    pub collector: String,
    pub token: String,
    pub spool_dir: PathBuf,
    pub max_batch: usize,
    pub max_backoff: Duration,
}

/// What happened to one POST.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Try again later, after at least this long when the collector said so.
    Retry(Option<Duration>, String),
    /// Do not retry: keep the reports aside.
    Reject(u16, String),
}

/// Classifies an HTTP answer.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Verdict {
    match status {
        200..=299 => Verdict::Accepted,
        429 | 500..=599 => Verdict::Retry(
            retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs),
            format!("collector answered {status}: {}", body.trim()),
        ),
        _ => Verdict::Reject(status, body.trim().to_string()),
    }
}

/// Backoff before try `n` (0-based): 1 s doubling up to `max`, with ±25 % jitter.
pub fn backoff(n: u32, max: Duration, jitter_unit: f64) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1u32 << n.min(16)).min(max);
    base.mul_f64(0.75 + 0.5 * jitter_unit.clamp(0.0, 1.0))
}

fn jitter() -> f64 {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (n.wrapping_mul(2654435761) % 1000) as f64 / 1000.0
}

/// A client for the collector's ingest endpoint.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    auth: String,
}

impl Client {
    pub fn new(collector: &str, token: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            url: format!("{}/api/v1/reports", collector.trim_end_matches('/')),
            auth: format!("Bearer {token}"),
        }
    }

    /// Posts records (each one report's JSON) as one zstd-compressed array.
    pub fn post(&self, records: &[Vec<u8>]) -> Verdict {
        let mut json = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
        json.push(b'[');
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(r);
        }
        json.push(b']');
        let body = match zstd::encode_all(&json[..], 3) {
            Ok(b) => b,
            Err(e) => return Verdict::Retry(None, format!("compressing: {e}")),
        };
        let res = self
            .agent
            .post(&self.url)
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "zstd")
            .send(&body[..]);
        match res {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
                let text = resp.body_mut().with_config().limit(64 << 10).read_to_string().unwrap_or_default();
                classify(status, retry_after.as_deref(), &text)
            }
            Err(e) => Verdict::Retry(None, format!("cannot reach {}: {e}", self.url)),
        }
    }
}

/// Drains the spool to the collector until `stop` says so. `wake` is
/// signalled after each append.
pub fn sender(cfg: PushConfig, spool: Arc<Mutex<Spool>>, wake: Receiver<()>, stop: Arc<std::sync::atomic::AtomicBool>) {
    let client = Client::new(&cfg.collector, &cfg.token);
    let dead_letter = cfg.spool_dir.join("dead-letter.ndjson");
    let mut failures = 0u32;
    let mut down_since: Option<Instant> = None;
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let batch = match spool.lock().unwrap().peek(cfg.max_batch, 4 << 20) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("cannot read the spool: {e}");
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
        };
        let Some(&(_, end)) = batch.last() else {
            match wake.recv_timeout(Duration::from_secs(1)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        let records: Vec<Vec<u8>> = batch.iter().map(|(r, _)| r.clone()).collect();
        let ack = |pos| {
            if let Err(e) = spool.lock().unwrap().ack(pos) {
                tracing::error!("cannot update the spool cursor: {e}");
            }
        };
        match client.post(&records) {
            Verdict::Accepted => {
                if let Some(t) = down_since.take() {
                    tracing::info!(after_s = t.elapsed().as_secs(), "collector reachable again; replaying the spool");
                }
                failures = 0;
                ack(end);
            }
            Verdict::Retry(after, why) => {
                if down_since.is_none() {
                    down_since = Some(Instant::now());
                    tracing::warn!("{why}; keeping reports in the spool and retrying");
                } else {
                    tracing::debug!("{why}");
                }
                let wait =
                    after.unwrap_or_else(|| backoff(failures, cfg.max_backoff, jitter())).min(cfg.max_backoff * 2);
                failures = failures.saturating_add(1);
                sleep_unless_stopped(wait, &stop);
            }
            Verdict::Reject(status, why) if batch.len() > 1 => {
                // Find the culprits: send one by one, acknowledging as we go.
                tracing::warn!(status, "collector refused a batch ({why}); sending its reports one by one");
                for (r, pos) in &batch {
                    match client.post(std::slice::from_ref(r)) {
                        Verdict::Accepted => ack(*pos),
                        Verdict::Reject(status, why) => {
                            put_aside(&dead_letter, r, status, &why);
                            ack(*pos);
                        }
                        // The rest stays in the spool for the next round.
                        Verdict::Retry(..) => break,
                    }
                }
            }
            Verdict::Reject(status, why) => {
                put_aside(&dead_letter, &records[0], status, &why);
                ack(end);
            }
        }
    }
}

fn put_aside(path: &std::path::Path, record: &[u8], status: u16, why: &str) {
    tracing::error!(status, dead_letter = %path.display(), "collector refused a report: {why}; kept in the dead-letter file");
    let res = std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| {
        f.write_all(record)?;
        f.write_all(b"\n")
    });
    if let Err(e) = res {
        tracing::error!("cannot write the dead-letter file {}: {e}", path.display());
    }
}

fn sleep_unless_stopped(d: Duration, stop: &std::sync::atomic::AtomicBool) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(200)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        assert_eq!(classify(200, None, ""), Verdict::Accepted);
        assert_eq!(
            classify(429, Some("7"), "slow down"),
            Verdict::Retry(Some(Duration::from_secs(7)), "collector answered 429: slow down".into())
        );
        assert!(matches!(classify(503, None, ""), Verdict::Retry(None, _)));
        assert_eq!(classify(400, None, "bad field\n"), Verdict::Reject(400, "bad field".into()));
        assert!(matches!(classify(401, None, ""), Verdict::Reject(401, _)));
        assert!(matches!(classify(403, None, ""), Verdict::Reject(403, _)));
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let max = Duration::from_secs(60);
        assert_eq!(backoff(0, max, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(3, max, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(30, max, 0.5), max);
        assert_eq!(backoff(2, max, 0.0), Duration::from_secs(3));
        assert_eq!(backoff(2, max, 1.0), Duration::from_secs(5));
    }
}
