//! Sending a run of reports in order, halving a batch the collector finds too
//! large or invalid until the culprit is alone.

use super::answer::Verdict;
use super::client::Client;
use std::ops::Range;
use std::time::Duration;

/// What became of a run of reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    Accepted,
    /// A single report the collector will never accept (413 alone, 400, 422).
    PutAside {
        status: u16,
        why: String,
    },
}

/// Why sending stopped before every report was settled; the rest stays where it was.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The collector is away or busy.
    Retry { after: Option<Duration>, why: String },
    /// The collector refuses this agent (token, URL).
    Refused { status: u16, why: String },
}

/// Sends `records` in order. `settle` hears of every run settled, in order
/// (to acknowledge it); at the first answer that is neither acceptance nor a
/// verdict on the reports themselves, sending stops.
pub fn deliver(
    client: &Client,
    records: &[Vec<u8>],
    mut settle: impl FnMut(Range<usize>, Settled),
) -> Result<(), Stop> {
    // Runs still to send, the next on top.
    let mut todo: Vec<Range<usize>> = Vec::new();
    todo.push(0..records.len());
    while let Some(r) = todo.pop() {
        if r.is_empty() {
            continue;
        }
        let (status, why) = match client.post(&records[r.clone()]) {
            Verdict::Accepted => {
                settle(r, Settled::Accepted);
                continue;
            }
            Verdict::Retry { after, why } => return Err(Stop::Retry { after, why }),
            Verdict::Refused { status, why } => return Err(Stop::Refused { status, why }),
            Verdict::TooLarge { why } => (413, why),
            Verdict::Invalid { status, why } => (status, why),
        };
        if r.len() == 1 {
            settle(r, Settled::PutAside { status, why });
            continue;
        }
        let mid = r.start + r.len() / 2;
        tracing::info!(status, reports = r.len(), "collector refused a batch ({why}); sending it in halves");
        todo.push(mid..r.end);
        todo.push(r.start..mid);
    }
    Ok(())
}
