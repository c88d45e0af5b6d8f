//! Read endpoints over live state and the store: cluster, node, jobs, usage,
//! coverage, history, institutes.

use super::app::App;
use super::error::ApiError;
use crate::api::brief;
use crate::api::cluster::{ClusterView, JobsQuery, JobsResponse, NodeView, SinceQuery};
use crate::api::history::{HistoryQuery, HistoryResponse, Resolution, SeriesQuery, SeriesResponse};
use crate::api::usage::{CoverageResponse, GroupBy, GroupKey, PeriodQuery, UsageQuery, UsageResponse, UsageRow};
use crate::api::{InstituteRef, InstitutesResponse, UTILISATION_SIGNAL};
use crate::live::Viewer;
use crate::time::{format_rfc3339, hour_ceil_ms, now_ms, parse_instant};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use std::sync::Arc;

type Answer<T> = Result<Json<T>, ApiError>;

pub async fn cluster(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<SinceQuery>,
) -> Answer<ClusterView> {
    let role = app.reader(&headers).await?;
    let viewer = Viewer { institute: role.institute() };
    let live = app.live.read().unwrap();
    let mut view =
        live.cluster_view_since(&app.cfg.cluster, &app.map, app.view_policy(), viewer, q.since.as_deref(), now_ms());
    drop(live);
    if q.brief {
        view.nodes.iter_mut().for_each(brief::node);
        view.brief = true;
    }
    Ok(Json(view))
}

pub async fn node(State(app): State<Arc<App>>, headers: HeaderMap, Path(node): Path<String>) -> Answer<NodeView> {
    let role = app.reader(&headers).await?;
    let viewer = Viewer { institute: role.institute() };
    let live = app.live.read().unwrap();
    let n = live.nodes.get(&node).ok_or_else(|| ApiError::not_found(format!("no node `{node}` has reported")))?;
    Ok(Json(live.node_view(n, &app.map, app.view_policy(), viewer, now_ms())))
}

pub async fn jobs(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<JobsQuery>) -> Answer<JobsResponse> {
    let role = app.reader(&headers).await?;
    let viewer = Viewer { institute: role.institute() };
    let live = app.live.read().unwrap();
    let now = now_ms();
    let mut r = match &q.id {
        Some(id) => {
            let mut jobs = live.jobs_view(&app.map, app.view_policy(), viewer, now);
            jobs.retain(|j| &j.id == id);
            JobsResponse { jobs, version: None, generated_ms: now, changed: None, brief: false }
        }
        None => live.jobs_since(&app.map, app.view_policy(), viewer, q.since.as_deref(), now),
    };
    drop(live);
    if q.brief {
        r.jobs.iter_mut().for_each(brief::job);
        r.brief = true;
    }
    Ok(Json(r))
}

/// Parses `from`/`to` into [from, to) milliseconds; `to` defaults to now and
/// `from` to 24 hours before `to`.
pub fn period(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    period_or(from, to, now_ms())
}

fn period_or(from: Option<&str>, to: Option<&str>, default_to: i64) -> Result<(i64, i64), ApiError> {
    let to_ms = to.map(parse_instant).transpose().map_err(|e| ApiError::bad(format!("to: {e}")))?.unwrap_or(default_to);
    let from_ms = from
        .map(parse_instant)
        .transpose()
        .map_err(|e| ApiError::bad(format!("from: {e}")))?
        .unwrap_or(to_ms - crate::time::DAY_MS);
    if from_ms >= to_ms {
        return Err(ApiError::bad("`from` must be before `to`"));
    }
    Ok((from_ms, to_ms))
}

/// A period over the ledger: `to` defaults to the end of the hour under way
/// (all that is charged so far), `from` to 24 hours before `to`.
fn ledger_period(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    period_or(from, to, hour_ceil_ms(now_ms()))
}

