//! The wire format: one [`Report`] covers one interval of one node.
//!
//! This module is the single definition shared by the agent (which writes
//! reports) and the collector (which reads them). It builds with the crate's
//! default features off, so the collector depends on it without pulling in
//! NVML or host probes.
//!
//! Rules:
//! - every GPU is keyed by its UUID; indices are attributes;
//! - a value the GPU or host does not offer is *absent* (`None`), never zero;
//! - the format carries a [`WIRE_VERSION`]; a reader refuses a major version it
//!   does not know and ignores fields it does not know (newer agents may add
//!   optional fields without a version bump).

use serde::{Deserialize, Serialize};

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
    #[serde(default)]
    pub gpus: Vec<Gpu>,
    /// Jobs with at least one process on the node, whether or not they use a GPU.
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// Events since the previous report.
    #[serde(default)]
    pub events: Vec<Event>,
}

impl Report {
    /// Interval length in seconds (never negative).
    pub fn interval_s(&self) -> f64 {
        ((self.interval_end_ms - self.interval_start_ms).max(0)) as f64 / 1000.0
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
    /// Compute processes on this GPU.
    #[serde(default)]
    pub processes: Vec<Process>,
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

/// Errors reading a report.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("report is not valid JSON for the wire format: {0}")]
    Json(#[from] serde_json::Error),
    #[error("report has format version {found}; this build reads version {WIRE_VERSION}")]
    Version { found: u32 },
}

/// Decode one report or a JSON array of reports.
pub fn decode_reports(body: &[u8]) -> Result<Vec<Report>, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let reports: Vec<Report> =
        if first == Some(&b'[') { serde_json::from_slice(body)? } else { vec![serde_json::from_slice(body)?] };
    for r in &reports {
        if r.version != WIRE_VERSION {
            return Err(DecodeError::Version { found: r.version });
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opt<T: std::fmt::Debug + Clone + 'static>(
        s: impl Strategy<Value = T> + 'static,
    ) -> impl Strategy<Value = Option<T>> {
        proptest::option::of(s)
    }

    fn process() -> impl Strategy<Value = Process> {
        (
            any::<u32>(),
            opt(any::<u32>()),
            opt("[a-z]{1,8}"),
            opt(any::<u64>()),
            opt("[0-9]{1,7}"),
            opt("[0-9a-f-]{36}"),
            opt("[a-z]{1,15}"),
        )
            .prop_map(|(pid, uid, user, gpu_mem_bytes, job, pod_uid, command)| Process {
                pid,
                uid,
                group: user.as_ref().map(|u| format!("g-{u}")),
                user,
                gpu_mem_bytes,
                job,
                pod_uid,
                command,
            })
    }

    fn gpu() -> impl Strategy<Value = Gpu> {
        let a = (
            any::<u32>(),
            opt("GPU-[0-9a-f-]{36}"),
            opt("[0-9A-F:.]{16}"),
            opt(any::<u32>()),
            opt("NVIDIA [A-Z0-9 ]{1,10}"),
            prop_oneof![Just(Health::Ok), Just(Health::Lost), Just(Health::Error)],
            opt(0u32..=100),
            opt(0u32..=100),
            opt(any::<u64>()),
            opt(any::<u64>()),
        );
        let b = (
            opt(any::<u32>()),
            opt(any::<u32>()),
            opt(any::<u32>()),
            opt(any::<u64>()),
            opt(any::<u32>()),
            opt(any::<u32>()),
            opt(proptest::collection::vec(0u32..=100, 0..3)),
            opt(any::<bool>()),
            opt((opt(any::<u64>()), opt(any::<u64>()), opt(any::<u64>()), opt(any::<u64>()))),
            opt(any::<u64>()),
        );
        let c = (opt(any::<bool>()), proptest::collection::vec(process(), 0..4));
        (a, b, c).prop_map(|(a, b, c)| Gpu {
            index: a.0,
            uuid: a.1,
            pci_bus_id: a.2,
            minor: a.3,
            name: a.4,
            health: a.5,
            util_gpu_pct: a.6,
            util_mem_pct: a.7,
            mem_used_bytes: a.8,
            mem_total_bytes: a.9,
            temperature_c: b.0,
            power_mw: b.1,
            power_limit_mw: b.2,
            energy_mj: b.3,
            sm_clock_mhz: b.4,
            mem_clock_mhz: b.5,
            fan_pct: b.6,
            ecc_enabled: b.7,
            ecc: b.8.map(|(w, x, y, z)| EccCounts {
                volatile_corrected: w,
                volatile_uncorrected: x,
                aggregate_corrected: y,
                aggregate_uncorrected: z,
            }),
            throttle_reasons: b.9.map(throttle_reason_names),
            mig_enabled: c.0,
            processes: c.1,
        })
    }

    fn report() -> impl Strategy<Value = Report> {
        let host = (
            opt(0.0f64..6400.0),
            opt(any::<u32>()),
            opt((0.0f64..500.0, 0.0f64..500.0, 0.0f64..500.0)),
            opt(any::<u64>()),
            opt(any::<u64>()),
            opt(any::<u64>()),
            opt("[0-9a-f-]{36}"),
            opt("[0-9a-z.-]{1,20}"),
            prop_oneof![
                Just(GpuSourceState::Ok),
                Just(GpuSourceState::NoGpus),
                ".{0,30}".prop_map(GpuSourceState::Unavailable)
            ],
        )
            .prop_map(|h| Host {
                cpu_percent: h.0,
                cpu_count: h.1,
                load: h.2.map(|(a, b, c)| [a, b, c]),
                mem_used_bytes: h.3,
                mem_total_bytes: h.4,
                uptime_s: h.5,
                boot_id: h.6,
                kernel: h.7.clone(),
                driver_version: h.7,
                cuda_version: None,
                gpu_source: h.8,
                agent_version: None,
            });
        let job = (
            "[0-9]{1,8}",
            opt("[a-z]{1,8}"),
            opt("[a-z-]{1,12}"),
            opt(proptest::collection::vec(0u32..16, 0..8)),
            any::<u32>(),
        )
            .prop_map(|(id, user, account, gpu_ids, processes)| Job {
                scheduler: "slurm".into(),
                id,
                group: user.as_ref().map(|u| format!("g-{u}")),
                user,
                uid: None,
                account,
                gpu_ids,
                processes,
            });
        let event = (
            any::<i64>(),
            opt("GPU-[0-9a-f]{8}"),
            prop_oneof![any::<u64>().prop_map(|code| EventKind::Xid { code }), Just(EventKind::GpuLost)],
        )
            .prop_map(|(time_ms, gpu_uuid, kind)| Event { time_ms, gpu_uuid, kind });
        (
            "[a-z0-9-]{1,20}",
            "[0-9a-f]{16}",
            any::<u64>(),
            any::<i64>(),
            any::<i64>(),
            host,
            proptest::collection::vec(gpu(), 0..9),
            proptest::collection::vec(job, 0..5),
            proptest::collection::vec(event, 0..3),
        )
            .prop_map(|(node, instance, seq, s, e, host, gpus, jobs, events)| Report {
                version: WIRE_VERSION,
                node,
                instance,
                seq,
                interval_start_ms: s,
                interval_end_ms: e,
                host,
                gpus,
                jobs,
                events,
            })
    }

    proptest! {
        #[test]
        fn report_round_trips_through_json(r in report()) {
            let text = serde_json::to_vec(&r).unwrap();
            let back = decode_reports(&text).unwrap();
            prop_assert_eq!(back, vec![r]);
        }

        #[test]
        fn batches_round_trip(rs in proptest::collection::vec(report(), 0..4)) {
            let text = serde_json::to_vec(&rs).unwrap();
            prop_assert_eq!(decode_reports(&text).unwrap(), rs);
        }
    }

    #[test]
    fn absent_fields_are_not_written_as_zero() {
        let g = Gpu { index: 3, uuid: Some("GPU-x".into()), ..Default::default() };
        let v = serde_json::to_value(&g).unwrap();
        assert!(v.get("fan_pct").is_none());
        assert!(v.get("ecc").is_none());
        assert!(v.get("power_mw").is_none());
        assert_eq!(v["health"], "ok");
    }

    #[test]
    fn unknown_version_is_refused_with_its_number() {
        let r = Report {
            version: 99,
            node: "n".into(),
            instance: "i".into(),
            seq: 0,
            interval_start_ms: 0,
            interval_end_ms: 1,
            host: Host::default(),
            gpus: vec![],
            jobs: vec![],
            events: vec![],
        };
        let err = decode_reports(&serde_json::to_vec(&r).unwrap()).unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");
    }

    #[test]
    fn decode_error_names_the_field() {
        let err = decode_reports(br#"{"version":1,"node":"n","instance":"i","seq":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("seq") || err.to_string().contains("string"), "{err}");
    }

    #[test]
    fn throttle_names_keep_unknown_bits() {
        assert_eq!(throttle_reason_names(0x1 | 0x4 | 0x1000), vec!["gpu_idle", "sw_power_cap", "0x1000"]);
        assert!(throttle_reason_names(0).is_empty());
    }
}
