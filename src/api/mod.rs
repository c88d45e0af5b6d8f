//! The HTTP API's contract: every request and response type, shared by the
//! collector's handlers and by every client (`jazari top`, `quota`, `report`,
//! `sim`). `docs/api.md` documents the same types; a test parses its
//! examples into them.
//!
//! This module holds types only (serde and a few naming helpers); it imports
//! nothing from the rest of the crate but the wire format.

pub mod brief;
pub mod cluster;
pub mod findings;
mod gpu_view;
pub mod history;
pub mod quota;
pub mod report;
pub mod scheduler;
pub mod usage;

use serde::{Deserialize, Serialize};

/// Paths of the API.
pub mod paths {
    pub const REPORTS: &str = "/api/v1/reports";
    pub const CLUSTER: &str = "/api/v1/cluster";
    /// Followed by the node name.
    pub const NODES: &str = "/api/v1/nodes";
    pub const JOBS: &str = "/api/v1/jobs";
    pub const USAGE: &str = "/api/v1/usage";
    pub const HISTORY: &str = "/api/v1/history";
    pub const CLUSTER_HISTORY: &str = "/api/v1/history/cluster";
    pub const COVERAGE: &str = "/api/v1/coverage";
    pub const INSTITUTES: &str = "/api/v1/institutes";
    pub const QUOTAS: &str = "/api/v1/quotas";
    pub const REPORT: &str = "/api/v1/report";
    pub const FINDINGS: &str = "/api/v1/findings";
    pub const SCHEDULER: &str = "/api/v1/scheduler";
    pub const METRICS: &str = "/metrics";
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
}

/// This build's version and commit (`jazari --version`, the collector's start-up log).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("JAZARI_COMMIT"), ")");

/// The name of the utilisation signal every utilisation figure is based on.
pub const UTILISATION_SIGNAL: &str = "nvml_gpu_utilization";

/// Every error answer: `{"error": "..."}`, with an HTTP status that says what kind of error it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Answer of `POST /api/v1/reports`, sent after commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Reports taken in (their (node, instance, seq) was new).
    pub accepted: usize,
    /// Reports already delivered (same node, instance and seq): nothing changed.
    pub duplicates: usize,
    /// Accepted reports whose interval was partly or wholly charged already
    /// (another instance, a copied spool, a restart): only their new time was charged.
    #[serde(default)]
    pub overlapping: usize,
}

/// One institute as `/api/v1/institutes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstituteRef {
    pub id: String,
    pub name: String,
}

/// Answer of `GET /api/v1/institutes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstitutesResponse {
    pub institutes: Vec<InstituteRef>,
}
