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

/// One job as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedJob {
    pub id: String,
    pub user: Option<String>,
    pub account: Option<String>,
    pub partition: Option<String>,
    /// RUNNING, PENDING, …
    pub state: String,
    pub start_s: Option<i64>,
    pub time_limit_s: Option<i64>,
    pub nodes: Vec<String>,
    pub gpus: Vec<NodeGpus>,
    /// GPUs asked for (pending jobs: what they wait for).
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
}

/// Kinds of [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A process of one job runs on a GPU the scheduler gave to another.
    WrongGpu,
    /// A GPU is in use but the scheduler allocated it to no job.
    UnallocatedUse,
    /// The scheduler runs a job on a node that is not reporting.
    NodeNotReporting,
    /// A node sent reports for time already charged (a second agent under its
    /// name, a copied spool, a clock jump): only new time was charged.
    OverlappingReports,
}

/// A disagreement between the scheduler and the agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub node: String,
    pub gpu: Option<String>,
    pub job: Option<String>,
    pub message: String,
}

/// Answer of `GET /api/v1/findings`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingsResponse {
    pub scheduler: SchedulerKind,
    pub scheduler_ok: bool,
    pub findings: Vec<Finding>,
}
