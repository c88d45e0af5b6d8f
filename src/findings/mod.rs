//! Findings over time: the conditions the rules see at each evaluation
//! ([`rules`]) become findings that are raised once a condition has held
//! long enough (for idle-allocated GPUs and throttling), kept while it holds,
//! and cleared only once it has been absent for `clear_after` (a condition
//! at its threshold does not flap). Each raise and clear is a [`Change`] for
//! the store and the notifiers; repeats come from [`Tracker::due_repeats`].

pub mod rules;

use crate::api::findings::{Finding, FindingKind, Severity};
use std::collections::{BTreeMap, VecDeque};

/// A condition seen at one evaluation: what a finding will say.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub id: String,
    pub kind: FindingKind,
    pub severity: Severity,
    pub node: Option<String>,
    pub gpu: Option<String>,
    pub job: Option<String>,
    pub institute: Option<String>,
    pub message: String,
}

impl Condition {
    /// A condition with its id made of its kind and subject.
    pub fn new(kind: FindingKind, severity: Severity, subject: [Option<&str>; 3], message: String) -> Self {
        let [node, gpu, job] = subject;
        let id =
            std::iter::once(kind.name()).chain([node, gpu, job].into_iter().flatten()).collect::<Vec<_>>().join("/");
        Condition {
            id,
            kind,
            severity,
            node: node.map(str::to_string),
            gpu: gpu.map(str::to_string),
            job: job.map(str::to_string),
            institute: None,
            message,
        }
    }

    pub fn institute(mut self, i: Option<String>) -> Self {
        self.institute = i;
        self
    }

    fn finding(&self, first: i64, last: i64, cleared: Option<i64>) -> Finding {
        Finding {
            id: self.id.clone(),
            kind: self.kind,
            severity: self.severity,
            node: self.node.clone(),
            gpu: self.gpu.clone(),
            job: self.job.clone(),
            institute: self.institute.clone(),
            message: self.message.clone(),
            first_seen_ms: first,
            last_seen_ms: last,
            cleared_ms: cleared,
        }
    }

    fn from_finding(f: &Finding) -> Self {
        Condition {
            id: f.id.clone(),
            kind: f.kind,
            severity: f.severity,
            node: f.node.clone(),
            gpu: f.gpu.clone(),
            job: f.job.clone(),
            institute: f.institute.clone(),
            message: f.message.clone(),
        }
    }
}

/// Where conditions come from: each source is evaluated at its own pace and
/// clears only its own findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// Live state: nodes, GPUs, jobs, the scheduler.
    Live,
    /// Quotas, from the ledger.
    Quota,
}

impl Source {
    pub fn of(kind: FindingKind) -> Source {
        match kind {
            FindingKind::QuotaWarning
            | FindingKind::QuotaExceeded
            | FindingKind::QuotaRunout
            | FindingKind::CapExceeded => Source::Quota,
            _ => Source::Live,
        }
    }
}

/// How long conditions must hold before they are raised, and be absent before they clear (ms).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub clear_after_ms: i64,
    pub idle_allocated_after_ms: i64,
    pub throttle_after_ms: i64,
    pub low_sm_active_after_ms: i64,
    pub tensor_idle_after_ms: i64,
}

impl Timing {
    fn raise_after(&self, kind: FindingKind) -> i64 {
        match kind {
            FindingKind::IdleAllocated => self.idle_allocated_after_ms,
            FindingKind::Throttling => self.throttle_after_ms,
            FindingKind::LowSmActive => self.low_sm_active_after_ms,
            FindingKind::TensorIdle => self.tensor_idle_after_ms,
            _ => 0,
        }
    }
}

/// A raise or a clear, for the store and the notifiers.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Raised(Finding),
    Cleared(Finding),
}

#[derive(Debug, Clone)]
struct Entry {
    cond: Condition,
    /// When the condition was first seen (in this run of it).
    since_ms: i64,
    last_ms: i64,
    /// When it was last seen absent, while it was active or pending.
    absent_since: Option<i64>,
    active: bool,
    notified_ms: Option<i64>,
}

/// How long cleared findings are kept for `?cleared=true`, and how many.
const CLEARED_KEPT_MS: i64 = 86_400_000;
const CLEARED_KEPT: usize = 2000;

/// Active and pending findings, and those cleared within a day.
#[derive(Debug, Default)]
pub struct Tracker {
    entries: BTreeMap<String, Entry>,
    cleared: VecDeque<Finding>,
}

