//! What the scheduler has said over time: every run of every job, with its
//! start, its end once known, and its GPUs per node. Reports are charged
//! from it for the time they cover, whenever they arrive (a report replayed
//! after an outage meets the jobs of its own time, not those of now).
//!
//! `squeue` tells what runs now (with each GPU's index) and what ended within
//! `MinJobAge`; `sacct` tells what ended, also jobs no `squeue` poll saw run.
//! A run `squeue` saw running and no longer lists, and that `sacct` does not
//! (yet) report, ended after it was last seen: it counts until then.

use super::slurm::ended;
use crate::api::scheduler::{NodeGpus, SchedJob};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One run of a job (a requeued job has several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub job: SchedJob,
    pub start_ms: i64,
    /// When it ended, once Slurm says.
    pub end_ms: Option<i64>,
    /// When a poll last saw it running.
    pub seen_ms: i64,
    /// When a poll first no longer listed it as running (its end is before).
    pub gone_ms: Option<i64>,
}

impl Run {
    /// The end to charge until: Slurm's, else the last time it was seen running once it is gone.
    pub fn end_for_charging(&self) -> Option<i64> {
        self.end_ms.or(self.gone_ms.map(|_| self.seen_ms))
    }

    /// Its GPUs on a node: count, and indices when a poll saw them.
    pub fn gpus_on(&self, node: &str) -> Option<&NodeGpus> {
        self.job.gpus.iter().find(|g| g.node == node)
    }
}

/// Every run the scheduler has told of, by (job id, start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    runs: BTreeMap<(String, i64), Run>,
}

