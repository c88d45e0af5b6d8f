//! What the dashboard asks the collector for, once per refresh.
//!
//! Two things are derived here from what the API has:
//! - The cluster series of a long window come from downsampled history,
//!   which exists only after the collector's first prune run; until then
//!   (and for the minutes since the last run) the series is completed from
//!   the last hour at report resolution, so charts draw from the first minute.
//! - The cluster view and the jobs are asked for `?since=` the versions
//!   taken last: only what changed comes, and the rest is kept from the data
//!   held ([`absorb`]), so a refresh parses the nodes that reported since.
//! - Both are asked for brief (`?brief=true`, [`crate::api::brief`]): what
//!   the lists show, about half the bytes. An open drill-down asks
//!   for its node (`/api/v1/nodes/{node}`) or job (`/api/v1/jobs?id=`) whole
//!   with each refresh ([`Focus`]).
//! - The Users view's GPU-hours are the ledger's sums per user over the
//!   quota period most institutes share (else the calendar month), asked for
//!   at most every 30 s: the ledger moves by the hour.

use super::focus::Focus;
use super::state::{Data, WINDOWS};
use crate::api::cluster::{ClusterView, JobsQuery, JobsResponse, NodeView, SinceQuery};
use crate::api::findings::FindingsResponse;
use crate::api::history::{SeriesPoint, SeriesQuery, SeriesResponse};
use crate::api::paths;
use crate::api::quota::{BurnDown, QuotasResponse};
use crate::api::usage::{UsageQuery, UsageResponse, UsageRow};
use crate::client::{Client, ClientError};
use crate::time::now_ms;

/// How often the users' period sums are asked for again.
const USAGE_EVERY_MS: i64 = 30_000;

/// The last ledger sums per user, kept between fetches.
#[derive(Debug, Clone, Default)]
pub struct UsageCache {
    fetched_ms: i64,
    from_ms: Option<i64>,
    label: String,
    rows: Vec<UsageRow>,
}

/// The versions of the cluster view and the jobs last fetched (`?since=`).
#[derive(Debug, Clone, Default)]
pub struct Versions {
    cluster: Option<String>,
    jobs: Option<String>,
}

