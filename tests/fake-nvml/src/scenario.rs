//! The scenario file: the GPUs, MIG devices and processes the fake shows.

use serde::Deserialize;
use std::collections::BTreeMap;

pub(crate) const MIB: u64 = 1024 * 1024;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) description: String,
    #[serde(default = "default_driver")]
    pub(crate) driver_version: String,
    /// CUDA driver version as NVML encodes it: 1000 × major + 10 × minor.
    #[serde(default = "default_cuda")]
    pub(crate) cuda_version: i32,
    /// Real processes to start at init, by name.
    #[serde(default)]
    pub(crate) processes: BTreeMap<String, SpawnSpec>,
    #[serde(default)]
    pub(crate) gpus: Vec<FakeGpu>,
}

fn default_driver() -> String {
    "570.124.06".into()
}
fn default_cuda() -> i32 {
    12080
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpawnSpec {
    #[serde(default)]
    pub(crate) uid: Option<u32>,
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct FakeGpu {
    pub(crate) name: String,
    pub(crate) uuid: String,
    pub(crate) pci_bus_id: String,
    #[serde(default)]
    pub(crate) minor: Option<u32>,
    pub(crate) memory_total_mib: u64,
    #[serde(default)]
    pub(crate) memory_used_mib: u64,
    #[serde(default)]
    pub(crate) util_gpu: u32,
    #[serde(default)]
    pub(crate) util_mem: u32,
    #[serde(default = "default_temp")]
    pub(crate) temperature_c: u32,
    #[serde(default)]
    pub(crate) power_mw: u32,
    #[serde(default)]
    pub(crate) power_limit_mw: u32,
    /// Energy counter at init; it then grows by power × elapsed time.
    #[serde(default)]
    pub(crate) energy_mj: u64,
    #[serde(default)]
    pub(crate) sm_clock_mhz: u32,
    #[serde(default)]
    pub(crate) mem_clock_mhz: u32,
    #[serde(default)]
    pub(crate) fans: Vec<u32>,
    #[serde(default)]
    pub(crate) ecc_enabled: bool,
    #[serde(default)]
    pub(crate) ecc: EccSpec,
    #[serde(default)]
    pub(crate) throttle_reasons: u64,
    #[serde(default)]
    pub(crate) mig_enabled: bool,
    /// MIG devices (slices), in NVML index order; only with `mig_enabled`.
    #[serde(default)]
    pub(crate) mig_devices: Vec<FakeMig>,
    /// CUDA compute capability as "major.minor" ("9.0" for Hopper).
    #[serde(default)]
    pub(crate) compute_capability: Option<String>,
    /// GPM activity over any interval; the GPU supports GPM when this or one of
    /// its MIG devices' `gpm` is given (Hopper and later only).
    #[serde(default)]
    pub(crate) gpm: Option<GpmSpec>,
    #[serde(default)]
    pub(crate) processes: Vec<GpuProcess>,
    /// Function groups answering NOT_SUPPORTED: fan, ecc, power, energy,
    /// temperature, clocks, throttle, mig, processes, minor, utilization,
    /// memory, events, gpm.
    #[serde(default)]
    pub(crate) unsupported: Vec<String>,
    /// Lost from the start.
    #[serde(default)]
    pub(crate) lost: bool,
    /// Lost after this many utilisation reads (one per agent sample).
    #[serde(default)]
    pub(crate) lost_after_samples: Option<u32>,
    /// XID codes pending for an event set that registers this GPU.
    #[serde(default)]
    pub(crate) xid_events: Vec<u64>,
}

fn default_temp() -> u32 {
    35
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct EccSpec {
    #[serde(default)]
    pub(crate) volatile_corrected: u64,
    #[serde(default)]
    pub(crate) volatile_uncorrected: u64,
    #[serde(default)]
    pub(crate) aggregate_corrected: u64,
    #[serde(default)]
    pub(crate) aggregate_uncorrected: u64,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct GpuProcess {
    /// A process named in the scenario's `processes`, started at init.
    #[serde(default)]
    pub(crate) spawn: Option<String>,
    /// A literal pid (need not exist).
    #[serde(default)]
    pub(crate) pid: Option<u32>,
    #[serde(default)]
    pub(crate) used_memory_mib: u64,
}

/// GPM percentages (0..100) of a GPU or of a MIG GPU instance. A metric left
/// out answers NOT_SUPPORTED in `nvmlGpmMetricsGet`.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct GpmSpec {
    #[serde(default)]
    pub(crate) sm_active_pct: Option<f64>,
    #[serde(default)]
    pub(crate) sm_occupancy_pct: Option<f64>,
    #[serde(default)]
    pub(crate) tensor_active_pct: Option<f64>,
    #[serde(default)]
    pub(crate) dram_active_pct: Option<f64>,
    #[serde(default)]
    pub(crate) fp64_active_pct: Option<f64>,
}

/// One MIG device: a compute instance in a GPU instance.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct FakeMig {
    /// `MIG-…`
    pub(crate) uuid: String,
    /// GPU instance profile, one of [`H200_PROFILES`].
    pub(crate) profile: String,
    pub(crate) gpu_instance_id: u32,
    #[serde(default)]
    pub(crate) compute_instance_id: u32,
    /// Compute slices of the compute instance when it is smaller than its GPU
    /// instance (a `1c.3g` instance); by default the whole GPU instance.
    #[serde(default)]
    pub(crate) compute_instance_slices: Option<u32>,
    #[serde(default)]
    pub(crate) memory_used_mib: u64,
    #[serde(default)]
    pub(crate) processes: Vec<GpuProcess>,
    /// GPM of its GPU instance (the first device of a GPU instance that gives one).
    #[serde(default)]
    pub(crate) gpm: Option<GpmSpec>,
}

/// A MIG GPU instance profile: what `nvmlDeviceGetAttributes_v2` answers for
/// a MIG device made from it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MigProfile {
    pub(crate) name: &'static str,
    /// Compute slices (of 7).
    pub(crate) slices: u32,
    /// Memory slices (of 8); not an NVML attribute.
    pub(crate) memory_slices: u32,
    pub(crate) memory_mib: u64,
    pub(crate) sms: u32,
    pub(crate) copy_engines: u32,
    pub(crate) decoders: u32,
    pub(crate) jpegs: u32,
    pub(crate) ofas: u32,
}

const fn profile(name: &'static str, slices: u32, memory_slices: u32, memory_mib: u64, sms: u32) -> MigProfile {
    let media = if slices == 7 { 7 } else { slices };
    MigProfile {
        name,
        slices,
        memory_slices,
        memory_mib,
        sms,
        copy_engines: if slices == 7 { 8 } else { slices },
        decoders: media,
        jpegs: media,
        ofas: if slices == 7 { 1 } else { 0 },
    }
}

/// The H200 (141 GB) GPU instance profiles of NVIDIA's MIG user guide:
/// fractions of SMs and memory from its table, memory sizes close to what
/// `nvidia-smi mig -lgip` lists on an H200, 132 SMs in all.
pub(crate) const H200_PROFILES: &[MigProfile] = &[
    profile("1g.18gb", 1, 1, 16384, 16),
    profile("1g.35gb", 1, 2, 33280, 16),
    profile("2g.35gb", 2, 2, 33280, 32),
    profile("3g.71gb", 3, 4, 66560, 60),
    profile("4g.71gb", 4, 4, 66560, 64),
    profile("7g.141gb", 7, 8, 143360, 132),
];

impl FakeMig {
    pub(crate) fn profile(&self) -> MigProfile {
        *H200_PROFILES.iter().find(|p| p.name == self.profile).expect("checked at load")
    }
}

/// Most MIG devices NVML lists on one GPU (`nvmlDeviceGetMaxMigDeviceCount`).
pub(crate) const MAX_MIG_DEVICES: usize = 7;

pub(crate) fn load_scenario() -> Result<Scenario, String> {
    let path = std::env::var("FAKE_NVML_CONFIG")
        .map_err(|_| "FAKE_NVML_CONFIG is not set: name a scenario JSON file".to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let s: Scenario = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    s.check().map_err(|e| format!("{path}: {e}"))?;
    Ok(s)
}

impl Scenario {
    /// What JSON cannot say: GPM only on Hopper and later, MIG devices only in
    /// MIG mode and within the GPU, known profiles, percentages in 0..100.
    fn check(&self) -> Result<(), String> {
        let pct = |at: &str, g: &Option<GpmSpec>| -> Result<(), String> {
            let Some(g) = g else { return Ok(()) };
            let all = [g.sm_active_pct, g.sm_occupancy_pct, g.tensor_active_pct, g.dram_active_pct, g.fp64_active_pct];
            match all.into_iter().flatten().find(|v| !(0.0..=100.0).contains(v)) {
                Some(v) => Err(format!("{at}: GPM value {v} is outside 0..100")),
                None => Ok(()),
            }
        };
        for (i, g) in self.gpus.iter().enumerate() {
            let at = format!("gpus[{i}]");
            let cc = match &g.compute_capability {
                Some(cc) => Some(parse_cc(cc).ok_or(format!("{at}: compute_capability `{cc}` is not major.minor"))?),
                None => None,
            };
            let has_gpm = g.gpm.is_some() || g.mig_devices.iter().any(|m| m.gpm.is_some());
            if has_gpm && cc.is_some_and(|(major, _)| major < 9) {
                return Err(format!("{at}: GPM needs Hopper or later (compute capability 9.0 and up)"));
            }
            pct(&at, &g.gpm)?;
            if !g.mig_devices.is_empty() && !g.mig_enabled {
                return Err(format!("{at}: mig_devices on a GPU without mig_enabled"));
            }
            if g.mig_devices.len() > MAX_MIG_DEVICES {
                return Err(format!("{at}: more than {MAX_MIG_DEVICES} MIG devices"));
            }
            let (mut used, mut used_memory) = (0, 0);
            for (k, m) in g.mig_devices.iter().enumerate() {
                let at = format!("{at}.mig_devices[{k}]");
                let p = H200_PROFILES.iter().find(|p| p.name == m.profile).ok_or_else(|| {
                    let known: Vec<_> = H200_PROFILES.iter().map(|p| p.name).collect();
                    format!("{at}: unknown profile `{}` (known: {})", m.profile, known.join(", "))
                })?;
                if !m.uuid.starts_with("MIG-") {
                    return Err(format!("{at}: uuid `{}` does not start with MIG-", m.uuid));
                }
                if m.compute_instance_slices.is_some_and(|c| c == 0 || c > p.slices) {
                    return Err(format!("{at}: compute_instance_slices outside 1..{}", p.slices));
                }
                if m.memory_used_mib > p.memory_mib {
                    return Err(format!("{at}: memory_used_mib is more than the profile's {} MiB", p.memory_mib));
                }
                // Compute instances of one GPU instance share its slices.
                if !g.mig_devices[..k].iter().any(|o| o.gpu_instance_id == m.gpu_instance_id) {
                    used += p.slices;
                    used_memory += p.memory_slices;
                }
                pct(&at, &m.gpm)?;
            }
            if used > 7 || used_memory > 8 {
                return Err(format!(
                    "{at}: its GPU instances hold {used} compute slices (of 7) and {used_memory} memory slices (of 8)"
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn parse_cc(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}
