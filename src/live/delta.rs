//! Views since a version (`?since=`): what a reader that refreshes often
//! needs again. A node's view changes only when a report or its events are
//! taken in, or when it turns stale (or fresh) with time; a job's when a
//! report of a node it is on (or was on) is taken in, when it is seen to
//! have started earlier, or when one of its nodes turns stale. An answer
//! since a version lists only those; the reader keeps the rest and moves
//! their clocks ([`merge_nodes`], [`merge_jobs`]). `jazari top` asks this
//! way: with 1,000 nodes reporting every 10 s and a 2 s refresh, a refresh
//! parses the fifth of the nodes that reported, not all of them.

use super::{Live, NodeLive, ViewPolicy, Viewer};
use crate::accounting::{Allocations, InstituteMap};
use crate::api::cluster::{ClusterView, JobView, JobsResponse, NodeView};
use jazari_wire::Report;
use std::collections::HashSet;

/// A version of live state, as readers name it: this run, the change count,
/// and when the view was made (a node's staleness then).
#[derive(Debug, Clone, PartialEq)]
pub struct Since {
    pub epoch: String,
    pub seq: u64,
    pub at_ms: i64,
}

impl Since {
    pub fn token(&self) -> String {
        format!("{}-{}-{}", self.epoch, self.seq, self.at_ms)
    }

    /// None for anything not made by [`Since::token`] (then the reader gets
    /// every node in full, which is always right).
    pub fn parse(s: &str) -> Option<Since> {
        let mut it = s.rsplitn(3, '-');
        let at_ms = it.next()?.parse().ok()?;
        let seq = it.next()?.parse().ok()?;
        let epoch = it.next()?.to_string();
        Some(Since { epoch, seq, at_ms })
    }
}

/// The jobs a report and its allocations name on a node (a superset of the
/// node's jobs in its view).
pub fn job_ids(r: &Report, allocs: &Allocations) -> Vec<String> {
    let mut ids: Vec<String> = r.jobs.iter().map(|j| j.array.clone().unwrap_or_else(|| j.id.clone())).collect();
    ids.extend(allocs.all().map(|h| h.job.clone()));
    ids
}

fn stale_at(n: &NodeLive, policy: ViewPolicy, at_ms: i64) -> bool {
    at_ms - n.received_ms > policy.stale_after_ms
}

impl Live {
    /// The version of the state as it is now.
    pub fn version(&self, now_ms: i64) -> Since {
        Since { epoch: self.epoch.clone(), seq: self.seq, at_ms: now_ms }
    }

    /// A version this run made, else None.
    fn ours(&self, since: Option<&str>) -> Option<Since> {
        since.and_then(Since::parse).filter(|s| s.epoch == self.epoch && s.seq <= self.seq)
    }

    fn node_changed(&self, n: &NodeLive, s: &Since, policy: ViewPolicy, now_ms: i64) -> bool {
        n.changed_seq > s.seq || stale_at(n, policy, s.at_ms) != stale_at(n, policy, now_ms)
    }

    /// [`Live::cluster_view`], with only the nodes changed since `since` when it names a version of ours.
    pub fn cluster_view_since(
        &self,
        cluster: &str,
        map: &InstituteMap,
        policy: ViewPolicy,
        viewer: Viewer,
        since: Option<&str>,
        now_ms: i64,
    ) -> ClusterView {
        let mut view = self.cluster_view(cluster, map, policy, viewer, now_ms);
        view.version = Some(self.version(now_ms).token());
        if let Some(s) = self.ours(since) {
            view.nodes.retain(|nv| self.nodes.get(&nv.name).is_none_or(|n| self.node_changed(n, &s, policy, now_ms)));
            view.delta = true;
        }
        view
    }

