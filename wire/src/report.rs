//! The report: one [`Report`] covers one interval of one node.
//!
//! Rules:
//! - every GPU is keyed by its UUID; indices are attributes;
//! - a value the GPU or host does not offer is *absent* (`None`), never zero;
//! - the format carries a [`WIRE_VERSION`]; a reader refuses a major version it
//!   does not know and ignores fields it does not know (newer agents may add
//!   optional fields without a version bump).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Version of the report format written by this build.
pub const WIRE_VERSION: u32 = 1;

/// One report: what one agent saw on one node during one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Format version ([`WIRE_VERSION`] when written by this build).
    pub version: u32,
    /// Node name (host name unless overridden).
    pub node: String,
    /// Random id chosen at each agent start: (node, instance, seq) is unique.
    pub instance: String,
    /// Sequence number within this agent instance, from 0, without gaps.
    pub seq: u64,
    /// Start of the interval this report covers, UTC milliseconds since the epoch.
    pub interval_start_ms: i64,
    /// End of the interval (the sampling time), UTC milliseconds since the epoch.
    pub interval_end_ms: i64,
    /// The host.
    pub host: Host,
    /// GPUs in NVML index order; empty when the node has no GPU or no NVML.
    #[serde(default, deserialize_with = "crate::bounded::gpus")]
    pub gpus: Vec<Gpu>,
    /// Jobs with at least one process on the node, whether or not they use a GPU.
    #[serde(default, deserialize_with = "crate::bounded::jobs")]
    pub jobs: Vec<Job>,
    /// Events since the previous report.
    #[serde(default, deserialize_with = "crate::bounded::events")]
    pub events: Vec<Event>,
}

impl Report {
    /// Interval length in seconds (never negative).
    pub fn interval_s(&self) -> f64 {
        self.interval_end_ms.saturating_sub(self.interval_start_ms).max(0) as f64 / 1000.0
    }
}

/// Host facts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Host {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<u32>,
    /// 1, 5 and 15 minute load averages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<[f64; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// CUDA driver version as "major.minor".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    /// Whether GPUs could be read, and if not why.
    pub gpu_source: GpuSourceState,
    /// Version of the agent that wrote the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
}

/// Whether the agent could read GPUs on this node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum GpuSourceState {
    /// NVML answered.
    #[default]
    Ok,
    /// NVML answered but reported no GPU.
    NoGpus,
    /// NVML could not be loaded or initialised; the detail says why.
    Unavailable(String),
}

/// Health of one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    #[default]
    Ok,
    /// NVML reports the GPU fell off the bus (GPU_IS_LOST).
    Lost,
    /// The GPU answered with an unexpected error this interval.
    Error,
}

/// One GPU. Every measurement is optional: absent when not supported.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Gpu {
    /// NVML index (PCI bus order).
    pub index: u32,
    /// Stable identity. Absent only for a GPU lost before its UUID was ever read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// Kernel minor number (`/dev/nvidiaN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub health: Health,
    /// NVML "GPU utilisation": share of time a kernel was running, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_gpu_pct: Option<u32>,
    /// NVML memory utilisation: share of time memory was read or written, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_mem_pct: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mw: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_mw: Option<u32>,
    /// Energy counter since the driver was loaded, millijoules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_mj: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_mhz: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_clock_mhz: Option<u32>,
    /// Fan speed of each fan, percent of maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_pct: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc: Option<EccCounts>,
    /// Active clock throttle reasons, by name (see [`THROTTLE_REASONS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_reasons: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_enabled: Option<bool>,
    /// Compute processes on this GPU. In MIG mode, what NVML answers for the
    /// whole GPU: every slice's processes when the agent may see them (root);
    /// each slice in [`Gpu::mig_devices`] lists its own.
    #[serde(default, deserialize_with = "crate::bounded::processes")]
    pub processes: Vec<Process>,
    /// Activity counters (NVML GPM, Hopper and later), means over the report
    /// interval. Absent when the GPU has no GPM (pre-Hopper) or no value yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpm: Option<Gpm>,
    /// The GPU's MIG devices (slices) when it is in MIG mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mig_devices: Vec<MigDevice>,
}

