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
    /// The state this view shows, for `?since=` next time (opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// An answer to `?since=`: `nodes` lists only the nodes whose view
    /// changed; every other node is as the reader holds it, its `age_s` now
    /// `generated_ms − last_seen_ms`. Summary and institutes are always whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delta: bool,
    /// An answer to `?brief=true`: nodes and GPUs as a list shows them
    /// (`api::brief`); a drill-down asks for the node whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub brief: bool,
}

/// `?since=`: the `version` of a view the reader holds, to be sent only what
/// changed since (`delta`). A version from another run of the collector, one
/// older than what the collector still remembers, or none, gets everything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SinceQuery {
    pub since: Option<String>,
    /// Nodes and GPUs (jobs) as a list shows them (`api::brief`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub brief: bool,
}

/// `GET /api/v1/jobs`: [`SinceQuery`], or only the jobs of one id (`id`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobsQuery {
    pub since: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub brief: bool,
    /// Only the jobs of this id, whole (`since` is then not read).
    pub id: Option<String>,
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
    /// Mean SM active (GPM) over reporting GPUs that measure it, percent; a MIG
    /// slice weighs its compute slices / 7. Absent where no GPU measures GPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_sm_active_pct: Option<f64>,
    pub utilisation_signal: String,
    pub jobs: usize,
}

#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct InstituteLive {
    pub id: String,
    /// GPUs it holds, a GPU in MIG mode counted once where it holds any of its slices.
    pub gpus_in_use: usize,
    pub jobs: usize,
    pub mean_util_pct: Option<f64>,
    /// Mean SM active (GPM) of what it holds, as [`Summary::mean_sm_active_pct`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_sm_active_pct: Option<f64>,
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

/// Deserialized by hand, in the `gpu_view` module (serde's `flatten` buffered every
/// field of every GPU first: a quarter of the dashboard's CPU).
#[derive(Debug, Clone, Serialize)]
pub struct GpuView {
    #[serde(flatten)]
    pub gpu: Gpu,
    pub allocated_to: Option<Allocation>,
    pub idle_allocated: bool,
    pub unhealthy: bool,
    /// A GPU in MIG mode is held through its slices only: who holds each held slice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mig_allocated: Vec<SliceAllocation>,
}

/// A held MIG slice of a GPU (by its MIG UUID, as in `mig_devices`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SliceAllocation {
    pub uuid: String,
    pub allocated_to: Allocation,
    /// Held with SM active (GPM) at or under the idle threshold.
    pub idle_allocated: bool,
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
    /// The MIG slices it holds on the node (MIG UUIDs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mig_slices: Vec<String>,
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
    /// GPUs and MIG slices it holds (a slice is one here; the ledger charges its fraction).
    pub gpu_count: usize,
    pub mean_util_pct: Option<f64>,
    /// Mean SM active (GPM) of what it holds, a slice weighing its compute slices / 7;
    /// absent where nothing it holds measures GPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_sm_active_pct: Option<f64>,
    pub idle_gpus: usize,
    pub mem_used_bytes: u64,
    pub started_ms: Option<i64>,
    pub run_time_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobGpu {
    pub node: String,
    /// The GPU's UUID, or the MIG slice's.
    pub uuid: String,
    /// The GPU's NVML index (a slice's: its GPU's).
    pub index: u32,
    pub util_gpu_pct: Option<u32>,
    pub mem_used_bytes: Option<u64>,
    /// Idle by NVML utilisation (a slice: by SM active) at or under the threshold.
    pub idle: bool,
    /// SM active and tensor pipes active (GPM), where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_active_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_active_pct: Option<f64>,
    /// For a MIG slice: its GPU and its size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<JobSlice>,
}

/// A MIG slice a job holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSlice {
    pub gpu_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices_compute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices_memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
}

/// `GET /api/v1/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobsResponse {
    pub jobs: Vec<JobView>,
    /// As [`ClusterView::version`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub generated_ms: i64,
    /// An answer to `?since=`: the job ids whose jobs changed, started or
    /// ended since; `jobs` holds only the jobs of these ids (none for an id
    /// whose jobs all ended). Every other job is as the reader holds it, its
    /// `run_time_s` now `generated_ms − started_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<String>>,
    /// An answer to `?brief=true`: every job without its `gpus`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub brief: bool,
}
