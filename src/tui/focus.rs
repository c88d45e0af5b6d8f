//! What a drill-down needs whole while the lists are brief (`?brief=true`):
//! the draw loop names it ([`Focus`]), the fetcher asks for it with each
//! refresh, and the drill-down draws from it ([`Whole`]).

use super::state::{App, View};
use crate::api::cluster::{JobView, NodeView};

/// What a drill-down shows and the lists leave out: asked for whole with
/// each refresh while it is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Focus {
    Node(String),
    Job(String),
}

impl Focus {
    /// The focus within one cluster of several: names there carry `CLUSTER/`.
    pub fn within(&self, cluster: &str) -> Option<Focus> {
        let strip = |s: &str| s.strip_prefix(cluster)?.strip_prefix('/').map(str::to_string);
        Some(match self {
            Focus::Node(n) => Focus::Node(strip(n)?),
            Focus::Job(j) => Focus::Job(strip(j)?),
        })
    }
}

/// What a drill-down has of its subject whole.
#[derive(Debug)]
pub enum Whole<'a, T> {
    Here(&'a T),
    /// Listed, but the lists are brief and the whole one has not come yet.
    Fetching,
    Gone,
}

impl App {
    /// What the open drill-down needs whole, if any.
    pub fn focus(&self) -> Option<Focus> {
        let d = self.ui.detail.clone()?;
        match self.ui.view {
            View::Nodes => Some(Focus::Node(d)),
            View::Jobs => Some(Focus::Job(d)),
            _ => None,
        }
    }

    /// The node `name` whole: from the cluster view, or while that is brief, from the drill-down's fetch.
    pub fn node_whole(&self, name: &str) -> Whole<'_, NodeView> {
        let Some(c) = &self.data.cluster else { return Whole::Gone };
        let listed = c.nodes.iter().find(|n| n.name == name);
        match (listed, c.brief) {
            (None, _) => Whole::Gone,
            (Some(n), false) => Whole::Here(n),
            (Some(_), true) => match self.data.focus_node.as_ref().filter(|n| n.name == name) {
                Some(n) => Whole::Here(n),
                None => Whole::Fetching,
            },
        }
    }

    /// The job `id` whole (its first entry, as the list finds it), as [`App::node_whole`].
    pub fn job_whole(&self, id: &str) -> Whole<'_, JobView> {
        match (self.job(id), self.data.jobs_brief) {
            (None, _) => Whole::Gone,
            (Some(j), false) => Whole::Here(j),
            (Some(j), true) => match self.data.focus_jobs.iter().find(|f| f.id == j.id && f.institute == j.institute) {
                Some(f) => Whole::Here(f),
                None => Whole::Fetching,
            },
        }
    }
}
