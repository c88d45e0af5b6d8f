//! The `/` filter: words that must all match. A bare word matches a row's
//! name (a node's name, a job's id, a user, an institute, a finding's
//! subject); a prefixed word matches one field:
//!
//! - `state:stale`, `state:unhealthy`, `state:idle-alloc`, `state:ok`
//! - `user:NAME`, `job:ID`, `institute:ID`
//! - `cluster:NAME`, with several clusters (names are then `CLUSTER/NAME`)
//!
//! Matching ignores case; `user:`, `institute:` and names match on a part
//! (`user:ali` finds alice), `job:` on the whole id or its start.

use crate::api::cluster::NodeView;

/// What a node is, worst first: the order `state` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeState {
    Stale,
    Unhealthy,
    IdleAlloc,
    Ok,
}

impl NodeState {
    pub fn of(n: &NodeView) -> Self {
        if n.stale {
            NodeState::Stale
        } else if n.gpus.iter().any(|g| g.unhealthy) {
            NodeState::Unhealthy
        } else if n.gpus.iter().any(|g| g.idle_allocated) {
            NodeState::IdleAlloc
        } else {
            NodeState::Ok
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stale" => NodeState::Stale,
            "unhealthy" => NodeState::Unhealthy,
            "idle-alloc" | "idle" | "idle-allocated" => NodeState::IdleAlloc,
            "ok" => NodeState::Ok,
            _ => return None,
        })
    }
}

/// One word of the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Name(String),
    /// `None` for a state word the filter does not know: matches nothing.
    State(Option<NodeState>),
    User(String),
    Job(String),
    Institute(String),
    Cluster(String),
}

/// The lines the help view shows about the filter.
pub const HELP: &[&str] = &[
    "/ narrows a table; all words match.",
    "A bare word matches names only:",
    "node, job id, user, institute.",
    "Prefixes match one field:",
    " state:stale|unhealthy|idle-alloc|ok",
    " user:NAME job:ID institute:ID",
    " cluster:NAME (several clusters)",
];

/// A parsed filter: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter(pub Vec<Term>);

impl Filter {
    pub fn parse(s: &str) -> Self {
        let terms = s
            .split_whitespace()
            .map(|w| {
                let w = w.to_lowercase();
                match w.split_once(':') {
                    Some(("state", v)) => Term::State(NodeState::parse(v)),
                    Some(("user", v)) => Term::User(v.into()),
                    Some(("job", v)) => Term::Job(v.into()),
                    Some(("institute" | "inst", v)) => Term::Institute(v.into()),
                    Some(("cluster", v)) => Term::Cluster(v.into()),
                    _ => Term::Name(w),
                }
            })
            .collect();
        Filter(terms)
    }

    /// Whether a row passes: `field` answers one term for the row.
    pub fn matches(&self, field: impl Fn(&Term) -> bool) -> bool {
        self.0.iter().all(field)
    }
}

/// `value` holds `part`, ignoring case (`part` is lower case already).
pub fn has(value: &str, part: &str) -> bool {
    value.to_lowercase().contains(part)
}

/// A job id matches `job:` on its whole or its start (`job:47` finds 4711),
/// also after a cluster's prefix (`east/4711`).
pub fn job_id(id: &str, want: &str) -> bool {
    let id = id.to_lowercase();
    id.starts_with(want) || id.split_once('/').is_some_and(|(_, j)| j.starts_with(want))
}

/// A node against one term.
pub fn node_term(n: &NodeView, t: &Term) -> bool {
    match t {
        Term::Name(w) => has(&n.name, w),
        Term::State(s) => *s == Some(NodeState::of(n)),
        Term::User(u) => n.jobs.iter().any(|j| j.user.as_deref().is_some_and(|x| has(x, u))),
        Term::Job(id) => n.jobs.iter().any(|j| job_id(&j.id, id)),
        Term::Institute(i) => n.jobs.iter().any(|j| has(&j.institute, i)),
        // The caller knows the clusters (see `App::in_cluster`).
        Term::Cluster(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_prefixes() {
        let f = Filter::parse("gpu00 state:Stale user:ali job:47 institute:ibn cluster:East bogus:x");
        assert_eq!(
            f.0,
            vec![
                Term::Name("gpu00".into()),
                Term::State(Some(NodeState::Stale)),
                Term::User("ali".into()),
                Term::Job("47".into()),
                Term::Institute("ibn".into()),
                Term::Cluster("east".into()),
                Term::Name("bogus:x".into()),
            ]
        );
        assert_eq!(Filter::parse("state:down").0, vec![Term::State(None)]);
        assert!(Filter::parse("  ").0.is_empty());
        assert!(job_id("east/4711", "47") && job_id("4711", "47") && !job_id("east/4711", "71"));
    }
}
