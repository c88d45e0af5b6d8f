//! `GET /metrics`: Prometheus text exposition of live state: cluster gauges
//! and per-GPU gauges (no job or user labels: attribution lives in the ledger).

use super::app::App;
use super::error::ApiError;
use crate::api::scheduler::SchedulerKind;
use crate::live::Viewer;
use crate::time::now_ms;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Instant;

/// A Prometheus gauge: name, help, and how to read it off a GPU.
type Gauge = (&'static str, &'static str, fn(&jazari_wire::Gpu) -> Option<f64>);

/// Prometheus text exposition: cluster gauges and per-GPU gauges (no job
/// labels). Rendered at most once per `server.metrics_cache` (scrapes that
/// come together wait for one rendering), off the threads that answer requests.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = {
        let mut cache = app.metrics_cache.lock().await;
        match &*cache {
            Some((at, text)) if at.elapsed() < app.cfg.server.metrics_cache => text.clone(),
            _ => {
                let pending = match app.cfg.scheduler.kind {
                    SchedulerKind::Slurm => app.read(|s| s.pending_count()).await.ok(),
                    SchedulerKind::None => None,
                };
                let queued = app.read(|s| s.outbox_len()).await.ok();
                let findings = app.alerts.lock().await.tracker.active();
                let a = app.clone();
                let text = match tokio::task::spawn_blocking(move || {
                    let mut t = render(&a, pending);
                    alert_metrics(&a, &findings, queued, &mut t);
                    t
                })
                .await
                {
                    Ok(t) => Arc::new(t),
                    Err(e) => return ApiError::internal(e).into_response(),
                };
                *cache = Some((Instant::now(), text.clone()));
                text
            }
        }
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text.as_str().to_string()).into_response()
}

fn render(app: &App, pending: Option<u64>) -> String {
    use std::fmt::Write;
    let (view, overlaps, overlap_s) = {
        let live = app.live.read().unwrap();
        let view =
            live.cluster_view(&app.cfg.cluster, &app.map, app.view_policy(), Viewer { institute: None }, now_ms());
        let n: u64 = live.overlaps.values().map(|o| o.reports).sum();
        let s: f64 = live.overlaps.values().map(|o| o.seconds).sum();
        (view, n, s)
    };
    let mut out = String::with_capacity(256 + view.summary.gpus * 400);
    let s = &view.summary;
    let _ = writeln!(
        out,
        "# HELP jazari_nodes Nodes known to the collector.\n# TYPE jazari_nodes gauge\njazari_nodes {}",
        s.nodes
    );
    let _ = writeln!(
        out,
        "# HELP jazari_nodes_reporting Nodes that reported recently.\n# TYPE jazari_nodes_reporting gauge\njazari_nodes_reporting {}",
        s.nodes_reporting
    );
    let _ = writeln!(
        out,
        "# HELP jazari_overlapping_reports_total Reports for time already charged (only their new time was charged).\n# TYPE jazari_overlapping_reports_total counter\njazari_overlapping_reports_total {overlaps}"
    );
    let _ = writeln!(
        out,
        "# HELP jazari_overlap_seconds_total GPU- and node-seconds reported again and not charged again.\n# TYPE jazari_overlap_seconds_total counter\njazari_overlap_seconds_total {overlap_s}"
    );
    let _ = writeln!(out, "# HELP jazari_gpus GPUs by state.\n# TYPE jazari_gpus gauge");
    for (state, n) in [
        ("total", s.gpus),
        ("allocated", s.gpus_allocated),
        ("busy", s.gpus_busy),
        ("idle_allocated", s.gpus_idle_allocated),
        ("unhealthy", s.gpus_unhealthy),
    ] {
        let _ = writeln!(out, "jazari_gpus{{state=\"{state}\"}} {n}");
    }
    let gauges: [Gauge; 4] = [
        ("jazari_gpu_utilization_ratio", "NVML GPU utilisation (share of time a kernel ran), 0-1.", |g| {
            g.util_gpu_pct.map(|u| u as f64 / 100.0)
        }),
        ("jazari_gpu_memory_used_bytes", "GPU memory used.", |g| g.mem_used_bytes.map(|v| v as f64)),
        ("jazari_gpu_power_watts", "GPU power draw.", |g| g.power_mw.map(|v| v as f64 / 1000.0)),
        ("jazari_gpu_temperature_celsius", "GPU temperature.", |g| g.temperature_c.map(|v| v as f64)),
    ];
    for (name, help, f) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for n in view.nodes.iter().filter(|n| !n.stale) {
            for g in &n.gpus {
                if let Some(v) = f(&g.gpu) {
                    let uuid = g.gpu.uuid.as_deref().unwrap_or("");
                    let _ = writeln!(out, "{name}{{node=\"{}\",gpu=\"{uuid}\",index=\"{}\"}} {v}", n.name, g.gpu.index);
                }
            }
        }
    }
    refused_metrics(app, &mut out);
    if app.cfg.scheduler.kind == SchedulerKind::Slurm {
        scheduler_metrics(app, pending, &mut out);
    }
    out
}

