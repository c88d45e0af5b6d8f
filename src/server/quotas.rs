//! `GET /api/v1/quotas`: each institute's burn-down, from the ledger, live
//! state (running jobs, GPUs in use) and the scheduler (time limits, queue).

use super::app::App;
use super::error::ApiError;
use crate::api::UTILISATION_SIGNAL;
use crate::api::quota::{BurnDown, QuotaQuery, QuotasResponse};
use crate::api::scheduler::{SchedJob, SchedulerKind};
use crate::live::Viewer;
use crate::quota::{PeriodKind, RunningJob, Use, burn_down, period_containing};
use crate::time::{DAY_MS, hour_bucket_s, hour_ceil_ms, now_ms, parse_instant};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Arc;

pub async fn quotas(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<QuotaQuery>,
) -> Result<Json<QuotasResponse>, ApiError> {
    let role = app.reader(&headers).await?;
    let now = now_ms();
    let at = match q.at.as_deref() {
        Some(s) => {
            let at = parse_instant(s).map_err(|e| ApiError::bad(format!("at: {e}")))?;
            // The ledger's hourly buckets answer whole hours exactly (now: all charged so far).
            if at.rem_euclid(crate::time::HOUR_MS) != 0 && (at - now).abs() >= 60_000 {
                return Err(ApiError::bad(format!(
                    "at = {} is not on a whole hour: the ledger keeps hourly buckets; \
                     give a date, a whole hour, or leave it out for now",
                    crate::time::format_rfc3339(at)
                )));
            }
            at
        }
        None => now,
    };
    if let (Some(mine), Some(asked)) = (role.institute(), q.institute.as_deref())
        && mine != asked
    {
        return Err(ApiError::forbidden("an institute token reads its own institute only"));
    }
    if let Some(i) = &q.institute
        && app.cfg.institute(i).is_none()
    {
        // Only an admin is told which institutes there are.
        let known = if role.institute().is_none() {
            format!("; known institutes: {}", app.cfg.institute_ids())
        } else {
            String::new()
        };
        return Err(ApiError::not_found(format!("no institute `{i}`{known}")));
    }
    let ids: Vec<String> = app
        .cfg
        .institutes
        .iter()
        .filter(|i| q.institute.as_deref().is_none_or(|x| x == i.id) && role.institute().is_none_or(|m| m == i.id))
        .map(|i| i.id.clone())
        .collect();
    let institutes = burn_downs(&app, &ids, at, now).await?;
    Ok(Json(QuotasResponse {
        cluster: app.cfg.cluster.clone(),
        at_ms: at,
        utilisation_signal: UTILISATION_SIGNAL.into(),
        institutes,
    }))
}

/// Burn-downs of these institutes at `at`.
pub(super) async fn burn_downs(app: &Arc<App>, ids: &[String], at: i64, now: i64) -> Result<Vec<BurnDown>, ApiError> {
    // Running jobs and GPUs in use only make sense now.
    let live_now = (at - now).abs() < 60_000;
    let (jobs, gpus_in_use) = if live_now {
        let live = app.live.read().unwrap();
        let all = Viewer { institute: None };
        let jobs = live.jobs_view(&app.map, app.view_policy(), all, now);
        let view = live.cluster_view(&app.cfg.cluster, &app.map, app.view_policy(), all, now);
        let gpus: HashMap<String, u32> = view.institutes.iter().map(|i| (i.id.clone(), i.gpus_in_use as u32)).collect();
        (jobs, gpus)
    } else {
        (vec![], HashMap::new())
    };
    let snap = app.sched.read().unwrap().snapshot.clone();
    let sched_jobs: HashMap<&str, &SchedJob> = if live_now {
        snap.jobs.iter().filter(|j| j.running()).map(|j| (j.id.as_str(), j)).collect()
    } else {
        HashMap::new()
    };
    let queued = crate::scheduler::queued_gpus(&snap, &app.map);
    let data_since_ms = app.read(|s| s.data_since()).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let inst = app.cfg.institute(id).expect("listed from the config");
        let spec = inst.quota.as_ref();
        let period = spec.map(|s| s.period_at(at)).unwrap_or_else(|| period_containing(PeriodKind::Month, at));
        let from_s = hour_bucket_s(period.start_ms.min(at - 7 * DAY_MS));
        let to_s = hour_ceil_ms(at) / 1000;
        let inst_id = inst.id.clone();
        let rows = app.read(move |s| s.use_rows(&inst_id, from_s, to_s)).await?;
        let running: Vec<RunningJob> = jobs
            .iter()
            .filter(|j| j.institute == inst.id)
            .map(|j| RunningJob {
                id: j.id.clone(),
                gpus: j.gpu_count as u32,
                remaining_s: sched_jobs
                    .get(j.id.as_str())
                    .and_then(|s| Some((s.start_s? + s.time_limit_s?) as f64 - now as f64 / 1000.0))
                    .map(|r| r.max(0.0)),
            })
            .collect();
        let usage = Use {
            rows: &rows,
            running: &running,
            gpus_in_use: gpus_in_use.get(&inst.id).copied().unwrap_or(0),
            data_since_ms,
        };
        let mut b = burn_down(&inst.id, inst.display_name(), spec, at, &usage);
        if live_now && app.cfg.scheduler.kind != SchedulerKind::None {
            b.queued_gpus = Some(queued.get(&inst.id).copied().unwrap_or(0));
        }
        out.push(b);
    }
    Ok(out)
}
