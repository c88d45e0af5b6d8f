//! Evaluating the rules: every `alerts.evaluate_every` (and before
//! `/api/v1/findings` answers, when the last evaluation is older than a
//! second), live conditions and, every `alerts.quota_every`, the quotas' are taken into
//! the tracker; what is raised or cleared is kept in the store, and a
//! notification per receiver (grouped: one per evaluation) goes to the outbox,
//! which the notifier (`notify.rs`) delivers. Nothing here runs on the ingest path.

use super::app::App;
use super::error::ApiError;
use crate::api::findings::{Finding, FindingsQuery, FindingsResponse, Severity};
use crate::api::scheduler::SchedulerKind;
use crate::config::{Config, Route, WebhookFormat};
use crate::findings::rules::{self, Scheduler};
use crate::findings::{Change, Source, Timing};
use crate::time::{format_rfc3339, now_ms};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Serialize;
use std::sync::Arc;

fn timing(cfg: &Config) -> Timing {
    let a = &cfg.alerts;
    Timing {
        clear_after_ms: a.clear_after.as_millis() as i64,
        idle_allocated_after_ms: a.idle_allocated_after.as_millis() as i64,
        low_sm_active_after_ms: a.low_sm_active_after.as_millis() as i64,
        tensor_idle_after_ms: a.tensor_idle_after.as_millis() as i64,
        throttle_after_ms: a.throttle_after.as_millis() as i64,
    }
}

/// Evaluates the rules now (the quotas' too when `quotas` or when a minute has passed).
pub async fn evaluate(app: &Arc<App>, quotas: bool) -> Result<(), ApiError> {
    let now = now_ms();
    let want_quotas =
        quotas || now - app.alerts.lock().await.last_quota_ms >= app.cfg.alerts.quota_every.as_millis() as i64;
    let burn = if want_quotas {
        let ids: Vec<String> = app.cfg.institutes.iter().filter(|i| i.quota.is_some()).map(|i| i.id.clone()).collect();
        Some(super::quotas::burn_downs(app, &ids, now, now).await?)
    } else {
        None
    };
    let mut state = app.alerts.lock().await;
    let st = &mut *state;
    let fresh = app.cfg.scheduler.kind == SchedulerKind::Slurm
        && app.sched.read().unwrap().fresh(app.cfg.scheduler.fresh_for(), now);
    let live_conditions = {
        let live = app.live.read().unwrap();
        let sched = app.sched.read().unwrap();
        let scheduler = fresh.then(|| Scheduler { snapshot: &sched.snapshot, index: &sched.index });
        rules::live(&live, &app.map, app.view_policy(), &app.cfg.alerts, scheduler, &mut st.memory, now)
    };
    let t = timing(&app.cfg);
    let mut changes = st.tracker.update(Source::Live, live_conditions, now, t);
    st.last_live_ms = now;
    if let Some(b) = burn {
        changes.extend(st.tracker.update(Source::Quota, rules::quotas(&b), now, t));
        st.last_quota_ms = now;
    }
    let repeats = st.tracker.due_repeats(now, app.cfg.alerts.repeat_interval.as_millis() as i64);
    if changes.is_empty() && repeats.is_empty() {
        return Ok(());
    }
    // Notifications, one per receiver for this evaluation.
    let mut events: Vec<(Status, &Finding)> = vec![];
    for c in &changes {
        match c {
            Change::Raised(f) => events.push((Status::Firing, f)),
            Change::Cleared(f) => events.push((Status::Resolved, f)),
        }
    }
    events.extend(repeats.iter().map(|f| (Status::Repeat, f)));
    let outbox = render_all(&app.cfg, &events, now);
    for (s, f) in &events {
        if *s != Status::Resolved {
            st.tracker.notified(&f.id, now);
        }
    }
    let saved: Vec<(Finding, Option<i64>)> =
        events.iter().map(|(_, f)| ((*f).clone(), st.tracker.notified_ms(&f.id))).collect();
    for c in &changes {
        match c {
            Change::Raised(f) => {
                tracing::info!(kind = f.kind.name(), severity = f.severity.name(), "finding raised: {}", f.message)
            }
            Change::Cleared(f) => tracing::info!(kind = f.kind.name(), "finding cleared: {}", f.message),
        }
    }
    drop(state);
    let max = app.cfg.alerts.max_queue;
    let dropped = app.write_alerts(saved, outbox, now, max).await?;
    if dropped > 0 {
        app.alert_stats.lock().unwrap().dropped += dropped;
        tracing::error!(dropped, max, "the notification queue is full (alerts.max_queue): the oldest were dropped");
    }
    Ok(())
}

/// Evaluates the rules forever.
pub async fn evaluator(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.cfg.alerts.evaluate_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = evaluate(&app, false).await {
            tracing::warn!("evaluating the alert rules failed: {}", e.message);
        }
    }
}

/// What a notification says of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Repeat,
    Resolved,
}

/// One finding in a notification.
#[derive(Serialize)]
struct Item<'a> {
    status: Status,
    #[serde(flatten)]
    finding: &'a Finding,
    first_seen: String,
    last_seen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cleared: Option<String>,
}

