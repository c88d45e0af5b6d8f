//! Live views: the cluster, a node, running jobs (`/api/v1/cluster`,
//! `/api/v1/nodes/{node}`, `/api/v1/jobs`).

use jazari_wire::{Event, Gpu, Host};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterView {
    pub cluster: String,
    pub generated_ms: i64,
    pub summary: Summary,
    pub institutes: Vec<InstituteLive>,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub nodes: usize,
    pub nodes_reporting: usize,
    pub gpus: usize,
    pub gpus_allocated: usize,
    pub gpus_busy: usize,
    pub gpus_idle_allocated: usize,
    pub gpus_unscheduled: usize,
    pub gpus_unhealthy: usize,
    pub power_w: f64,
    /// Mean NVML GPU utilisation over reporting GPUs, percent.
    pub mean_util_pct: Option<f64>,
    pub utilisation_signal: String,
    pub jobs: usize,
}

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct InstituteLive {
    pub id: String,
    pub gpus_in_use: usize,
    pub jobs: usize,
    pub mean_util_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub stale: bool,
    pub last_seen_ms: i64,
    pub age_s: f64,
    pub host: Host,
    pub gpus: Vec<GpuView>,
    pub jobs: Vec<JobOnNode>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GpuView {
    #[serde(flatten)]
    pub gpu: Gpu,
    pub allocated_to: Option<Allocation>,
    pub idle_allocated: bool,
    pub unhealthy: bool,
}

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct Allocation {
    pub job: Option<String>,
    pub institute: String,
    pub account: Option<String>,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOnNode {
    pub id: String,
    pub institute: String,
    pub account: Option<String>,
    pub user: Option<String>,
    pub gpu_ids: Option<Vec<u32>>,
    pub processes: u32,
}

/// A running job across nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub scheduler: String,
    pub institute: String,
    pub account: Option<String>,
    pub user: Option<String>,
    pub nodes: Vec<String>,
    pub gpus: Vec<JobGpu>,
    pub gpu_count: usize,
    pub mean_util_pct: Option<f64>,
    pub idle_gpus: usize,
    pub mem_used_bytes: u64,
    pub started_ms: Option<i64>,
    pub run_time_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobGpu {
    pub node: String,
    pub uuid: String,
    pub index: u32,
    pub util_gpu_pct: Option<u32>,
    pub mem_used_bytes: Option<u64>,
    pub idle: bool,
}

/// `GET /api/v1/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobsResponse {
    pub jobs: Vec<JobView>,
}
