//! The scheduler adapter's I/O: polling Slurm on the configured schedule
//! (`squeue` and `sacct` as commands, or slurmrestd over HTTP), keeping its
//! history, and charging the reports its view has completed; and the
//! endpoint that shows it (`/api/v1/scheduler`).
//!
//! A poll never blocks the runtime: the commands run as async child
//! processes whose output is read as it comes (bounded by
//! `max_output_bytes`), and parsing runs on a blocking thread.

use super::app::App;
use super::error::ApiError;
use crate::api::scheduler::{SchedJob, SchedulerResponse};
use crate::config::SchedulerConfig;
use crate::scheduler::{Snapshot, queued_gpus, slurm};
use crate::time::{format_rfc3339, now_ms};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Runs a command with a timeout, reading its output as it comes; the error
/// says what Jazari was doing (command, bytes read, time taken).
pub async fn run_command(cmd: &[String], timeout: Duration, max_bytes: usize) -> Result<Vec<u8>, String> {
    let started = Instant::now();
    let shown = cmd.join(" ");
    let (exe, args) = cmd.split_first().ok_or("the command is empty")?;
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("Jazari cannot run `{shown}`: {e}"))?;
    let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let work = async move {
        let stdout = async {
            let mut buf = Vec::with_capacity(1 << 16);
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                let n = out.read(&mut chunk).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>((buf, false));
                }
                if buf.len() + n > max_bytes {
                    return Ok((buf, true));
                }
                buf.extend_from_slice(&chunk[..n]);
                counter.store(buf.len(), Ordering::Relaxed);
            }
        };
        let stderr = async {
            let mut buf = Vec::new();
            (&mut err).take(64 << 10).read_to_end(&mut buf).await.map(|_| buf)
        };
        let (o, e) = tokio::join!(stdout, stderr);
        Ok::<_, std::io::Error>((o?, e?))
    };
    let result = tokio::time::timeout(timeout, work).await;
    let elapsed = started.elapsed().as_secs_f64();
    let ((stdout, too_big), stderr) = match result {
        Err(_) => {
            let _ = child.kill().await;
            return Err(format!(
                "`{shown}` did not finish within {timeout:?}: Jazari had read {} bytes of its output in {elapsed:.1} s \
                 and stopped it (a slow slurmctld, or raise [scheduler] timeout)",
                read.load(Ordering::Relaxed)
            ));
        }
        Ok(Err(e)) => return Err(format!("reading the output of `{shown}` failed after {elapsed:.1} s: {e}")),
        Ok(Ok(x)) => x,
    };
    if too_big {
        let _ = child.kill().await;
        return Err(format!(
            "`{shown}` printed more than [scheduler] max_output_bytes ({max_bytes} bytes) in {elapsed:.1} s; \
             Jazari stopped reading it: raise the limit"
        ));
    }
    let status = child.wait().await.map_err(|e| format!("waiting for `{shown}`: {e}"))?;
    if !status.success() {
        let err = String::from_utf8_lossy(&stderr);
        let line = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(format!("`{shown}` failed ({status}) after {elapsed:.1} s: {}", line.trim()));
    }
    Ok(stdout)
}

/// One `squeue` (or slurmrestd `/jobs`) poll: the jobs, and the bytes read.
async fn poll_queue(cfg: &SchedulerConfig, http: &reqwest::Client) -> Result<(Vec<SchedJob>, usize), String> {
    let bytes = match &cfg.url {
        Some(url) => {
            restd_get(cfg, http, &format!("{}/slurm/{}/jobs", url.trim_end_matches('/'), cfg.api_version)).await?
        }
        None => run_command(&cfg.command, cfg.timeout, cfg.max_output_bytes).await?,
    };
    let n = bytes.len();
    let jobs = tokio::task::spawn_blocking(move || slurm::parse_squeue(&bytes)).await.map_err(|e| e.to_string())??;
    Ok((jobs, n))
}

/// Jobs that ended in [since, until), with their GPUs, from `sacct` (or slurmrestd's `/slurmdb/`).
async fn poll_ended(
    cfg: &SchedulerConfig,
    http: &reqwest::Client,
    since_ms: i64,
    until_ms: i64,
) -> Option<Result<Vec<SchedJob>, String>> {
    let time = |ms: i64| format_rfc3339(ms).trim_end_matches('Z').to_string();
    let bytes = match &cfg.url {
        Some(url) => {
            let u = format!(
                "{}/slurmdb/{}/jobs?start_time={}&end_time={}",
                url.trim_end_matches('/'),
                cfg.api_version,
                since_ms / 1000,
                until_ms / 1000
            );
            restd_get(cfg, http, &u).await
        }
        None if cfg.sacct_command.is_empty() => return None,
        None => {
            let mut cmd = cfg.sacct_command.clone();
            cmd.extend(["--allusers".into(), "-X".into(), "-S".into(), time(since_ms), "-E".into(), time(until_ms)]);
            cmd.push("--state=CA,CD,DL,F,NF,OOM,PR,RQ,TO,BF".into());
            run_command(&cmd, cfg.timeout, cfg.max_output_bytes).await
        }
    };
    Some(match bytes {
        Ok(b) => {
            tokio::task::spawn_blocking(move || slurm::parse_sacct(&b)).await.map_err(|e| e.to_string()).and_then(|r| r)
        }
        Err(e) => Err(e),
    })
}