/// Active findings by kind and severity; notifications sent, failed, dropped, queued.
fn alert_metrics(app: &App, findings: &[crate::api::findings::Finding], queued: Option<u64>, out: &mut String) {
    use std::fmt::Write;
    let mut counts: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for f in findings {
        *counts.entry((f.kind.name(), f.severity.name())).or_default() += 1;
    }
    let _ =
        writeln!(out, "# HELP jazari_findings Active findings, by kind and severity.\n# TYPE jazari_findings gauge");
    for ((kind, severity), n) in counts {
        let _ = writeln!(out, "jazari_findings{{kind=\"{kind}\",severity=\"{severity}\"}} {n}");
    }
    let s = *app.alert_stats.lock().unwrap();
    for (name, help, v) in [
        ("jazari_notifications_sent_total", "Notifications delivered.", s.sent),
        ("jazari_notifications_failed_total", "Delivery attempts that failed (retried with backoff).", s.failed),
        (
            "jazari_notifications_dropped_total",
            "Notifications dropped because the queue was full (alerts.max_queue).",
            s.dropped,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    if let Some(q) = queued {
        let _ = writeln!(
            out,
            "# HELP jazari_notifications_queued Notifications waiting for their receiver.\n# TYPE jazari_notifications_queued gauge\njazari_notifications_queued {q}"
        );
    }
}

/// Refused reports by reason and node (`unknown` for names the collector does not know).
fn refused_metrics(app: &App, out: &mut String) {
    use std::fmt::Write;
    let r = app.refusals.lock().unwrap();
    let name = "jazari_reports_refused_total";
    let _ = writeln!(out, "# HELP {name} Reports refused, by reason and node.\n# TYPE {name} counter");
    for ((reason, node), n) in &r.counts {
        let _ = writeln!(out, "{name}{{reason=\"{}\",node=\"{node}\"}} {n}", reason.name());
    }
}

/// The Slurm adapter: whether it answers, its polls, what they read and found, reports waiting.
fn scheduler_metrics(app: &App, pending: Option<u64>, out: &mut String) {
    use std::fmt::Write;
    let now = now_ms();
    let s = app.sched.read().unwrap();
    let up = s.fresh(app.cfg.scheduler.fresh_for(), now);
    let p = &s.stats;
    let mut rows: Vec<(&str, &str, &str, String)> = vec![
        ("jazari_scheduler_up", "gauge", "1 while the scheduler answers its polls.", (up as u8).to_string()),
        (
            "jazari_scheduler_polls_total",
            "counter",
            "Scheduler polls since the collector started.",
            p.polls.to_string(),
        ),
        ("jazari_scheduler_poll_errors_total", "counter", "Scheduler polls that failed.", p.errors.to_string()),
        ("jazari_scheduler_poll_seconds", "gauge", "How long the last poll took.", p.last_duration_s.to_string()),
        (
            "jazari_scheduler_output_bytes",
            "gauge",
            "Bytes the last successful queue poll read.",
            p.last_bytes.to_string(),
        ),
        ("jazari_scheduler_jobs", "gauge", "Jobs in the scheduler's last answer.", s.snapshot.jobs.len().to_string()),
        (
            "jazari_scheduler_ended_jobs",
            "gauge",
            "Jobs the last sacct query found ended.",
            p.last_ended_jobs.to_string(),
        ),
        (
            "jazari_scheduler_sacct_up",
            "gauge",
            "0 when the last sacct query failed.",
            (p.sacct_error.is_none() as u8).to_string(),
        ),
    ];
    if let Some(n) = pending {
        rows.push((
            "jazari_pending_reports",
            "gauge",
            "Reports waiting for the scheduler before they are charged.",
            n.to_string(),
        ));
    }
    for (name, kind, help, v) in rows {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
    }
}