    /// [`Live::jobs_view`], with only the jobs of ids changed since `since`
    /// when it names a version of ours the job stamps still reach.
    pub fn jobs_since(
        &self,
        map: &InstituteMap,
        policy: ViewPolicy,
        viewer: Viewer,
        since: Option<&str>,
        now_ms: i64,
    ) -> JobsResponse {
        let mut jobs = self.jobs_view(map, policy, viewer, now_ms);
        let version = Some(self.version(now_ms).token());
        let Some(s) = self.ours(since).filter(|s| s.seq >= self.jobs_forgotten_seq) else {
            return JobsResponse { jobs, version, generated_ms: now_ms, changed: None, brief: false };
        };
        // Stamped since (started, ended, moved, on a node that reported), or on a node that turned stale.
        let mut changed: HashSet<&str> =
            self.job_changed.iter().filter(|(_, c)| **c > s.seq).map(|(id, _)| id.as_str()).collect();
        let mut changed_nodes = HashSet::new();
        for (name, n) in &self.nodes {
            if self.node_changed(n, &s, policy, now_ms) {
                changed_nodes.insert(name.as_str());
                changed.extend(job_ids(&n.report, &n.allocs).into_iter().filter_map(|id| self.job_key(&id)));
            }
        }
        // Jobs never stamped (none should be) count as changed.
        let mut ids: HashSet<String> = changed.into_iter().map(str::to_string).collect();
        for j in &jobs {
            if !self.job_changed.contains_key(&j.id) || j.nodes.iter().any(|n| changed_nodes.contains(n.as_str())) {
                ids.insert(j.id.clone());
            }
        }
        jobs.retain(|j| ids.contains(&j.id));
        let mut changed: Vec<String> = ids.into_iter().collect();
        changed.sort();
        JobsResponse { jobs, version, generated_ms: now_ms, changed: Some(changed), brief: false }
    }

    /// The stamp table's own copy of a job id (borrowed for as long as `self`).
    fn job_key(&self, id: &str) -> Option<&str> {
        self.job_changed.get_key_value(id).map(|(k, _)| k.as_str())
    }
}

/// Takes `new` in over the nodes `held`: a whole answer replaces them, a
/// delta replaces the nodes it lists and moves the others' age to its time.
/// Two deltas make one (the reader had not taken the first). Both lists are
/// in the view's order (by name), and so is the result.
pub fn merge_nodes(mut held: Vec<NodeView>, new: Vec<NodeView>, delta: bool, generated_ms: i64) -> Vec<NodeView> {
    if !delta {
        return new;
    }
    for n in &mut held {
        n.age_s = (generated_ms - n.last_seen_ms).max(0) as f64 / 1000.0;
    }
    merge_sorted(held, new, |a, b| a.name.cmp(&b.name))
}

/// As [`merge_nodes`], for jobs: the held jobs of a `changed` id are
/// replaced by `new`'s of that id (none for a job that ended); the order is
/// the view's, by id, institute and user.
pub fn merge_jobs(
    mut held: Vec<JobView>,
    new: Vec<JobView>,
    changed: Option<&[String]>,
    generated_ms: i64,
) -> Vec<JobView> {
    let Some(changed) = changed else { return new };
    let changed: HashSet<&str> = changed.iter().map(String::as_str).collect();
    let cmp = |a: &JobView, b: &JobView| (&a.id, &a.institute, &a.user).cmp(&(&b.id, &b.institute, &b.user));
    // A job that goes on takes its own place; the others of a changed id ended.
    let mut fresh = vec![false; held.len()];
    let mut added = vec![];
    for n in new {
        match held.binary_search_by(|h| cmp(h, &n)) {
            Ok(i) => (held[i], fresh[i]) = (n, true),
            Err(_) => added.push(n),
        }
    }
    let mut i = 0;
    held.retain(|j| {
        i += 1;
        fresh[i - 1] || !changed.contains(j.id.as_str())
    });
    for j in &mut held {
        j.run_time_s = j.started_ms.map(|s| (generated_ms - s).max(0) as f64 / 1000.0);
    }
    merge_sorted(held, added, cmp)
}

/// Merges two sorted lists (no key twice in either); on equal keys `new`'s
/// item wins. In place in `held`: an item of a key it has takes that place,
/// and only new keys make it sort again (two sorted runs: one pass).
fn merge_sorted<T>(mut held: Vec<T>, new: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) -> Vec<T> {
    let mut added = vec![];
    for n in new {
        match held.binary_search_by(|h| cmp(h, &n)) {
            Ok(i) => held[i] = n,
            Err(_) => added.push(n),
        }
    }
    if !added.is_empty() {
        held.append(&mut added);
        held.sort_by(cmp);
    }
    held
}

#[cfg(test)]
#[path = "delta_tests.rs"]
mod tests;
