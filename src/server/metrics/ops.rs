//! Families about the collector's own work read off its state: reports
//! refused, the scheduler adapter, findings and their notifications.

use super::families::Family;
use crate::api::findings::Finding;
use crate::findings::Delivery;
use crate::scheduler::State as Sched;
use std::collections::BTreeMap;

/// Refused reports by reason and node (`unknown` for names the collector does not know).
pub fn refused<'a>(counts: impl IntoIterator<Item = (&'a str, &'a str, u64)>) -> Family {
    let mut f = Family::counter("jazari_reports_refused", "Reports refused, by reason and node");
    for (reason, node, n) in counts {
        f.add(vec![("reason", reason.to_string()), ("node", node.to_string())], n as f64);
    }
    f
}

/// The Slurm adapter: whether it answers, its polls, what they read and found, reports waiting.
pub fn scheduler(s: &Sched, up: bool, pending: Option<u64>) -> Vec<Family> {
    let p = &s.stats;
    let mut out = vec![
        Family::gauge("jazari_scheduler_up", "1 while the scheduler answers its polls").with(up as u8 as f64),
        Family::counter("jazari_scheduler_polls", "Scheduler polls since the collector started").with(p.polls as f64),
        Family::counter("jazari_scheduler_poll_errors", "Scheduler polls that failed").with(p.errors as f64),
        Family::gauge("jazari_scheduler_poll_seconds", "How long the last poll took").with(p.last_duration_s),
        Family::gauge("jazari_scheduler_output_bytes", "Bytes the last successful queue poll read")
            .with(p.last_bytes as f64),
        Family::gauge("jazari_scheduler_jobs", "Jobs in the scheduler's last answer")
            .with(s.snapshot.jobs.len() as f64),
        Family::gauge("jazari_scheduler_ended_jobs", "Jobs the last sacct query found ended")
            .with(p.last_ended_jobs as f64),
        Family::gauge("jazari_scheduler_sacct_up", "0 when the last sacct query failed")
            .with(p.sacct_error.is_none() as u8 as f64),
    ];
    if let Some(n) = pending {
        out.push(
            Family::gauge("jazari_pending_reports", "Reports waiting for the scheduler before they are charged")
                .with(n as f64),
        );
    }
    out
}

/// Active findings by kind and severity; notifications sent, failed, dropped, queued.
pub fn alerts(cluster: &str, findings: &[Finding], delivery: Delivery, queued: Option<u64>) -> Vec<Family> {
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for f in findings {
        *counts.entry((f.kind.name(), f.severity.name())).or_default() += 1;
    }
    let mut active = Family::gauge("jazari_findings", "Active findings, by kind and severity");
    for ((kind, severity), n) in counts {
        let labels = vec![("cluster", cluster.to_string()), ("kind", kind.into()), ("severity", severity.into())];
        active.add(labels, n as f64);
    }
    let mut out = vec![
        active,
        Family::counter("jazari_notifications_sent", "Notifications delivered").with(delivery.sent as f64),
        Family::counter("jazari_notifications_failed", "Delivery attempts that failed (retried with backoff)")
            .with(delivery.failed as f64),
        Family::counter(
            "jazari_notifications_dropped",
            "Notifications dropped because the queue was full (alerts.max_queue)",
        )
        .with(delivery.dropped as f64),
    ];
    if let Some(q) = queued {
        out.push(
            Family::gauge("jazari_notifications_queued", "Notifications waiting for their receiver").with(q as f64),
        );
    }
    out
}