/// Fetches everything the views need; the cluster view and the jobs brief
/// and since `versions`, which move on only when everything came; what
/// `focus` names, whole; the History view's series of `window` while it is
/// shown (else the data has none: [`absorb`] keeps what was held).
pub fn fetch(
    client: &Client,
    window: Option<usize>,
    usage: &mut UsageCache,
    versions: &mut Versions,
    focus: Option<&Focus>,
) -> Result<Data, ClientError> {
    let cluster: ClusterView =
        client.get_with(paths::CLUSTER, &SinceQuery { since: versions.cluster.clone(), brief: true })?;
    let jobs: JobsResponse =
        client.get_with(paths::JOBS, &JobsQuery { since: versions.jobs.clone(), brief: true, id: None })?;
    let (mut focus_node, mut focus_jobs) = (None, vec![]);
    match focus {
        Some(Focus::Node(name)) => {
            match client.get::<NodeView>(&format!("{}/{name}", paths::NODES)) {
                Ok(n) => focus_node = Some(n),
                // Gone since: the list says so.
                Err(ClientError::Refused { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Some(Focus::Job(id)) => {
            let q = JobsQuery { id: Some(id.clone()), ..Default::default() };
            focus_jobs = client.get_with::<_, JobsResponse>(paths::JOBS, &q)?.jobs;
            // A collector before `?id=` answers with every job.
            focus_jobs.retain(|j| &j.id == id);
        }
        None => {}
    }
    let quotas: QuotasResponse = client.get(paths::QUOTAS)?;
    let (recent, recent_bucket_ms) = series(client, "24h", 240)?;
    let (history, history_bucket_ms) = match window {
        Some(w) => series(client, WINDOWS[w].0, 300)?,
        None => (vec![], 0),
    };
    // Findings span institutes: an institute token sees its own, older collectors none.
    let findings = match client.get::<FindingsResponse>(paths::FINDINGS) {
        Ok(f) => f.findings,
        Err(ClientError::Refused { status: 403 | 404, .. }) => vec![],
        Err(e) => return Err(e),
    };
    let now = now_ms();
    let (from_ms, label) = users_period(&quotas.institutes, now);
    if now - usage.fetched_ms >= USAGE_EVERY_MS || usage.from_ms != Some(from_ms) {
        let q = UsageQuery {
            from: Some((from_ms / 1000).to_string()),
            group_by: Some("user".into()),
            ..Default::default()
        };
        // The users' sums are a nicety: a refusal leaves the columns empty.
        match client.get_with::<_, UsageResponse>(paths::USAGE, &q) {
            Ok(r) => usage.rows = r.rows,
            Err(e @ ClientError::Unreachable { .. }) => return Err(e),
            Err(e) => tracing::warn!("usage per user: {e}"),
        }
        *usage = UsageCache { fetched_ms: now, from_ms: Some(from_ms), label, rows: std::mem::take(&mut usage.rows) };
    }
    *versions = Versions { cluster: cluster.version.clone(), jobs: jobs.version.clone() };
    Ok(Data {
        cluster: Some(cluster),
        jobs: jobs.jobs,
        jobs_changed: jobs.changed,
        jobs_ms: jobs.generated_ms,
        quotas: quotas.institutes,
        recent,
        history,
        recent_bucket_ms,
        history_bucket_ms,
        findings,
        usage: usage.rows.clone(),
        usage_from_ms: usage.from_ms,
        usage_label: usage.label.clone(),
        fetched_ms: now,
        jobs_brief: jobs.brief,
        focus_node,
        focus_jobs,
    })
}

/// Takes `new` in over `held`: a delta (`?since=`) keeps what `held` has
/// of everything it does not list. Over a delta not yet taken it makes one
/// delta of both.
pub fn absorb(held: &mut Data, mut new: Data) {
    use crate::live::delta::{merge_jobs, merge_nodes};
    if let Some(c) = new.cluster.as_mut()
        && c.delta
    {
        let before = held.cluster.take();
        let still_delta = before.as_ref().is_none_or(|b| b.delta);
        c.nodes = merge_nodes(
            before.map(|b| b.nodes).unwrap_or_default(),
            std::mem::take(&mut c.nodes),
            true,
            c.generated_ms,
        );
        c.delta = still_delta;
    }
    if let Some(changed) = new.jobs_changed.take() {
        new.jobs =
            merge_jobs(std::mem::take(&mut held.jobs), std::mem::take(&mut new.jobs), Some(&changed), new.jobs_ms);
        new.jobs_changed = held.jobs_changed.take().map(|mut h| {
            h.extend(changed);
            h
        });
    }
    if new.history_bucket_ms == 0 {
        new.history = std::mem::take(&mut held.history);
        new.history_bucket_ms = held.history_bucket_ms;
    }
    *held = new;
}

/// A window of the cluster series, completed from report-resolution history.
fn series(client: &Client, window: &str, points: usize) -> Result<(Vec<SeriesPoint>, i64), ClientError> {
    let get = |window: &str, points: usize| -> Result<SeriesResponse, ClientError> {
        client.get_with(paths::CLUSTER_HISTORY, &SeriesQuery { window: Some(window.into()), points: Some(points) })
    };
    let main = get(window, points)?;
    let bucket = main.bucket_ms;
    let last = main.points.last().map(|p| p.ts_ms + bucket).unwrap_or(i64::MIN);
    if window == "1h" || last >= now_ms() - 2 * bucket {
        return Ok((main.points, bucket));
    }
    let raw = get("1h", 120)?;
    Ok((complete(main.points, last, raw.points), bucket))
}

/// `main`'s points, then those of `raw` from `after` on.
pub fn complete(mut main: Vec<SeriesPoint>, after: i64, raw: Vec<SeriesPoint>) -> Vec<SeriesPoint> {
    main.extend(raw.into_iter().filter(|p| p.ts_ms >= after));
    main
}

/// The period the Users view sums over: the quota period most institutes
/// share, else the calendar month (UTC).
pub fn users_period(quotas: &[BurnDown], now_ms: i64) -> (i64, String) {
    let mut counts: Vec<(i64, &str, usize)> = vec![];
    for p in quotas.iter().filter_map(|q| q.period.as_ref()) {
        match counts.iter_mut().find(|c| c.0 == p.start_ms) {
            Some(c) => c.2 += 1,
            None => counts.push((p.start_ms, &p.label, 1)),
        }
    }
    if let Some((start, label, _)) = counts.into_iter().max_by_key(|c| (c.2, c.0)) {
        return (start, label.to_string());
    }
    let days = now_ms.div_euclid(86_400_000);
    let (y, m, _) = crate::time::civil_from_days(days);
    (crate::time::days_from_civil(y, m, 1) * 86_400_000, format!("{y}-{m:02}"))
}
