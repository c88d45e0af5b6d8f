//! The scheduler as the collector sees it (`/api/v1/scheduler`) and what it
//! finds wrong between the scheduler and the agents (`/api/v1/findings`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where allocations come from (`[scheduler] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// Only what the agents see.
    #[default]
    None,
    /// `squeue --json`.
    Slurm,
}

impl SchedulerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Slurm => "slurm",
        }
    }
}

/// GPUs a job holds on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGpus {
    pub node: String,
    pub count: u32,
    /// Indices in the node's gres.conf order; absent for `gpu(CNT:n)`.
    pub indices: Option<Vec<u32>>,
    pub gpu_type: Option<String>,
}

/// One job (one run of it, for a requeued job) as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedJob {
    /// The raw job id (`SLURM_JOB_ID`, what the agents see), or a SLUID.
    pub id: String,
    /// The id people use: `7060_1` for an array task, `21+0` for a het job component, else `id`.
    pub display_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_job: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_task: Option<u32>,
    /// Pending array tasks this entry stands for (`3-5`: 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_tasks: Option<u32>,
    pub user: Option<String>,
    /// The job's unix group (`group_name`).
    #[serde(default)]
    pub group: Option<String>,
    pub account: Option<String>,
    pub partition: Option<String>,
    /// RUNNING, PENDING, COMPLETED, …
    pub state: String,
    pub start_s: Option<i64>,
    /// When it ended (only for a job that ended).
    #[serde(default)]
    pub end_s: Option<i64>,
    pub time_limit_s: Option<i64>,
    pub nodes: Vec<String>,
    /// GPUs per node (indices while it runs; counts only for what `sacct` reports).
    pub gpus: Vec<NodeGpus>,
    /// GPUs allocated, all nodes together (`gres/gpu`, each GPU once).
    #[serde(default)]
    pub allocated_gpus: u32,
    /// GPUs asked for (pending jobs: what they wait for, all array tasks together).
    pub requested_gpus: u32,
}

/// Answer of `GET /api/v1/scheduler`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulerResponse {
    pub kind: SchedulerKind,
    /// When the last successful poll was (ms; 0: never).
    pub fetched_ms: i64,
    /// Why the last poll failed, if it did.
    pub error: Option<String>,
    pub jobs: Vec<SchedJob>,
    /// GPUs asked for by pending jobs, per institute.
    pub queued_gpus: BTreeMap<String, u32>,
    /// The last polls: how long they took, how much they read, how they ended.
    #[serde(default)]
    pub polls: PollStats,
}

/// Figures of the scheduler adapter's polls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollStats {
    /// Successful and failed polls since the collector started.
    pub polls: u64,
    pub errors: u64,
    /// The last poll: seconds it took, bytes it read, jobs it found.
    pub last_duration_s: f64,
    pub last_bytes: u64,
    pub last_jobs: u64,
    /// The last `sacct` query: jobs that ended, and its error if it failed.
    pub last_ended_jobs: u64,
    #[serde(default)]
    pub sacct_error: Option<String>,
    /// Reports waiting to be charged until the scheduler's view of their time is complete.
    #[serde(default)]
    pub pending_reports: u64,
}
