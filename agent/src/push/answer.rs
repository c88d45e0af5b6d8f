//! What the collector's answer means for the reports sent, and how long to
//! wait before trying again.

use std::time::Duration;

/// What happened to one POST.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The collector is away, busy or unreachable (connection, TLS, 408, 429,
    /// 5xx): try again later, after at least `after` when it said so.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// The collector refuses this agent, not the reports (401, 403, 404 and
    /// any other answer not listed here): the set-up is wrong; keep the
    /// reports and try again until someone fixes it.
    Refused {
        status: u16,
        why: String,
    },
    /// 413: the batch is too large; a single report refused so never fits.
    TooLarge {
        why: String,
    },
    /// 400 or 422: a report is invalid and will never be accepted.
    Invalid {
        status: u16,
        why: String,
    },
}

/// Classifies an HTTP answer. `body` is the collector's answer, whose JSON
/// `{"error": "..."}` is the message.
pub fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Verdict {
    let why = error_message(body);
    match status {
        200..=299 => Verdict::Accepted,
        413 => Verdict::TooLarge { why },
        400 | 422 => Verdict::Invalid { status, why },
        408 | 429 | 500..=599 => Verdict::Retry {
            after: retry_after.and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs),
            why: format!("collector answered {status}: {why}"),
        },
        _ => Verdict::Refused { status, why },
    }
}

/// The message of an error answer: its `error` field when it is JSON, else
/// its text (shortened); never empty.
pub fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    if let Ok(e) = serde_json::from_str::<ErrorBody>(body) {
        return e.error;
    }
    let text = body.trim();
    if text.is_empty() {
        return "no message".to_string();
    }
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Backoff before try `n` (0-based): 1 s doubling up to `max`, with ±25 % jitter.
pub fn backoff(n: u32, max: Duration, jitter_unit: f64) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1u32 << n.min(16)).min(max);
    base.mul_f64(0.75 + 0.5 * jitter_unit.clamp(0.0, 1.0))
}

/// A number in [0, 1) that differs between nodes and tries.
pub fn jitter() -> f64 {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (n.wrapping_mul(2654435761) % 1000) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried_refused_split_or_put_aside() {
        assert_eq!(classify(200, None, ""), Verdict::Accepted);
        assert_eq!(
            classify(429, Some("7"), r#"{"error": "slow down"}"#),
            Verdict::Retry { after: Some(Duration::from_secs(7)), why: "collector answered 429: slow down".into() }
        );
        assert!(matches!(classify(503, None, ""), Verdict::Retry { after: None, .. }));
        assert_eq!(
            classify(400, None, "{\"error\": \"bad field\"}\n"),
            Verdict::Invalid { status: 400, why: "bad field".into() }
        );
        assert!(matches!(classify(422, None, ""), Verdict::Invalid { status: 422, .. }));
        assert_eq!(
            classify(413, None, r#"{"error":"body over 8 MiB"}"#),
            Verdict::TooLarge { why: "body over 8 MiB".into() }
        );
        for status in [401, 403, 404, 405, 301] {
            assert!(matches!(classify(status, None, ""), Verdict::Refused { .. }), "{status} is never put aside");
        }
        assert_eq!(classify(401, None, "no token\n"), Verdict::Refused { status: 401, why: "no token".into() });
    }

    #[test]
    fn error_messages_are_short_and_never_empty() {
        assert_eq!(error_message(""), "no message");
        assert_eq!(error_message(&"é".repeat(400)).chars().count(), 301);
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
