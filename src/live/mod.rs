//! Live state in memory: the last report of each node, when it came, recent
//! events; the views the read API serves from it ([`views`]), what is
//! wrong between the scheduler and the agents ([`findings`]), and counters
//! per GPU since the collector started ([`counters`]).
//!
//! The collector keeps one [`Live`] fed from its ingest; nothing here does I/O.

pub mod counters;
pub mod delta;
pub mod findings;
pub mod views;

use crate::accounting::Allocations;
use counters::NodeCounters;
use jazari_wire::{Event, Report};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

const EVENTS_KEPT: usize = 50;

#[derive(Debug, Clone)]
pub struct NodeLive {
    pub report: Report,
    /// When the collector received the newest report (ms).
    pub received_ms: i64,
    pub first_seen_ms: i64,
    pub events: VecDeque<Event>,
    /// Who holds each GPU of the report, and when.
    pub allocs: Allocations,
    /// With a scheduler that answers: the job ids it runs on the node (others are not jobs of it).
    pub scheduled: Option<BTreeSet<String>>,
    /// [`Live::seq`] when what the node's view shows last changed.
    pub changed_seq: u64,
}

/// A report taken into live state, with who holds its GPUs.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub report: &'a Report,
    pub allocs: &'a Allocations,
    pub scheduled: Option<&'a BTreeSet<String>>,
}

