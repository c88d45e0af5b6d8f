//! Live state in memory: the last report of each node, when it came, recent
//! events; the views the read API serves from it ([`views`]) and what is
//! wrong between the scheduler and the agents ([`findings`]).
//!
//! The collector keeps one [`Live`] fed from its ingest; nothing here does I/O.

pub mod findings;
pub mod views;

use jazari_wire::{Event, Report};
use std::collections::{BTreeMap, HashMap, VecDeque};

const EVENTS_KEPT: usize = 50;

#[derive(Debug, Clone)]
pub struct NodeLive {
    pub report: Report,
    /// When the collector received the newest report (ms).
    pub received_ms: i64,
    pub first_seen_ms: i64,
    pub events: VecDeque<Event>,
}

/// Nodes by name.
#[derive(Debug, Default)]
pub struct Live {
    pub nodes: BTreeMap<String, NodeLive>,
    /// When each job was first seen running (ms).
    pub job_first_seen: HashMap<String, i64>,
    /// Nodes that sent reports for time already charged.
    pub overlaps: BTreeMap<String, Overlap>,
}

/// Reports of a node that covered time already charged (not charged again).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlap {
    pub first_ms: i64,
    pub last_ms: i64,
    pub reports: u64,
    /// GPU-seconds and node-seconds not charged again.
    pub seconds: f64,
}

impl Live {
    /// Takes in an accepted report (older reports than the newest only add their events).
    pub fn update(&mut self, r: &Report, now_ms: i64) {
        for j in &r.jobs {
            self.job_first_seen.entry(j.id.clone()).or_insert(r.interval_start_ms);
        }
        match self.nodes.get_mut(&r.node) {
            Some(n) => {
                n.events.extend(r.events.iter().cloned());
                while n.events.len() > EVENTS_KEPT {
                    n.events.pop_front();
                }
                if r.interval_end_ms >= n.report.interval_end_ms {
                    n.report = r.clone();
                    n.received_ms = now_ms;
                }
            }
            None => {
                self.nodes.insert(
                    r.node.clone(),
                    NodeLive {
                        report: r.clone(),
                        received_ms: now_ms,
                        first_seen_ms: now_ms,
                        events: r.events.iter().cloned().collect(),
                    },
                );
            }
        }
    }

    /// Takes in a batch: events of all reports, the state of the newest per node.
    pub fn update_batch<'a>(&mut self, reports: impl Iterator<Item = &'a Report>, now_ms: i64) {
        let reports: Vec<&Report> = reports.collect();
        let mut events: HashMap<&str, Vec<&Event>> = HashMap::new();
        for r in reports.iter().filter(|r| !r.events.is_empty()) {
            events.entry(r.node.as_str()).or_default().extend(&r.events);
        }
        for (node, i) in jazari_wire::newest_per_node(reports.iter().copied()) {
            let r = reports[i];
            self.update(r, now_ms);
            let older: Vec<Event> = events
                .remove(node)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| !r.events.contains(e))
                .cloned()
                .collect();
            if let Some(n) = self.nodes.get_mut(node) {
                n.events.extend(older);
                while n.events.len() > EVENTS_KEPT {
                    n.events.pop_front();
                }
            }
        }
    }

    /// Notes a report of `node` that overlapped time already charged.
    pub fn note_overlap(&mut self, node: &str, seconds: f64, now_ms: i64) {
        let o = self.overlaps.entry(node.to_string()).or_insert(Overlap { first_ms: now_ms, ..Default::default() });
        o.last_ms = now_ms;
        o.reports += 1;
        o.seconds += seconds;
    }

    /// Forgets jobs not seen on any node.
    pub fn prune_jobs(&mut self) {
        let running: std::collections::HashSet<&str> =
            self.nodes.values().flat_map(|n| n.report.jobs.iter().map(|j| j.id.as_str())).collect();
        self.job_first_seen.retain(|id, _| running.contains(id.as_str()));
    }
}

/// What a reader may see.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    /// `Some(id)` for an institute token: other institutes' users and jobs are hidden.
    pub institute: Option<&'a str>,
}

/// Settings the views need.
#[derive(Debug, Clone, Copy)]
pub struct ViewPolicy {
    pub stale_after_ms: i64,
    pub idle_threshold_pct: f64,
}
