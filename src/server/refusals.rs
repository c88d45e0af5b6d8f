//! Refused reports: counted by reason and node for `/metrics`, logged at
//! most once a minute per reason and node (with how many since the last line).

use axum::http::StatusCode;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Why a report was refused, as counted in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    Unauthorized,
    TooLarge,
    Encoding,
    Invalid,
    Forbidden,
    NodeLimit,
    Timeout,
    Unavailable,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Unauthorized => "unauthorized",
            Refusal::TooLarge => "too_large",
            Refusal::Encoding => "encoding",
            Refusal::Invalid => "invalid",
            Refusal::Forbidden => "forbidden",
            Refusal::NodeLimit => "node_limit",
            Refusal::Timeout => "timeout",
            Refusal::Unavailable => "unavailable",
        }
    }

    pub fn of(status: StatusCode) -> Refusal {
        match status.as_u16() {
            401 => Refusal::Unauthorized,
            413 => Refusal::TooLarge,
            415 => Refusal::Encoding,
            403 => Refusal::Forbidden,
            408 => Refusal::Timeout,
            503 => Refusal::Unavailable,
            _ => Refusal::Invalid,
        }
    }
}

/// How often one reason and node is logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The label of refusals from nodes the collector does not know.
pub const UNKNOWN_NODE: &str = "unknown";

/// Refused reports: counts by (reason, node), when each was last logged.
#[derive(Debug, Default)]
pub struct Refusals {
    pub counts: BTreeMap<(Refusal, String), u64>,
    logged: HashMap<(Refusal, String), (Instant, u64)>,
}

impl Refusals {
    /// Counts one refusal under `known` (a node the collector knows; else
    /// `unknown`) and logs it unless that reason and node was logged within a minute.
    pub fn note(&mut self, reason: Refusal, known: Option<&str>, claimed: Option<&str>, message: &str) {
        let label = known.unwrap_or(UNKNOWN_NODE).to_string();
        *self.counts.entry((reason, label.clone())).or_default() += 1;
        let now = Instant::now();
        let entry = self.logged.entry((reason, label)).or_insert((now - LOG_EVERY, 0));
        entry.1 += 1;
        if now.duration_since(entry.0) >= LOG_EVERY {
            let n = std::mem::take(&mut entry.1);
            entry.0 = now;
            tracing::warn!(
                reason = reason.name(),
                node = claimed.unwrap_or("?"),
                refused = n,
                "report refused: {message}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_always_logged_once_a_minute() {
        let mut r = Refusals::default();
        for _ in 0..5 {
            r.note(Refusal::TooLarge, Some("n1"), Some("n1"), "too large");
        }
        r.note(Refusal::Unauthorized, None, Some("made-up-name"), "bad token");
        assert_eq!(r.counts[&(Refusal::TooLarge, "n1".to_string())], 5);
        assert_eq!(r.counts[&(Refusal::Unauthorized, UNKNOWN_NODE.to_string())], 1);
        // One line logged for the five; four wait for the next line's count.
        assert_eq!(r.logged[&(Refusal::TooLarge, "n1".to_string())].1, 4);
    }
}