/// Nodes by name.
#[derive(Debug, Default)]
pub struct Live {
    pub nodes: BTreeMap<String, NodeLive>,
    /// When each job was first seen running (ms).
    pub job_first_seen: HashMap<String, i64>,
    /// Nodes that sent reports for time already charged.
    pub overlaps: BTreeMap<String, Overlap>,
    /// Energy and XID events per GPU, from the batches taken in since the start.
    pub counters: BTreeMap<String, NodeCounters>,
    /// Changes taken in so far: the version readers' `?since=` names ([`delta`]).
    pub seq: u64,
    /// This run of the collector: a version from another run asks for everything.
    pub epoch: String,
    /// [`Live::seq`] when each job's view may last have changed (ended
    /// jobs' too, until the prune after next).
    pub job_changed: HashMap<String, u64>,
    /// The newest stamp of an ended job forgotten: a version older cannot
    /// learn that job ended, and gets every job.
    pub jobs_forgotten_seq: u64,
    /// [`Live::seq`] at the last prune of jobs.
    pub jobs_pruned_seq: u64,
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
    pub fn update(&mut self, s: Seen, now_ms: i64) {
        let r = s.report;
        self.note_jobs(&s);
        self.seq += 1;
        let seq = self.seq;
        // The jobs the node had and has: each may look different now (or be gone from it).
        let before = self.nodes.get(&r.node).map(|n| delta::job_ids(&n.report, &n.allocs)).unwrap_or_default();
        for id in before.into_iter().chain(delta::job_ids(r, s.allocs)) {
            self.job_changed.insert(id, seq);
        }
        match self.nodes.get_mut(&r.node) {
            Some(n) => {
                n.changed_seq = seq;
                n.events.extend(r.events.iter().cloned());
                while n.events.len() > EVENTS_KEPT {
                    n.events.pop_front();
                }
                if r.interval_end_ms >= n.report.interval_end_ms {
                    n.report = r.clone();
                    n.received_ms = now_ms;
                    n.allocs = s.allocs.clone();
                    n.scheduled = s.scheduled.cloned();
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
                        allocs: s.allocs.clone(),
                        scheduled: s.scheduled.cloned(),
                        changed_seq: seq,
                    },
                );
            }
        }
    }

    /// Takes in a report whose jobs are as the agent says (no scheduler).
    pub fn update_from_agent(&mut self, r: &Report, now_ms: i64) {
        let allocs = Allocations::from_agent(r, crate::accounting::same_index);
        self.update(Seen { report: r, allocs: &allocs, scheduled: None }, now_ms);
    }

    /// Takes in a node's last report as another collector stored it (a
    /// shared store): only when it is newer than what this collector has.
    /// Returns whether it was.
    pub fn update_from_peer(&mut self, r: &Report, first_seen_ms: i64, now_ms: i64) -> bool {
        if self.nodes.get(&r.node).is_some_and(|n| n.report.interval_end_ms >= r.interval_end_ms) {
            return false;
        }
        let known = self.nodes.contains_key(&r.node);
        self.update_from_agent(r, now_ms);
        if !known && let Some(n) = self.nodes.get_mut(&r.node) {
            n.first_seen_ms = first_seen_ms;
        }
        true
    }

    /// Takes in a batch: events of all reports, the state of the newest per node.
    pub fn update_batch(&mut self, reports: &[Seen], now_ms: i64) {
        // Every report of the batch says since when its jobs run (a replayed spool or a
        // backfill reaches back), not only the newest of each node.
        for s in reports {
            self.note_jobs(s);
        }
        let mut events: HashMap<&str, Vec<&Event>> = HashMap::new();
        for s in reports.iter().filter(|s| !s.report.events.is_empty()) {
            events.entry(s.report.node.as_str()).or_default().extend(&s.report.events);
        }
        self.count(reports);
        for (node, i) in jazari_wire::newest_per_node(reports.iter().map(|s| s.report)) {
            let r = reports[i].report;
            self.update(reports[i], now_ms);
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

    /// Counts a batch's energy (reports in time order) and XID events (each distinct event once).
    fn count(&mut self, reports: &[Seen]) {
        let mut order: Vec<&Report> = reports.iter().map(|s| s.report).collect();
        order.sort_by_key(|r| r.interval_end_ms);
        for r in order {
            let c = self.counters.entry(r.node.clone()).or_default();
            c.note_report(r);
            let mut new: Vec<&Event> = vec![];
            for e in &r.events {
                if !new.contains(&e) {
                    new.push(e);
                }
            }
            c.note_events(new);
        }
    }

    /// Notes a report of `node` that overlapped time already charged.
    pub fn note_overlap(&mut self, node: &str, seconds: f64, now_ms: i64) {
        let o = self.overlaps.entry(node.to_string()).or_insert(Overlap { first_ms: now_ms, ..Default::default() });
        o.last_ms = now_ms;
        o.reports += 1;
        o.seconds += seconds;
    }

    /// Notes the jobs of a report as running since its start at the latest.
    fn note_jobs(&mut self, s: &Seen) {
        let r = s.report;
        let ids = r.jobs.iter().map(|j| (j.array.clone().unwrap_or_else(|| j.id.clone()), r.interval_start_ms));
        let held = s.allocs.all().map(|h| (h.job.clone(), h.from_ms));
        for (id, since) in ids.chain(held) {
            let first = self.job_first_seen.entry(id.clone()).or_insert(since);
            if since < *first {
                *first = since;
                // Its start moved back: its view changed.
                self.seq += 1;
                self.job_changed.insert(id, self.seq);
            }
        }
    }

    /// Forgets jobs not seen on any node.
    pub fn prune_jobs(&mut self) {
        let running: std::collections::HashSet<String> = self
            .nodes
            .values()
            .flat_map(|n| {
                n.report
                    .jobs
                    .iter()
                    .map(|j| j.array.clone().unwrap_or_else(|| j.id.clone()))
                    .chain(n.allocs.all().map(|h| h.job.clone()))
            })
            .collect();
        self.job_first_seen.retain(|id, _| running.contains(id));
        // An ended job's stamp stays one prune period, so readers learn it ended.
        let (last, mut forgotten) = (self.jobs_pruned_seq, self.jobs_forgotten_seq);
        self.job_changed.retain(|id, seq| {
            let keep = running.contains(id) || *seq > last;
            if !keep {
                forgotten = forgotten.max(*seq);
            }
            keep
        });
        (self.jobs_forgotten_seq, self.jobs_pruned_seq) = (forgotten, self.seq);
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

#[cfg(test)]
mod tests {
    use super::*;
    use jazari_wire::{Host, Job, WIRE_VERSION};

    fn report(seq: u64, start_ms: i64) -> Report {
        Report {
            version: WIRE_VERSION,
            node: "n1".into(),
            instance: "i".into(),
            seq,
            interval_start_ms: start_ms,
            interval_end_ms: start_ms + 300_000,
            host: Host::default(),
            gpus: vec![],
            jobs: vec![Job { scheduler: "slurm".into(), id: "7".into(), ..Default::default() }],
            events: vec![],
        }
    }

    #[test]
    fn a_job_runs_since_the_oldest_report_that_carries_it() {
        let allocs = Allocations::default();
        let seen = |r| Seen { report: r, allocs: &allocs, scheduled: None };
        let (a, b) = (report(1, 1_000_000), report(2, 1_300_000));
        let mut live = Live::default();
        // A backfill batch: only its newest report becomes the node's, but the job began with the oldest.
        live.update_batch(&[seen(&a), seen(&b)], 2_000_000);
        assert_eq!(live.job_first_seen["7"], 1_000_000);
        // A replayed report from before reaches back further.
        let older = report(0, 700_000);
        live.update_batch(&[seen(&older)], 2_100_000);
        assert_eq!(live.job_first_seen["7"], 700_000);
    }

    #[test]
    fn other_institutes_slices_show_neither_their_processes_nor_their_jobs() {
        use jazari_wire::{Gpu, MigDevice, Process};
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let mut map = crate::accounting::InstituteMap::default();
        map.add("a", &s(&["acct-a"]), &s(&[]), &s(&[]));
        map.add("b", &s(&["acct-b"]), &s(&[]), &s(&[]));
        let p = Process { pid: 42, user: Some("alice".into()), job: Some("7".into()), ..Default::default() };
        let slice = MigDevice {
            uuid: "MIG-1".into(),
            slices_compute: Some(3),
            processes: vec![p.clone()],
            ..Default::default()
        };
        let mut r = report(1, 0);
        r.jobs[0].account = Some("acct-a".into());
        r.gpus = vec![Gpu { index: 0, mig_devices: vec![slice], processes: vec![p], ..Default::default() }];
        let mut live = Live::default();
        live.update_from_agent(&r, 1000);
        let policy = ViewPolicy { stale_after_ms: 600_000, idle_threshold_pct: 5.0 };
        let view = |institute| live.node_view(&live.nodes["n1"], &map, policy, Viewer { institute }, 2000);
        let mine = view(Some("a"));
        assert_eq!(mine.gpus[0].mig_allocated[0].allocated_to.job.as_deref(), Some("7"));
        assert!(mine.gpus[0].allocated_to.is_none(), "held through its slices only");
        let theirs = view(Some("b"));
        let g = &theirs.gpus[0];
        assert_eq!(
            (g.mig_allocated[0].allocated_to.institute.as_str(), g.mig_allocated[0].allocated_to.job.as_deref()),
            ("other", None)
        );
        let hidden = &g.gpu.mig_devices[0].processes[0];
        assert_eq!((hidden.pid, hidden.user.as_deref(), hidden.job.as_deref()), (0, None, None));
        assert_eq!(g.gpu.processes[0].pid, 0);
    }
}
