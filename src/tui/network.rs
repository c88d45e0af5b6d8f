//! Several clusters in one dashboard: each collector is fetched on its own
//! (its own retries), and their last answers are merged into one [`Data`]
//! whenever one of them changes (never per frame).
//!
//! In the merged data every name that belongs to one cluster carries the
//! cluster's name as a prefix, `CLUSTER/NAME`: nodes, jobs, institutes (a
//! grant is per cluster) and findings. Names then stay unique (two clusters
//! both have a `gpu0001` and a job 4711), drill-downs find the right one, and
//! the `cluster:` filter reads the prefix. Users are the network's: a user's
//! rows of every cluster add up.

use super::state::{ClusterStatus, Data, Link};
use crate::api::cluster::{ClusterView, InstituteLive, JobView, NodeView, Summary};
use crate::api::history::SeriesPoint;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// What the merged view calls itself.
pub const NETWORK: &str = "network";

/// One collector's last answer and how the link to it is.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// Its name in the client file, else its URL, until it answers with its cluster's name.
    pub label: String,
    pub url: String,
    pub data: Option<Data>,
    pub link: Link,
}

impl Part {
    /// The cluster's name: as its collector says, else the label.
    pub fn name(&self) -> &str {
        self.data.as_ref().and_then(|d| d.cluster.as_ref()).map(|c| c.cluster.as_str()).unwrap_or(&self.label)
    }
}

/// The header's line for each part.
pub fn statuses(parts: &[Part]) -> Vec<ClusterStatus> {
    parts
        .iter()
        .map(|p| ClusterStatus {
            name: p.name().to_string(),
            url: p.url.clone(),
            summary: p.data.as_ref().and_then(|d| d.cluster.as_ref()).map(|c| c.summary.clone()),
            fetched_ms: p.data.as_ref().map(|d| d.fetched_ms).unwrap_or(0),
            link: p.link.clone(),
        })
        .collect()
}

/// The sum of the clusters' summaries (the mean utilisation and SM active weighted by GPUs).
pub fn total(summaries: &[&Summary]) -> Summary {
    let mut t = Summary {
        utilisation_signal: summaries.first().map(|s| s.utilisation_signal.clone()).unwrap_or_default(),
        ..Default::default()
    };
    let (mut util, mut weight) = (0.0, 0.0);
    let (mut sm, mut sm_weight) = (0.0, 0.0);
    for s in summaries {
        t.nodes += s.nodes;
        t.nodes_reporting += s.nodes_reporting;
        t.gpus += s.gpus;
        t.gpus_allocated += s.gpus_allocated;
        t.gpus_busy += s.gpus_busy;
        t.gpus_idle_allocated += s.gpus_idle_allocated;
        t.gpus_unscheduled += s.gpus_unscheduled;
        t.gpus_unhealthy += s.gpus_unhealthy;
        t.power_w += s.power_w;
        t.jobs += s.jobs;
        if let Some(u) = s.mean_util_pct {
            util += u * s.gpus.max(1) as f64;
            weight += s.gpus.max(1) as f64;
        }
        if let Some(v) = s.mean_sm_active_pct {
            sm += v * s.gpus.max(1) as f64;
            sm_weight += s.gpus.max(1) as f64;
        }
    }
    t.mean_util_pct = (weight > 0.0).then(|| util / weight);
    t.mean_sm_active_pct = (sm_weight > 0.0).then(|| sm / sm_weight);
    t
}