fn is_running(state: &str) -> bool {
    matches!(state, "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "CONFIGURING")
}

impl History {
    pub fn from_runs(runs: impl IntoIterator<Item = Run>) -> Self {
        History { runs: runs.into_iter().map(|r| ((r.job.id.clone(), r.start_ms), r)).collect() }
    }

    pub fn runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.values()
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Takes in one `squeue` poll made at `now_ms`; returns the runs that changed.
    pub fn take_squeue(&mut self, jobs: &[SchedJob], now_ms: i64) -> Vec<Run> {
        let mut changed = vec![];
        let mut listed_running: std::collections::HashSet<(String, i64)> = Default::default();
        for j in jobs {
            let Some(start_s) = j.start_s else { continue };
            let key = (j.id.clone(), start_s * 1000);
            if is_running(&j.state) {
                listed_running.insert(key.clone());
                let run = self.runs.entry(key).or_insert_with(|| Run {
                    job: j.clone(),
                    start_ms: start_s * 1000,
                    end_ms: None,
                    seen_ms: now_ms,
                    gone_ms: None,
                });
                // Keep GPU indices a poll saw; refresh the rest.
                let gpus =
                    if j.gpus.iter().any(|g| g.indices.is_some()) { j.gpus.clone() } else { run.job.gpus.clone() };
                run.job = SchedJob { gpus, ..j.clone() };
                run.seen_ms = now_ms;
                run.gone_ms = None;
                changed.push(run.clone());
            } else if ended(&j.state) {
                changed.extend(self.ended(j, start_s * 1000));
            }
        }
        // Runs no longer listed as running: gone (sacct or a later squeue will tell the end).
        for (key, run) in self.runs.iter_mut() {
            if run.end_ms.is_none() && run.gone_ms.is_none() && !listed_running.contains(key) {
                run.gone_ms = Some(now_ms);
                changed.push(run.clone());
            }
        }
        changed
    }

    /// Takes in what `sacct` says ended; returns the runs that changed.
    pub fn take_sacct(&mut self, jobs: &[SchedJob]) -> Vec<Run> {
        jobs.iter().filter_map(|j| self.ended(j, j.start_s? * 1000)).collect()
    }

    /// A run that ended: its end, state and accounting fields; GPU indices kept from earlier polls.
    fn ended(&mut self, j: &SchedJob, start_ms: i64) -> Option<Run> {
        let end_ms = j.end_s? * 1000;
        let run = self.runs.entry((j.id.clone(), start_ms)).or_insert_with(|| Run {
            job: j.clone(),
            start_ms,
            end_ms: None,
            seen_ms: start_ms,
            gone_ms: None,
        });
        if run.end_ms == Some(end_ms) && run.job.state == j.state {
            return None;
        }
        let gpus = if run.job.gpus.iter().any(|g| g.indices.is_some()) { run.job.gpus.clone() } else { j.gpus.clone() };
        run.job = SchedJob { gpus, ..j.clone() };
        run.end_ms = Some(end_ms);
        Some(run.clone())
    }

    /// Runs on `node` that overlap [from_ms, to_ms), with their part of it.
    pub fn on_node<'a>(
        &'a self,
        node: &'a str,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Iterator<Item = (&'a Run, i64, i64)> + 'a {
        self.runs.values().filter_map(move |r| {
            r.gpus_on(node).filter(|g| g.count > 0)?;
            let a = r.start_ms.max(from_ms);
            let b = r.end_for_charging().unwrap_or(i64::MAX).min(to_ms);
            (a < b).then_some((r, a, b))
        })
    }

    /// Forgets runs that ended before `t` (older than any report still charged).
    pub fn forget_before(&mut self, t: i64) {
        self.runs.retain(|_, r| r.end_for_charging().is_none_or(|e| e >= t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::slurm::{parse_sacct, parse_squeue};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm").join(name)).unwrap()
    }

    #[test]
    fn runs_from_squeue_then_sacct_keep_their_gpu_indices_and_get_their_ends() {
        let mut h = History::default();
        let t = 1_795_960_060_000;
        h.take_squeue(&parse_squeue(&fixture("squeue-ends-running.json")).unwrap(), t);
        // 24 runs on IDX 1; 23 already ended (6 s job).
        let r24 = h.runs().find(|r| r.job.id == "24").unwrap();
        assert_eq!((r24.end_ms, r24.gpus_on("vm").unwrap().indices.clone()), (None, Some(vec![1])));
        let r23 = h.runs().find(|r| r.job.id == "23").unwrap();
        assert_eq!((r23.start_ms, r23.end_ms), (1_795_960_050_000, Some(1_795_960_056_000)));
        // After the cancel: 24 ended, requeued 26 no longer runs.
        h.take_squeue(&parse_squeue(&fixture("squeue-ends-after-cancel.json")).unwrap(), t + 10_000);
        let r24 = h.runs().find(|r| r.job.id == "24").unwrap();
        assert_eq!(r24.end_ms, Some(1_795_960_057_000));
        assert_eq!(r24.gpus_on("vm").unwrap().indices, Some(vec![1]), "indices kept from the running poll");
        let r26 = h.runs().find(|r| r.job.id == "26").unwrap();
        assert_eq!((r26.end_ms, r26.gone_ms), (None, Some(t + 10_000)));
        assert_eq!(r26.end_for_charging(), Some(t), "until last seen, until sacct tells");
        // sacct: 26's first run REQUEUED at 057, its second run, and the rest.
        h.take_sacct(&parse_sacct(&fixture("sacct-ends.json")).unwrap());
        let runs26: Vec<(i64, Option<i64>)> =
            h.runs().filter(|r| r.job.id == "26").map(|r| (r.start_ms, r.end_ms)).collect();
        assert_eq!(
            runs26,
            [(1_795_960_050_000, Some(1_795_960_057_000)), (1_795_960_191_000, Some(1_795_960_236_000))]
        );
        // What ran on vm between 050 and 060: 23, 24, 25, 26 (first run); 27 had no GPU.
        let mut on: Vec<&str> =
            h.on_node("vm", 1_795_960_050_000, 1_795_960_060_000).map(|(r, _, _)| r.job.id.as_str()).collect();
        on.sort();
        on.dedup();
        assert_eq!(on, ["23", "24", "25", "26"]);
    }
}