/// A GET to slurmrestd with the JWT.
async fn restd_get(cfg: &SchedulerConfig, http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let file = cfg.token_file.as_deref().ok_or("scheduler.token_file is not set")?;
    let token = jazari_wire::token::read(file).map_err(|e| e.to_string())?;
    let mut req = http.get(url).header("X-SLURM-USER-TOKEN", token).timeout(cfg.timeout);
    if let Some(u) = &cfg.user {
        req = req.header("X-SLURM-USER-NAME", u);
    }
    let started = Instant::now();
    let resp = req.send().await.map_err(|e| format!("slurmrestd at {url}: {e}"))?;
    let status = resp.status();
    let mut body = Vec::new();
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading slurmrestd's answer from {url}: {e}"))? {
        if body.len() + chunk.len() > cfg.max_output_bytes {
            return Err(format!(
                "slurmrestd's answer from {url} is larger than [scheduler] max_output_bytes ({} bytes)",
                cfg.max_output_bytes
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(format!(
            "slurmrestd answered {status} for {url} after {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
        ));
    }
    Ok(body)
}

/// Polls the scheduler every `[scheduler] interval`, forever: the queue, what
/// ended, the history; then charges the reports whose time its view completed
/// (and, when the scheduler does not answer, those waiting longer than it
/// takes to notice, with the agents' facts).
pub async fn poller(app: Arc<App>) {
    let cfg = app.cfg.scheduler.clone();
    let http = match crate::tls::http_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("the scheduler adapter cannot start: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_ok: Option<bool> = None;
    let mut sacct_ok: Option<bool> = None;
    loop {
        tick.tick().await;
        let started = Instant::now();
        let poll_ms = now_ms();
        let res = poll_queue(&cfg, &http).await;
        let since = app.sched.read().unwrap().sacct_since_ms;
        let ended = match &res {
            Ok(_) => poll_ended(&cfg, &http, since.max(poll_ms - crate::store::DEDUP_HORIZON_MS), poll_ms).await,
            Err(_) => None,
        };
        let mut changed = vec![];
        {
            let mut s = app.sched.write().unwrap();
            s.stats.polls += 1;
            s.stats.last_duration_s = started.elapsed().as_secs_f64();
            app.telemetry.scheduler_poll.observe(s.stats.last_duration_s);
            match res {
                Ok((jobs, bytes)) => {
                    if was_ok != Some(true) {
                        tracing::info!(jobs = jobs.len(), bytes, "Slurm answered; allocations come from the scheduler");
                    }
                    was_ok = Some(true);
                    let history = Arc::make_mut(&mut s.history);
                    changed.extend(history.take_squeue(&jobs, poll_ms));
                    s.stats.last_bytes = bytes as u64;
                    s.stats.last_jobs = jobs.len() as u64;
                    // What ran before the previous poll is now known: it is charged.
                    s.complete_until_ms = s.last_ok_ms.max(s.complete_until_ms);
                    s.last_ok_ms = poll_ms;
                    s.snapshot = Snapshot { fetched_ms: poll_ms, jobs, error: None };
                }
                Err(e) => {
                    s.stats.errors += 1;
                    if was_ok != Some(false) {
                        tracing::warn!("Slurm unavailable ({e}); carrying on with the agents' facts alone");
                    }
                    was_ok = Some(false);
                    s.snapshot.error = Some(e);
                }
            }
            match ended {
                Some(Ok(jobs)) => {
                    if sacct_ok == Some(false) {
                        tracing::info!("sacct answers again");
                    }
                    sacct_ok = Some(true);
                    s.stats.last_ended_jobs = jobs.len() as u64;
                    s.stats.sacct_error = None;
                    changed.extend(Arc::make_mut(&mut s.history).take_sacct(&jobs));
                    // Ask again a little before this poll: slurmdbd records ends with a lag.
                    s.sacct_since_ms = poll_ms - 2 * cfg.interval.as_millis() as i64 - 60_000;
                }
                Some(Err(e)) => {
                    if sacct_ok != Some(false) {
                        tracing::warn!("sacct failed ({e}); jobs that end between polls are known from squeue alone");
                    }
                    sacct_ok = Some(false);
                    s.stats.sacct_error = Some(e);
                }
                None => {}
            }
            let horizon = poll_ms - crate::store::DEDUP_HORIZON_MS;
            Arc::make_mut(&mut s.history).forget_before(horizon);
        }
        if !changed.is_empty()
            && let Err(e) = app.save_runs(changed).await
        {
            tracing::warn!("saving the scheduler's history failed: {}", e.message);
        }
        settle(&app).await;
    }
}

/// Charges what can be charged now.
pub async fn settle(app: &Arc<App>) {
    let now = now_ms();
    let grace = (app.cfg.scheduler.fresh_for() + app.cfg.scheduler.interval).as_millis() as i64;
    let until = app.sched.read().unwrap().complete_until_ms.max(now - grace);
    match app.settle(until).await {
        Ok(n) if n > 0 => tracing::debug!(reports = n, "pending reports charged"),
        Ok(_) => {}
        Err(e) => tracing::warn!("charging pending reports failed (they wait for the next poll): {}", e.message),
    }
}

pub async fn get_scheduler(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<SchedulerResponse>, ApiError> {
    let role = app.reader(&headers).await?;
    let pending = app.read(|s| s.pending_count()).await?;
    let s = app.sched.read().unwrap();
    let snap = &s.snapshot;
    let mine = |i: &str| role.institute().is_none_or(|m| m == i);
    let mut queued = queued_gpus(snap, &app.map);
    queued.retain(|i, _| mine(i));
    let jobs = snap
        .jobs
        .iter()
        .filter(|j| mine(app.map.resolve(j.account.as_deref(), j.user.as_deref(), j.group.as_deref())))
        .cloned()
        .collect();
    let mut polls = s.stats.clone();
    polls.pending_reports = pending;
    Ok(Json(SchedulerResponse {
        kind: app.cfg.scheduler.kind,
        fetched_ms: snap.fetched_ms,
        error: snap.error.clone(),
        jobs,
        queued_gpus: queued,
        polls,
    }))
}
