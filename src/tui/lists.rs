//! The tables' rows in the order shown: filtered by `/` (see [`super::filter`])
//! and sorted by `s`. The Users table is derived here from the running jobs
//! and the ledger's sums per user.

use super::filter::{Filter, NodeState, Term, has, job_id, node_term};
use super::state::{App, FINDING_SORTS, JOB_SORTS, NODE_SORTS, USER_SORTS, View, node_power, node_util, sort_name};
use crate::api::cluster::{JobView, NodeView};
use crate::api::findings::Finding;
use crate::api::quota::BurnDown;
use crate::api::usage::GroupKey;
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// A row of the Users view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    pub user: String,
    /// Institutes of the user's running jobs (or, with none, none known).
    pub institutes: Vec<String>,
    /// Clusters of the user's running jobs.
    pub clusters: Vec<String>,
    pub gpus_now: usize,
    pub jobs_now: usize,
    /// Of the GPUs held now, those idle.
    pub idle_now: usize,
    /// Over the period (`Data::usage_from_ms` to now), from the ledger.
    pub gpu_hours: f64,
    pub busy_gpu_hours: f64,
    pub idle_alloc_gpu_hours: f64,
    /// Allocated GPU-hours GPM measured this period, and those × SM active.
    pub gpm_gpu_hours: f64,
    pub sm_active_gpu_hours: f64,
}

impl UserRow {
    /// Busy over allocated GPU-hours this period, percent.
    pub fn efficiency_pct(&self) -> Option<f64> {
        (self.gpu_hours > 0.0).then(|| self.busy_gpu_hours / self.gpu_hours * 100.0)
    }

    /// SM active over the GPM-measured GPU-hours this period, percent; None where nothing was measured.
    pub fn sm_active_pct(&self) -> Option<f64> {
        (self.gpm_gpu_hours > 0.0).then(|| self.sm_active_gpu_hours / self.gpm_gpu_hours * 100.0)
    }
}

impl App {
    fn filter(&self) -> Filter {
        Filter::parse(&self.ui.filter)
    }