/// GPU activity from NVML GPM (GPU Performance Monitoring, Hopper and later):
/// each value is the mean over the report interval, percent (0..100), absent
/// when NVML did not give it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Gpm {
    /// Share of time the SMs had at least one warp assigned, averaged over
    /// SMs (NVML_GPM_METRIC_SM_UTIL; DCGM's SM_ACTIVE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_active_pct: Option<f64>,
    /// Resident warps as a share of the SMs' maximum (NVML_GPM_METRIC_SM_OCCUPANCY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_occupancy_pct: Option<f64>,
    /// Share of time any tensor pipe was active (NVML_GPM_METRIC_ANY_TENSOR_UTIL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_active_pct: Option<f64>,
    /// DRAM bandwidth used, percent of peak (NVML_GPM_METRIC_DRAM_BW_UTIL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dram_active_pct: Option<f64>,
    /// Share of time the FP64 pipes were active (NVML_GPM_METRIC_FP64_UTIL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp64_active_pct: Option<f64>,
}

/// One MIG device: a compute instance inside a GPU instance of a GPU in MIG mode.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MigDevice {
    /// Stable identity, `MIG-…`.
    pub uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
    /// Compute slices it holds (of 7 on A100, H100, H200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices_compute: Option<u32>,
    /// Memory slices its GPU instance holds (of 8 on A100, H100, H200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices_memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
    /// Compute processes on this slice.
    #[serde(default, deserialize_with = "crate::bounded::processes")]
    pub processes: Vec<Process>,
    /// GPM activity of its GPU instance over the report interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpm: Option<Gpm>,
}

/// NVML throttle reason bits and the names the wire format uses for them.
pub const THROTTLE_REASONS: &[(u64, &str)] = &[
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
];

/// Names of the throttle reasons set in an NVML bit mask; unknown bits are named by value.
pub fn throttle_reason_names(mask: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut known = 0u64;
    for (bit, name) in THROTTLE_REASONS {
        known |= bit;
        if mask & bit != 0 {
            out.push((*name).to_string());
        }
    }
    let rest = mask & !known;
    if rest != 0 {
        out.push(format!("0x{rest:x}"));
    }
    out
}

/// ECC error counters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EccCounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatile_corrected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatile_uncorrected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_corrected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate_uncorrected: Option<u64>,
}

/// A process using a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// User name (passwd database, else the job's user), absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Name of the process's primary unix group (group database), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_mem_bytes: Option<u64>,
    /// Scheduler job id, as in [`Job::id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Kubernetes pod UID, when the process runs in a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Short command name (`/proc/PID/comm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// A scheduler job with processes on this node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Job {
    /// Scheduler name, `slurm` today.
    pub scheduler: String,
    /// Job id as the scheduler prints it (numeric id, or a SLUID).
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Primary unix group of the job's processes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// GPU ids as the scheduler numbers them on this node (`SLURM_JOB_GPUS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_ids: Option<Vec<u32>>,
    /// The array task as people name it (`7060_1`, from `SLURM_ARRAY_JOB_ID` and
    /// `SLURM_ARRAY_TASK_ID`), when the job is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<String>,
    /// Number of processes of the job seen on the node.
    pub processes: u32,
}

/// Something that happened during the interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When the agent saw it, UTC milliseconds.
    pub time_ms: i64,
    /// UUID of the GPU concerned, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Kinds of [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventKind {
    /// NVIDIA XID error (for example 79: fallen off the bus; 48: double-bit ECC).
    Xid { code: u64 },
    /// A GPU went from healthy to lost.
    GpuLost,
}

/// Index of the newest report (latest interval end; the first of equals) of each node.
pub fn newest_per_node<'a>(reports: impl IntoIterator<Item = &'a Report>) -> HashMap<&'a str, usize> {
    let mut newest: HashMap<&str, (i64, usize)> = HashMap::new();
    for (i, r) in reports.into_iter().enumerate() {
        let e = newest.entry(r.node.as_str()).or_insert((r.interval_end_ms, i));
        if r.interval_end_ms > e.0 {
            *e = (r.interval_end_ms, i);
        }
    }
    newest.into_iter().map(|(n, (_, i))| (n, i)).collect()
}