pub async fn usage(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Answer<UsageResponse> {
    let role = app.reader(&headers).await?;
    let (from_ms, to_ms) = ledger_period(q.from.as_deref(), q.to.as_deref())?;
    let group = q.group_by.as_deref().unwrap_or("institute");
    let group_by = GroupBy::parse(group).ok_or_else(|| {
        ApiError::bad(format!("group_by `{group}` is not one of institute, account, user, job, node, gpu, hour"))
    })?;
    let institute = app.scoped_institute(&role, q.institute.as_deref())?;
    let rows = app
        .read(move |s| crate::store::period::usage(s, from_ms, to_ms, group_by, institute.as_deref()))
        .await?
        .map_err(ApiError::bad)?;
    Ok(Json(UsageResponse {
        from: format_rfc3339(from_ms),
        to: format_rfc3339(to_ms),
        group_by,
        utilisation_signal: UTILISATION_SIGNAL.into(),
        rows: rows
            .into_iter()
            .map(|r| UsageRow { key: GroupKey::new(group_by, r.key), amounts: (&r.amounts).into() })
            .collect(),
    }))
}

pub async fn coverage(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PeriodQuery>,
) -> Answer<CoverageResponse> {
    app.reader(&headers).await?;
    let (from_ms, to_ms) = ledger_period(q.from.as_deref(), q.to.as_deref())?;
    let nodes = app.read(move |s| crate::store::period::coverage(s, from_ms, to_ms)).await?.map_err(ApiError::bad)?;
    Ok(Json(CoverageResponse { nodes }))
}

/// The finest resolution still kept for data `age_ms` old.
fn resolution_for(app: &App, age_ms: i64) -> Resolution {
    let ret = &app.cfg.retention;
    if age_ms <= ret.raw.as_millis() as i64 {
        Resolution::Raw
    } else if age_ms <= ret.minute.as_millis() as i64 {
        Resolution::Minute
    } else {
        Resolution::Hour
    }
}

pub async fn cluster_history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<SeriesQuery>,
) -> Answer<SeriesResponse> {
    app.reader(&headers).await?;
    let window = q.window.unwrap_or_else(|| "24h".into());
    let window_ms =
        crate::time::duration::parse(&window).map_err(|e| ApiError::bad(format!("window: {e}")))?.as_millis() as i64;
    let points = q.points.unwrap_or(120).clamp(2, 2000) as i64;
    let now = now_ms();
    let resolution = resolution_for(&app, window_ms);
    let bucket = (window_ms / points).max(resolution.step_ms());
    let from = (now - window_ms).div_euclid(bucket) * bucket;
    let points = app.read(move |s| s.cluster_series(resolution, from, now, bucket)).await?;
    Ok(Json(SeriesResponse { window, resolution, bucket_ms: bucket, points }))
}

pub async fn history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Answer<HistoryResponse> {
    app.reader(&headers).await?;
    let (from_ms, to_ms) = period(q.from.as_deref(), q.to.as_deref())?;
    let resolution = match q.resolution.as_deref().unwrap_or("auto") {
        "auto" => resolution_for(&app, now_ms() - from_ms),
        "raw" => Resolution::Raw,
        "minute" => Resolution::Minute,
        "hour" => Resolution::Hour,
        other => return Err(ApiError::bad(format!("resolution `{other}` is not one of auto, raw, minute, hour"))),
    };
    let limit = q.limit.unwrap_or(100_000).min(1_000_000);
    let (node, gpu) = (q.node, q.gpu);
    let points =
        app.read(move |s| s.history(resolution, from_ms, to_ms, node.as_deref(), gpu.as_deref(), limit)).await?;
    Ok(Json(HistoryResponse { resolution, points }))
}

pub async fn institutes(State(app): State<Arc<App>>, headers: HeaderMap) -> Answer<InstitutesResponse> {
    let role = app.reader(&headers).await?;
    let institutes = app
        .cfg
        .institutes
        .iter()
        .filter(|i| role.institute().is_none_or(|m| m == i.id))
        .map(|i| InstituteRef { id: i.id.clone(), name: i.display_name().to_string() })
        .collect();
    Ok(Json(InstitutesResponse { institutes }))
}