impl Tracker {
    /// Takes back findings kept in the store (active ones stay active; they
    /// clear as usual if their condition is gone), with when each was last notified.
    pub fn restore(findings: impl IntoIterator<Item = (Finding, Option<i64>)>) -> Self {
        let mut t = Tracker::default();
        for (f, notified_ms) in findings {
            match f.cleared_ms {
                Some(_) => t.cleared.push_back(f),
                None => {
                    t.entries.insert(
                        f.id.clone(),
                        Entry {
                            cond: Condition::from_finding(&f),
                            since_ms: f.first_seen_ms,
                            last_ms: f.last_seen_ms,
                            absent_since: None,
                            active: true,
                            notified_ms,
                        },
                    );
                }
            }
        }
        t
    }

    /// Takes in what `source` sees now; returns the findings raised and cleared.
    pub fn update(&mut self, source: Source, seen: Vec<Condition>, now_ms: i64, timing: Timing) -> Vec<Change> {
        let mut changes = vec![];
        let mut present = std::collections::HashSet::new();
        for c in seen {
            debug_assert_eq!(Source::of(c.kind), source);
            present.insert(c.id.clone());
            let e = self.entries.entry(c.id.clone()).or_insert_with(|| Entry {
                cond: c.clone(),
                since_ms: now_ms,
                last_ms: now_ms,
                absent_since: None,
                active: false,
                notified_ms: None,
            });
            e.cond = c;
            e.last_ms = now_ms;
            e.absent_since = None;
            if !e.active && now_ms - e.since_ms >= timing.raise_after(e.cond.kind) {
                e.active = true;
                changes.push(Change::Raised(e.cond.finding(e.since_ms, now_ms, None)));
            }
        }
        let mut gone = vec![];
        for (id, e) in
            self.entries.iter_mut().filter(|(id, e)| Source::of(e.cond.kind) == source && !present.contains(*id))
        {
            let since = *e.absent_since.get_or_insert(now_ms);
            if now_ms - since >= timing.clear_after_ms {
                gone.push(id.clone());
            }
        }
        for id in gone {
            let e = self.entries.remove(&id).expect("listed");
            if e.active {
                let f = e.cond.finding(e.since_ms, e.last_ms, e.absent_since);
                changes.push(Change::Cleared(f.clone()));
                self.cleared.push_back(f);
            }
        }
        while self.cleared.len() > CLEARED_KEPT
            || self.cleared.front().is_some_and(|f| now_ms - f.cleared_ms.unwrap_or(now_ms) > CLEARED_KEPT_MS)
        {
            self.cleared.pop_front();
        }
        changes
    }

    /// Active findings, most severe first, then oldest first.
    pub fn active(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> =
            self.entries.values().filter(|e| e.active).map(|e| e.cond.finding(e.since_ms, e.last_ms, None)).collect();
        out.sort_by(|a, b| {
            b.severity.cmp(&a.severity).then(a.first_seen_ms.cmp(&b.first_seen_ms)).then(a.id.cmp(&b.id))
        });
        out
    }

    /// Findings cleared within the last day, newest first.
    pub fn cleared(&self) -> Vec<Finding> {
        self.cleared.iter().rev().cloned().collect()
    }

    /// Active findings last notified `repeat_ms` ago or more (marked notified now).
    pub fn due_repeats(&mut self, now_ms: i64, repeat_ms: i64) -> Vec<Finding> {
        let mut out = vec![];
        for e in self.entries.values_mut().filter(|e| e.active) {
            match e.notified_ms {
                Some(t) if now_ms - t < repeat_ms => {}
                Some(_) => {
                    e.notified_ms = Some(now_ms);
                    out.push(e.cond.finding(e.since_ms, e.last_ms, None));
                }
                None => {}
            }
        }
        out
    }

    /// Notes that a finding was notified now (its repeat counts from here).
    pub fn notified(&mut self, id: &str, now_ms: i64) {
        if let Some(e) = self.entries.get_mut(id) {
            e.notified_ms = Some(now_ms);
        }
    }

    /// When a finding was last notified.
    pub fn notified_ms(&self, id: &str) -> Option<i64> {
        self.entries.get(id).and_then(|e| e.notified_ms)
    }
}

/// The rules' state in a collector: the tracker, what the rules remember,
/// when they last ran; and how notifications went.
#[derive(Debug, Default)]
pub struct Rules {
    pub tracker: Tracker,
    pub memory: rules::Memory,
    pub last_live_ms: i64,
    pub last_quota_ms: i64,
}

impl Rules {
    pub fn restore(findings: Vec<(Finding, Option<i64>)>) -> Self {
        Rules { tracker: Tracker::restore(findings), ..Default::default() }
    }
}

/// Notifications sent, failed, dropped (for `/metrics`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Delivery {
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
}

#[cfg(test)]
mod tests;