/// The parts' data as one cluster, names prefixed with their cluster's.
pub fn merge(parts: &[Part]) -> Data {
    let mut out = Data::default();
    let mut view = ClusterView {
        cluster: NETWORK.into(),
        generated_ms: 0,
        summary: Summary::default(),
        institutes: vec![],
        nodes: vec![],
        version: None,
        delta: false,
        brief: false,
    };
    let mut summaries = vec![];
    let mut recent = vec![];
    let mut history = vec![];
    for p in parts {
        let Some(d) = &p.data else { continue };
        let name = p.name().to_string();
        let q = |s: &str| format!("{name}/{s}");
        let qo = |s: &Option<String>| s.as_deref().map(q);
        if let Some(c) = &d.cluster {
            summaries.push(&c.summary);
            view.generated_ms = view.generated_ms.max(c.generated_ms);
            view.institutes.extend(c.institutes.iter().map(|i| InstituteLive { id: q(&i.id), ..i.clone() }));
            view.brief |= c.brief;
            view.nodes.extend(c.nodes.iter().map(|n| qualify_node(n, &name)));
        }
        out.jobs.extend(d.jobs.iter().map(|j| qualify_job(j, &name)));
        out.jobs_brief |= d.jobs_brief;
        out.focus_jobs.extend(d.focus_jobs.iter().map(|j| qualify_job(j, &name)));
        if let Some(n) = &d.focus_node {
            out.focus_node = Some(qualify_node(n, &name));
        }
        out.quotas.extend(d.quotas.iter().map(|b| {
            let mut b = b.clone();
            b.institute = q(&b.institute);
            b
        }));
        out.findings.extend(d.findings.iter().map(|f| {
            let mut f = f.clone();
            f.id = q(&f.id);
            f.node = qo(&f.node);
            f.job = qo(&f.job);
            f.institute = qo(&f.institute);
            f.message = format!("{name}: {}", f.message);
            f
        }));
        out.usage.extend(d.usage.iter().cloned());
        if out.usage_from_ms.is_none() {
            out.usage_from_ms = d.usage_from_ms;
            out.usage_label = d.usage_label.clone();
        }
        out.fetched_ms = out.fetched_ms.max(d.fetched_ms);
        recent.push((d.recent.as_slice(), d.recent_bucket_ms));
        history.push((d.history.as_slice(), d.history_bucket_ms));
    }
    view.summary = total(&summaries);
    out.findings.sort_by_key(|f| Reverse(f.severity));
    (out.recent, out.recent_bucket_ms) = merge_series(&recent);
    (out.history, out.history_bucket_ms) = merge_series(&history);
    out.cluster = (!summaries.is_empty()).then_some(view);
    out
}

/// A node of cluster `name`, its names as the merged view has them.
fn qualify_node(n: &NodeView, name: &str) -> NodeView {
    let q = |s: &str| format!("{name}/{s}");
    let qo = |s: &Option<String>| s.as_deref().map(q);
    let mut n = n.clone();
    n.name = q(&n.name);
    for j in &mut n.jobs {
        j.id = q(&j.id);
        j.institute = q(&j.institute);
    }
    for g in &mut n.gpus {
        if let Some(a) = &mut g.allocated_to {
            a.job = qo(&a.job);
            a.institute = q(&a.institute);
        }
        for pr in &mut g.gpu.processes {
            pr.job = qo(&pr.job);
        }
        for s in &mut g.mig_allocated {
            s.allocated_to.job = qo(&s.allocated_to.job);
            s.allocated_to.institute = q(&s.allocated_to.institute);
        }
        for pr in g.gpu.mig_devices.iter_mut().flat_map(|s| &mut s.processes) {
            pr.job = qo(&pr.job);
        }
    }
    n
}

/// A job of cluster `name`, as [`qualify_node`].
fn qualify_job(j: &JobView, name: &str) -> JobView {
    let q = |s: &str| format!("{name}/{s}");
    let mut j = j.clone();
    j.id = q(&j.id);
    j.institute = q(&j.institute);
    j.nodes = j.nodes.iter().map(|n| q(n)).collect();
    for g in &mut j.gpus {
        g.node = q(&g.node);
    }
    j
}

/// Cluster series summed bucket by bucket (on the widest bucket; a cluster's
/// points within one bucket are averaged first; utilisation weighted by GPUs).
pub fn merge_series(series: &[(&[SeriesPoint], i64)]) -> (Vec<SeriesPoint>, i64) {
    let bucket = series.iter().map(|s| s.1).max().unwrap_or(0).max(1);
    // Per bucket: the sums over clusters of (util × gpus, gpus with util, power, allocated, gpus).
    let mut sums: BTreeMap<i64, [f64; 5]> = BTreeMap::new();
    for (points, _) in series {
        let mut mine: BTreeMap<i64, ([f64; 5], f64)> = BTreeMap::new();
        for p in points.iter() {
            let e = mine.entry(p.ts_ms.div_euclid(bucket) * bucket).or_default();
            let g = p.gpus as f64;
            if let Some(u) = p.util_pct {
                e.0[0] += u * g;
                e.0[1] += g;
            }
            e.0[2] += p.power_w;
            e.0[3] += p.allocated_gpus;
            e.0[4] += g;
            e.1 += 1.0;
        }
        for (ts, (v, k)) in mine {
            let s = sums.entry(ts).or_default();
            for i in 0..5 {
                s[i] += v[i] / k;
            }
        }
    }
    let points = sums
        .into_iter()
        .map(|(ts_ms, s)| SeriesPoint {
            ts_ms,
            util_pct: (s[1] > 0.0).then(|| s[0] / s[1]),
            power_w: s[2],
            allocated_gpus: s[3],
            gpus: s[4].round() as u64,
        })
        .collect();
    (points, if series.is_empty() { 0 } else { bucket })
}

/// The cluster part of a merged name (`east` of `east/gpu0001`).
pub fn cluster_of(name: &str) -> &str {
    name.split_once('/').map(|x| x.0).unwrap_or("")
}
