//! `GET /metrics`: the collector for Prometheus, encoded by the Prometheus
//! client library: OpenMetrics text to scrapers that ask for it (Prometheus
//! does), the Prometheus text format (0.0.4) to others (`curl`, `promtool`).
//!
//! - [`live`]: nodes and GPUs from live state (gauges per GPU, energy, ECC and XID counters);
//! - [`ledger`]: GPU-seconds charged per institute (counters), quota burn-downs (gauges);
//! - [`ops`]: reports refused, the scheduler adapter, findings and notifications;
//! - [`families`]: the families a rendering reads off state, for the library to encode;
//!
//! with the instruments of [`telemetry`](super::telemetry) (reports accepted,
//! latency histograms). No job, user or process labels: attribution lives in
//! the ledger. Rendered at most once per `server.metrics_cache` (scrapes that
//! come together wait for one rendering), off the threads that answer requests.

pub mod families;
pub mod ledger;
pub mod live;
pub mod ops;

use super::app::App;
use super::error::ApiError;
use super::telemetry::Rendered;
use crate::api::scheduler::SchedulerKind;
use crate::auth::constant_time_eq;
use crate::live::Viewer;
use crate::time::now_ms;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use families::{Family, Snapshot};
use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// The content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(secret) = &app.metrics_token
        && !super::access::bearer(&headers).is_some_and(|t| constant_time_eq(t.as_bytes(), secret.as_bytes()))
    {
        let message = "/metrics needs `Authorization: Bearer` with the secret of server.metrics_token_file";
        return ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    }
    let rendered = {
        let mut cache = app.telemetry.cache.lock().await;
        match &*cache {
            Some((at, r)) if at.elapsed() < app.cfg.server.metrics_cache => r.clone(),
            _ => match render(&app).await {
                Ok(r) => {
                    let r = Arc::new(r);
                    *cache = Some((Instant::now(), r.clone()));
                    r
                }
                Err(e) => return e.into_response(),
            },
        }
    };
    let (content_type, body) = if wants_openmetrics(&headers) {
        (OPENMETRICS, rendered.openmetrics.clone())
    } else {
        (prometheus_text::CONTENT_TYPE, rendered.prometheus_text.clone())
    };
    ([(header::CONTENT_TYPE, content_type), (header::VARY, "Accept")], body).into_response()
}

/// Whether the `Accept` header prefers OpenMetrics text to the Prometheus text format.
pub fn wants_openmetrics(headers: &HeaderMap) -> bool {
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let (mut openmetrics, mut plain) = (0.0f64, 0.0f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|q| q.parse::<f64>().ok()).unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => plain = plain.max(q),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= plain
}

/// Reads what the store and the alert rules hold, then renders on a blocking thread.
async fn render(app: &Arc<App>) -> Result<Rendered, ApiError> {
    let now = now_ms();
    let cluster = app.cfg.cluster.clone();
    let pending = match app.cfg.scheduler.kind {
        SchedulerKind::Slurm => app.read(|s| s.pending_count()).await.ok(),
        SchedulerKind::None => None,
    };
    let queued = app.read(|s| s.outbox_len()).await.ok();
    let mut snapshot = vec![];
    let a = app.clone();
    match app.read(move |s| a.telemetry.ledger.lock().unwrap().update(s, now).cloned()).await {
        Ok(totals) => snapshot.extend(ledger::institutes(&cluster, &totals)),
        Err(e) => tracing::warn!("/metrics without the institutes' totals: {}", e.message),
    }
    let with_quota: Vec<String> =
        app.cfg.institutes.iter().filter(|i| i.quota.is_some()).map(|i| i.id.clone()).collect();
    if !with_quota.is_empty() {
        match super::quotas::burn_downs(app, &with_quota, now, now).await {
            Ok(b) => snapshot.extend(ledger::quotas(&cluster, &b)),
            Err(e) => tracing::warn!("/metrics without the quotas: {}", e.message),
        }
    }
    let findings = app.alerts.lock().await.tracker.active();
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut families = live_families(&a, now, pending);
        families.append(&mut snapshot);
        families.extend(ops::alerts(&cluster, &findings, *a.alert_stats.lock().unwrap(), queued));
        encode(&a, families)
    })
    .await
    .map_err(ApiError::internal)
}

/// Families from live state, refusals and the scheduler.
fn live_families(app: &App, now: i64, pending: Option<u64>) -> Vec<Family> {
    let mut out = {
        let live = app.live.read().unwrap();
        let view = live.cluster_view(&app.cfg.cluster, &app.map, app.view_policy(), Viewer { institute: None }, now);
        live::families(&view, &live)
    };
    {
        let r = app.refusals.lock().unwrap();
        out.push(ops::refused(r.counts.iter().map(|((reason, node), n)| (reason.name(), node.as_str(), *n))));
    }
    if app.cfg.scheduler.kind == SchedulerKind::Slurm {
        let s = app.sched.read().unwrap();
        let up = s.fresh(app.cfg.scheduler.fresh_for(), now);
        out.extend(ops::scheduler(&s, up, pending));
    }
    out
}

/// Encodes the families and the instruments in both text formats.
fn encode(app: &App, families: Vec<Family>) -> Rendered {
    let mut reg = Registry::default();
    reg.register(
        "jazari_build",
        "The collector's version and the commit it was built from",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION")), ("commit", env!("JAZARI_COMMIT"))]),
    );
    app.telemetry.register(&mut reg, app.cfg.scheduler.kind == SchedulerKind::Slurm);
    reg.register_collector(Box::new(Snapshot(families)));
    let (mut openmetrics, mut prometheus_text) = (String::new(), String::new());
    // Writing into a String cannot fail.
    let _ = text::encode(&mut openmetrics, &reg);
    let _ = prometheus_text::encode(&mut prometheus_text, &reg);
    Rendered { openmetrics, prometheus_text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        wants_openmetrics(&h)
    }

    #[test]
    fn openmetrics_when_asked_for() {
        // What Prometheus sends.
        assert!(accept(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
             text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!accept("*/*"));
        assert!(!accept("text/plain;version=0.0.4"));
        assert!(!accept("application/openmetrics-text;q=0.2,text/plain;q=0.5"));
        assert!(!wants_openmetrics(&HeaderMap::new()));
    }
}
