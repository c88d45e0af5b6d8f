//! What the sender tells the log about the link to the collector: a line
//! when the reason it cannot deliver changes, an error line (repeated at
//! most every ten minutes) while the collector refuses this agent, and a
//! line when reports flow again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a refusal that lasts is said again.
const LOUD_EVERY: Duration = Duration::from_secs(600);

pub struct LinkLog {
    url: String,
    token_file: PathBuf,
    /// The reason reports are not delivered, as last logged.
    problem: Option<String>,
    since: Option<Instant>,
    loud_at: Option<Instant>,
    tries: u64,
}

impl LinkLog {
    pub fn new(url: &str, token_file: &Path) -> Self {
        Self {
            url: url.to_string(),
            token_file: token_file.to_path_buf(),
            problem: None,
            since: None,
            loud_at: None,
            tries: 0,
        }
    }

    /// Reports were delivered.
    pub fn up(&mut self) {
        if self.problem.take().is_some() {
            let after_s = self.since.map_or(0, |t| t.elapsed().as_secs());
            tracing::info!(
                after_s,
                tries = self.tries,
                "collector {} takes reports again; sending the spool",
                self.url
            );
        }
        self.since = None;
        self.loud_at = None;
        self.tries = 0;
    }

    /// The collector is away or busy.
    pub fn down(&mut self, why: &str) {
        self.tries += 1;
        self.since.get_or_insert_with(Instant::now);
        if self.problem.as_deref() == Some(why) {
            tracing::debug!("{why}");
            return;
        }
        tracing::warn!("{why}; reports stay in the spool and are retried");
        self.problem = Some(why.to_string());
    }

    /// The collector refuses this agent.
    pub fn refused(&mut self, status: u16, why: &str) {
        self.tries += 1;
        self.since.get_or_insert_with(Instant::now);
        let key = format!("{status} {why}");
        let due = self.loud_at.is_none_or(|t| t.elapsed() >= LOUD_EVERY);
        if self.problem.as_deref() == Some(key.as_str()) && !due {
            tracing::debug!(status, "collector refused again: {why}");
            return;
        }
        let what = refusal(status, why, &self.url, &self.token_file);
        tracing::error!(status, tries = self.tries, "{what}; reports stay in the spool and are retried, never dropped");
        self.problem = Some(key);
        self.loud_at = Some(Instant::now());
    }
}

/// What a refusal means and what to fix.
pub fn refusal(status: u16, why: &str, url: &str, token_file: &Path) -> String {
    match status {
        401 | 403 => format!(
            "the collector at {url} refuses this node's token ({status}: {why}): put a valid token for this node \
             in {} (`jazari token add --node NAME` on the collector); the file is read again while this lasts",
            token_file.display()
        ),
        404 => format!(
            "the collector has no report endpoint at {url} (404: {why}): check --collector (scheme, host, port, \
             and the path prefix of any proxy in front of it)"
        ),
        300..=399 => format!("{url} answered a redirect ({status}): give --collector the URL it redirects to"),
        _ => format!("the collector at {url} answered {status} ({why})"),
    }
}