/// The JSON body of a webhook notification.
#[derive(Serialize)]
struct Body<'a> {
    source: &'static str,
    cluster: &'a str,
    sent: String,
    firing: usize,
    resolved: usize,
    findings: Vec<Item<'a>>,
}

/// Whether a receiver's route takes a finding.
pub fn routed(route: &Route, f: &Finding) -> bool {
    f.severity >= route.min_severity
        && (route.institutes.is_empty() || f.institute.as_ref().is_some_and(|i| route.institutes.contains(i)))
}

/// (receiver key, body) for every receiver with something to say.
fn render_all(cfg: &Config, events: &[(Status, &Finding)], now: i64) -> Vec<(String, String)> {
    let mut out = vec![];
    let pick = |route: &Route| -> Vec<(Status, &Finding)> {
        events.iter().filter(|(_, f)| routed(route, f)).map(|(s, f)| (*s, *f)).collect()
    };
    for (i, w) in cfg.alerts.webhook.iter().enumerate() {
        let mine = pick(&w.route);
        if mine.is_empty() {
            continue;
        }
        let body = match w.format {
            WebhookFormat::Json => json_body(&cfg.cluster, &mine, now),
            WebhookFormat::Slack => serde_json::json!({"text": text(&cfg.cluster, &mine)}).to_string(),
        };
        out.push((format!("webhook/{i}"), body));
    }
    for (i, e) in cfg.alerts.email.iter().enumerate() {
        let mine = pick(&e.route);
        if mine.is_empty() {
            continue;
        }
        let mail = serde_json::json!({"subject": subject(&cfg.cluster, &mine), "text": text(&cfg.cluster, &mine)});
        out.push((format!("email/{i}"), mail.to_string()));
    }
    out
}

fn json_body(cluster: &str, events: &[(Status, &Finding)], now: i64) -> String {
    let items = events
        .iter()
        .map(|(s, f)| Item {
            status: *s,
            finding: f,
            first_seen: format_rfc3339(f.first_seen_ms),
            last_seen: format_rfc3339(f.last_seen_ms),
            cleared: f.cleared_ms.map(format_rfc3339),
        })
        .collect::<Vec<_>>();
    let body = Body {
        source: "jazari",
        cluster,
        sent: format_rfc3339(now),
        firing: events.iter().filter(|e| e.0 != Status::Resolved).count(),
        resolved: events.iter().filter(|e| e.0 == Status::Resolved).count(),
        findings: items,
    };
    serde_json::to_string(&body).expect("bodies serialise")
}

fn subject(cluster: &str, events: &[(Status, &Finding)]) -> String {
    let firing = events.iter().filter(|e| e.0 != Status::Resolved).count();
    let resolved = events.len() - firing;
    let worst = events.iter().filter(|e| e.0 != Status::Resolved).map(|e| e.1.severity).max();
    let mut parts = vec![];
    if firing > 0 {
        parts.push(format!("{firing} firing ({})", worst.unwrap_or(Severity::Info).name()));
    }
    if resolved > 0 {
        parts.push(format!("{resolved} resolved"));
    }
    let first = events.first().map(|e| e.1.message.as_str()).unwrap_or("");
    let first: String = first.chars().take(80).collect();
    format!("[jazari {cluster}] {}: {first}", parts.join(", "))
}

/// Plain text, one line per finding.
fn text(cluster: &str, events: &[(Status, &Finding)]) -> String {
    let mut s = format!("Jazari on {cluster}:\n");
    for (status, f) in events {
        let when = match (status, f.cleared_ms) {
            (Status::Resolved, Some(c)) => format!("cleared {}", format_rfc3339(c)),
            _ => format!("since {}", format_rfc3339(f.first_seen_ms)),
        };
        let who = f.institute.as_deref().map(|i| format!(" [{i}]")).unwrap_or_default();
        s.push_str(&format!(
            "- {} {} {}{who}: {} ({when})\n",
            match status {
                Status::Firing => "FIRING",
                Status::Repeat => "STILL",
                Status::Resolved => "RESOLVED",
            },
            f.severity.name(),
            f.kind.name(),
            f.message
        ));
    }
    s
}

/// `GET /api/v1/findings`: active findings (and with `?cleared=true` those
/// cleared within a day); an institute token sees its own institute's only.
pub async fn get_findings(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<FindingsQuery>,
) -> Result<Json<FindingsResponse>, ApiError> {
    let role = app.reader(&headers).await?;
    let now = now_ms();
    if now - app.alerts.lock().await.last_live_ms > 1000 {
        evaluate(&app, false).await?;
    }
    let st = app.alerts.lock().await;
    let mut list = st.tracker.active();
    if q.cleared.unwrap_or(false) {
        list.extend(st.tracker.cleared());
    }
    drop(st);
    if let Some(mine) = role.institute() {
        list.retain(|f| f.institute.as_deref() == Some(mine));
    }
    let fresh = app.cfg.scheduler.kind == SchedulerKind::Slurm
        && app.sched.read().unwrap().fresh(app.cfg.scheduler.fresh_for(), now);
    Ok(Json(FindingsResponse {
        generated_ms: now,
        scheduler: app.cfg.scheduler.kind,
        scheduler_ok: fresh,
        findings: list,
    }))
}
