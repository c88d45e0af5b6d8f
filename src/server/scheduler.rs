//! The scheduler adapter's I/O: polling Slurm on the configured schedule,
//! and the endpoints that show what it said (`/api/v1/scheduler`,
//! `/api/v1/findings`).

use super::app::App;
use super::error::ApiError;
use crate::api::scheduler::{FindingsResponse, SchedJob, SchedulerResponse};
use crate::config::SchedulerConfig;
use crate::live::findings::findings;
use crate::scheduler::{Snapshot, queued_gpus, slurm};
use crate::time::now_ms;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

/// Runs the scheduler command with a timeout.
pub fn poll(cfg: &SchedulerConfig) -> Result<Vec<SchedJob>, String> {
    use std::process::{Command, Stdio};
    let (exe, args) = cfg.command.split_first().ok_or("scheduler.command is empty")?;
    let mut child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{exe}`: {e}"))?;
    let deadline = std::time::Instant::now() + cfg.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{}` did not answer within {:?}", cfg.command.join(" "), cfg.timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(format!("`{}` failed ({}): {}", cfg.command.join(" "), out.status, line.trim()));
    }
    slurm::parse_squeue(&String::from_utf8_lossy(&out.stdout))
}

/// Polls the scheduler every `[scheduler] interval`, forever.
pub async fn poller(app: Arc<App>) {
    let cfg = app.cfg.scheduler.clone();
    let mut tick = tokio::time::interval(cfg.interval);
    let mut was_ok: Option<bool> = None;
    loop {
        tick.tick().await;
        let c = cfg.clone();
        let res = tokio::task::spawn_blocking(move || poll(&c)).await.unwrap_or_else(|e| Err(e.to_string()));
        let now = now_ms();
        let mut snap = app.sched.write().unwrap();
        match res {
            Ok(jobs) => {
                if was_ok != Some(true) {
                    tracing::info!(jobs = jobs.len(), "Slurm answered; allocations come from the scheduler");
                }
                was_ok = Some(true);
                *snap = Snapshot { fetched_ms: now, jobs, error: None };
            }
            Err(e) => {
                if was_ok != Some(false) {
                    tracing::warn!("Slurm unavailable ({e}); carrying on with the agents' facts alone");
                }
                was_ok = Some(false);
                snap.error = Some(e);
            }
        }
    }
}

pub async fn get_findings(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<FindingsResponse>, ApiError> {
    let role = app.reader(&headers).await?;
    if role.institute().is_some() {
        return Err(ApiError::forbidden("findings span institutes: use an admin token"));
    }
    let snap = app.sched.read().unwrap().clone();
    let list = findings(
        &app.live.read().unwrap(),
        &snap,
        app.view_policy().stale_after_ms,
        now_ms(),
        app.cfg.scheduler.gpu_index,
    );
    Ok(Json(FindingsResponse {
        scheduler: app.cfg.scheduler.kind,
        scheduler_ok: snap.error.is_none() && snap.fetched_ms > 0,
        findings: list,
    }))
}

pub async fn get_scheduler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<SchedulerResponse>, ApiError> {
    let role = app.reader(&headers).await?;
    let snap = app.sched.read().unwrap().clone();
    let mine = |i: &str| role.institute().is_none_or(|m| m == i);
    let mut queued = queued_gpus(&snap, &app.map);
    queued.retain(|i, _| mine(i));
    let jobs = snap
        .jobs
        .into_iter()
        .filter(|j| mine(app.map.resolve(j.account.as_deref(), j.user.as_deref(), None)))
        .collect();
    Ok(Json(SchedulerResponse {
        kind: app.cfg.scheduler.kind,
        fetched_ms: snap.fetched_ms,
        error: snap.error,
        jobs,
        queued_gpus: queued,
    }))
}
