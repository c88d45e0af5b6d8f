//! What is wrong now (`GET /api/v1/findings`): rules the collector
//! evaluates over live state, the scheduler and the ledger, each finding with
//! its subject, the institute it concerns, when it was first and last seen,
//! and when it cleared.

use super::scheduler::SchedulerKind;
use serde::{Deserialize, Serialize};

/// How bad a finding is; receivers and views filter on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Kinds of [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A job holds a GPU at or under the idle threshold for longer than the rule allows.
    IdleAllocated,
    /// A GPU fell off the bus or stopped answering.
    GpuLost,
    /// An XID from the critical list.
    Xid,
    /// Uncorrectable ECC errors.
    EccUncorrectable,
    /// Corrected ECC errors rising faster than the rule allows.
    EccCorrectedRate,
    /// Sustained thermal or power throttling.
    Throttling,
    /// A node stopped reporting.
    NodeStale,
    /// An institute used its grant up to the warning level.
    QuotaWarning,
    /// An institute used more than its grant.
    QuotaExceeded,
    /// At the current burn rate an institute's grant runs out before its period ends.
    QuotaRunout,
    /// An institute holds more GPUs at once than its cap.
    CapExceeded,
    /// A process of one job runs on a GPU the scheduler gave to another.
    WrongGpu,
    /// A GPU is in use but the scheduler allocated it to no job.
    UnallocatedUse,
    /// A process carries a job id the scheduler does not run on its node.
    UnknownJob,
    /// A process outside any job runs on a GPU the scheduler gave to a job.
    ForeignProcess,
    /// Slurm's GPU numbering on a node disagrees with `[scheduler] gpu_index`, or with both numberings.
    GpuIndexMismatch,
    /// The scheduler runs a job on a node that is not reporting.
    NodeNotReporting,
    /// A node sent reports for time already charged (a second agent under its
    /// name, a copied spool, a clock jump): only new time was charged.
    OverlappingReports,
    /// A job's GPUs run kernels (not idle by NVML utilisation) with few SMs active
    /// (GPM, Hopper and later): held, "utilised", and mostly waiting.
    LowSmActive,
    /// A job on one of the "AI" partitions (`alerts.tensor_idle_partitions`) runs
    /// kernels with its tensor pipes idle (GPM): work that needs no tensor cores
    /// on GPUs bought for them.
    TensorIdle,
}

impl FindingKind {
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::IdleAllocated => "idle_allocated",
            FindingKind::GpuLost => "gpu_lost",
            FindingKind::Xid => "xid",
            FindingKind::EccUncorrectable => "ecc_uncorrectable",
            FindingKind::EccCorrectedRate => "ecc_corrected_rate",
            FindingKind::Throttling => "throttling",
            FindingKind::NodeStale => "node_stale",
            FindingKind::QuotaWarning => "quota_warning",
            FindingKind::QuotaExceeded => "quota_exceeded",
            FindingKind::QuotaRunout => "quota_runout",
            FindingKind::CapExceeded => "cap_exceeded",
            FindingKind::WrongGpu => "wrong_gpu",
            FindingKind::UnallocatedUse => "unallocated_use",
            FindingKind::UnknownJob => "unknown_job",
            FindingKind::ForeignProcess => "foreign_process",
            FindingKind::GpuIndexMismatch => "gpu_index_mismatch",
            FindingKind::NodeNotReporting => "node_not_reporting",
            FindingKind::OverlappingReports => "overlapping_reports",
            FindingKind::LowSmActive => "low_sm_active",
            FindingKind::TensorIdle => "tensor_idle",
        }
    }

    /// Whether the finding compares the scheduler with the agents (raised only
    /// while a configured scheduler answers).
    pub fn needs_scheduler(self) -> bool {
        matches!(
            self,
            FindingKind::WrongGpu
                | FindingKind::UnallocatedUse
                | FindingKind::UnknownJob
                | FindingKind::ForeignProcess
                | FindingKind::GpuIndexMismatch
                | FindingKind::NodeNotReporting
        )
    }
}

/// Something wrong: what, how bad, about what, since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable for one condition on one subject (`idle_allocated/gpu-a1/GPU-8c1f…/4711`).
    pub id: String,
    pub kind: FindingKind,
    pub severity: Severity,
    #[serde(default)]
    pub node: Option<String>,
    /// GPU UUID (or `index:N`).
    #[serde(default)]
    pub gpu: Option<String>,
    #[serde(default)]
    pub job: Option<String>,
    /// The institute it concerns (its job's, or the one whose quota it is); none for the cluster's own.
    #[serde(default)]
    pub institute: Option<String>,
    pub message: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// When the condition ended (for findings shown after they cleared).
    #[serde(default)]
    pub cleared_ms: Option<i64>,
}

/// `GET /api/v1/findings?cleared=true`: with `cleared`, also those cleared within the last day.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FindingsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared: Option<bool>,
}

/// Answer of `GET /api/v1/findings`: active findings, most severe first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingsResponse {
    pub generated_ms: i64,
    pub scheduler: SchedulerKind,
    pub scheduler_ok: bool,
    pub findings: Vec<Finding>,
}