    /// Nodes in table order (filtered, sorted).
    pub fn nodes(&self) -> Vec<&NodeView> {
        let Some(c) = &self.data.cluster else { return vec![] };
        let f = self.filter();
        let mut v: Vec<&NodeView> = c
            .nodes
            .iter()
            .filter(|n| {
                f.matches(|t| match t {
                    Term::Cluster(c) => self.in_cluster(&n.name, c),
                    _ => node_term(n, t),
                })
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        match sort_name(&self.ui, View::Nodes, &NODE_SORTS) {
            "state" => v.sort_by_key(|n| NodeState::of(n)),
            "util" => v.sort_by(|a, b| node_util(b).total_cmp(&node_util(a))),
            "power" => v.sort_by(|a, b| node_power(b).total_cmp(&node_power(a))),
            "temp" => v.sort_by_key(|n| Reverse(n.gpus.iter().filter_map(|g| g.gpu.temperature_c).max())),
            "jobs" => v.sort_by_key(|n| Reverse(n.jobs.len())),
            _ => {}
        }
        v
    }

    /// Jobs in table order.
    pub fn jobs(&self) -> Vec<&JobView> {
        let f = self.filter();
        let mut v: Vec<&JobView> = self
            .data
            .jobs
            .iter()
            .filter(|j| {
                f.matches(|t| match t {
                    Term::Name(w) => {
                        has(&j.id, w) || j.user.as_deref().is_some_and(|u| has(u, w)) || has(&j.institute, w)
                    }
                    Term::State(s) => match s {
                        Some(NodeState::IdleAlloc) => j.idle_gpus > 0,
                        Some(NodeState::Ok) => j.idle_gpus == 0,
                        _ => false,
                    },
                    Term::User(u) => j.user.as_deref().is_some_and(|x| has(x, u)),
                    Term::Job(id) => job_id(&j.id, id),
                    Term::Institute(i) => has(&j.institute, i),
                    Term::Cluster(c) => self.in_cluster(&j.id, c),
                })
            })
            .collect();
        match sort_name(&self.ui, View::Jobs, &JOB_SORTS) {
            "util" => v.sort_by(|a, b| a.mean_util_pct.unwrap_or(0.0).total_cmp(&b.mean_util_pct.unwrap_or(0.0))),
            "gpus" => v.sort_by_key(|j| Reverse(j.gpu_count)),
            "runtime" => v.sort_by(|a, b| b.run_time_s.unwrap_or(0.0).total_cmp(&a.run_time_s.unwrap_or(0.0))),
            "institute" => v.sort_by(|a, b| a.institute.cmp(&b.institute).then(natural(&a.id, &b.id))),
            _ => v.sort_by(|a, b| natural(&a.id, &b.id)),
        }
        v
    }

    /// Institutes in table order.
    pub fn institutes(&self) -> Vec<&BurnDown> {
        let f = self.filter();
        self.data
            .quotas
            .iter()
            .filter(|q| {
                f.matches(|t| match t {
                    Term::Name(w) | Term::Institute(w) => has(&q.institute, w) || has(&q.name, w),
                    Term::Cluster(c) => self.in_cluster(&q.institute, c),
                    _ => false,
                })
            })
            .collect()
    }

    /// Findings in table order (the collector's: most severe first).
    pub fn findings(&self) -> Vec<&Finding> {
        let f = self.filter();
        let mut v: Vec<&Finding> = self
            .data
            .findings
            .iter()
            .filter(|x| {
                f.matches(|t| match t {
                    Term::Name(w) => {
                        x.node.as_deref().is_some_and(|n| has(n, w))
                            || x.job.as_deref().is_some_and(|j| has(j, w))
                            || x.institute.as_deref().is_some_and(|i| has(i, w))
                            || has(x.kind.name(), w)
                    }
                    Term::State(s) => {
                        let node = x.node.as_deref().and_then(|n| self.node(n));
                        node.is_some_and(|n| *s == Some(NodeState::of(n)))
                    }
                    Term::User(u) => x
                        .job
                        .as_deref()
                        .and_then(|j| self.job(j))
                        .is_some_and(|j| j.user.as_deref().is_some_and(|x| has(x, u))),
                    Term::Job(id) => x.job.as_deref().is_some_and(|j| job_id(j, id)),
                    Term::Institute(i) => x.institute.as_deref().is_some_and(|x| has(x, i)),
                    // With several clusters every finding's id is prefixed.
                    Term::Cluster(c) => self.in_cluster(&x.id, c),
                })
            })
            .collect();
        let subject = |x: &Finding| (x.node.clone(), x.job.clone(), x.gpu.clone());
        match sort_name(&self.ui, View::Findings, &FINDING_SORTS) {
            "kind" => v.sort_by_key(|x| (x.kind.name(), Reverse(x.severity))),
            "subject" => v.sort_by_key(|x| subject(x)),
            "institute" => v.sort_by_key(|x| (x.institute.clone(), Reverse(x.severity))),
            "first seen" => v.sort_by_key(|x| Reverse(x.first_seen_ms)),
            "last seen" => v.sort_by_key(|x| Reverse(x.last_seen_ms)),
            _ => v.sort_by_key(|x| Reverse(x.severity)),
        }
        v
    }

    /// Users in table order.
    pub fn users(&self) -> Vec<UserRow> {
        let f = self.filter();
        let mut by: BTreeMap<String, UserRow> = BTreeMap::new();
        for j in &self.data.jobs {
            let name = j.user.clone().unwrap_or_else(|| "(unknown)".into());
            let u = by.entry(name.clone()).or_insert_with(|| UserRow { user: name, ..Default::default() });
            u.gpus_now += j.gpu_count;
            u.jobs_now += 1;
            u.idle_now += j.idle_gpus;
            if !u.institutes.contains(&j.institute) {
                u.institutes.push(j.institute.clone());
            }
            let cluster = self.cluster_name_of(&j.id);
            if !u.clusters.iter().any(|c| c == cluster) {
                u.clusters.push(cluster.to_string());
            }
        }
        for r in &self.data.usage {
            let GroupKey::User(Some(name)) = &r.key else { continue };
            let a = &r.amounts;
            if a.allocated_gpu_seconds <= 0.0 && !by.contains_key(name) {
                continue;
            }
            let u = by.entry(name.clone()).or_insert_with(|| UserRow { user: name.clone(), ..Default::default() });
            u.gpu_hours += a.allocated_gpu_seconds / 3600.0;
            u.busy_gpu_hours += a.busy_gpu_seconds / 3600.0;
            u.idle_alloc_gpu_hours += a.idle_allocated_gpu_seconds / 3600.0;
            u.gpm_gpu_hours += a.gpm_measured_gpu_seconds / 3600.0;
            u.sm_active_gpu_hours += a.sm_active_gpu_seconds / 3600.0;
        }
        let mut v: Vec<UserRow> = by
            .into_values()
            .filter(|u| {
                f.matches(|t| match t {
                    Term::Name(w) | Term::User(w) => has(&u.user, w),
                    Term::Institute(i) => u.institutes.iter().any(|x| has(x, i)),
                    Term::Cluster(c) => u.clusters.iter().any(|x| has(x, c)),
                    Term::State(Some(NodeState::IdleAlloc)) => u.idle_now > 0,
                    _ => false,
                })
            })
            .collect();
        match sort_name(&self.ui, View::Users, &USER_SORTS) {
            "gpu-hours" => v.sort_by(|a, b| b.gpu_hours.total_cmp(&a.gpu_hours)),
            "idle" => v.sort_by(|a, b| b.idle_alloc_gpu_hours.total_cmp(&a.idle_alloc_gpu_hours)),
            "jobs" => v.sort_by_key(|u| Reverse(u.jobs_now)),
            "user" => {}
            _ => v.sort_by(|a, b| b.gpus_now.cmp(&a.gpus_now).then(b.gpu_hours.total_cmp(&a.gpu_hours))),
        }
        v
    }

    /// The cluster a node, job, institute or finding (by its name or id) is in.
    pub fn cluster_name_of<'a>(&'a self, name: &'a str) -> &'a str {
        if self.multi() {
            super::network::cluster_of(name)
        } else {
            self.data.cluster.as_ref().map(|c| c.cluster.as_str()).unwrap_or("")
        }
    }

    /// Whether `name` is in a cluster whose name holds `part` (the `cluster:` filter).
    pub fn in_cluster(&self, name: &str, part: &str) -> bool {
        has(self.cluster_name_of(name), part)
    }

    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.data.cluster.as_ref()?.nodes.iter().find(|n| n.name == name)
    }

    pub fn job(&self, id: &str) -> Option<&JobView> {
        self.data.jobs.iter().find(|j| j.id == id)
    }

    /// A finding's subject in words: "gpu0003 GPU 2", "job 4711 on gpu0003", "ibn-sina".
    pub fn subject(&self, x: &Finding) -> String {
        let gpu = x.gpu.as_deref().map(|g| {
            let index = x
                .node
                .as_deref()
                .and_then(|n| self.node(n))
                .and_then(|n| n.gpus.iter().find(|v| v.gpu.uuid.as_deref() == Some(g)))
                .map(|v| v.gpu.index.to_string());
            match index.or_else(|| g.strip_prefix("index:").map(str::to_string)) {
                Some(i) => format!("GPU {i}"),
                None => g.to_string(),
            }
        });
        match (&x.job, &x.node, gpu) {
            (Some(j), Some(n), _) => format!("job {j} on {n}"),
            (Some(j), None, _) => format!("job {j}"),
            (None, Some(n), Some(g)) => format!("{n} {g}"),
            (None, Some(n), None) => n.clone(),
            (None, None, _) => x.institute.clone().unwrap_or_else(|| "cluster".into()),
        }
    }
}

/// Numbers in numeric order, else text order.
pub fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}
