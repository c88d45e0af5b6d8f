//! GPU source: a trait, and its NVML implementation through nvml-wrapper.
//!
//! NVML is initialised once per process. A field the GPU does not support
//! (NOT_SUPPORTED, or a symbol the driver lacks) is left absent. A GPU that
//! fell off the bus (GPU_IS_LOST) is reported with `health: lost` under the
//! UUID it had when last seen, and the agent keeps running. XID events are
//! read from an NVML event set on a background thread ([`events`]) and handed
//! to the next sample. A GPU in MIG mode lists its MIG devices ([`mig`]); GPM
//! activity (Hopper and later) is the mean over the report interval ([`gpm`]).

mod events;
mod gpm;
mod mig;

use gpm::GpmState;
use jazari_wire::{EccCounts, Event, EventKind, Gpu, Health, Process, throttle_reason_names};
use mig::MigCache;
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, EccCounter, MemoryError, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::mpsc;
use std::time::Duration;

/// What one read of the GPUs gives.
#[derive(Debug, Default)]
pub struct GpuRead {
    pub gpus: Vec<Gpu>,
    /// Events since the previous read (XID, GPU lost).
    pub events: Vec<Event>,
}

/// Something that can read the node's GPUs.
pub trait GpuSource: Send {
    /// Reads every GPU once. Processes carry pid and GPU memory only; the
    /// caller attributes them to users and jobs.
    fn read(&mut self, now_ms: i64) -> GpuRead;
    /// NVIDIA driver version, when known.
    fn driver_version(&self) -> Option<String>;
    /// CUDA driver version as "major.minor", when known.
    fn cuda_version(&self) -> Option<String>;
    /// Takes what later reads compare against (GPM samples) and says how
    /// long to wait before a read has every value; a source without such
    /// values returns zero. The first read after it then needs no baseline.
    fn prime(&mut self) -> Duration {
        Duration::ZERO
    }
}

/// The GPU fell off the bus during a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost;

/// Facts about a GPU that do not change while it is attached.
#[derive(Debug, Clone, Default)]
struct StaticFacts {
    uuid: Option<String>,
    name: Option<String>,
    pci_bus_id: Option<String>,
    minor: Option<u32>,
}

/// NVML through nvml-wrapper.
pub struct NvmlSource {
    nvml: &'static Nvml,
    driver: Option<String>,
    cuda: Option<String>,
    facts: HashMap<u32, StaticFacts>,
    lost: HashMap<u32, bool>,
    events: mpsc::Receiver<Event>,
    gpm: GpmState,
    mig: MigCache,
}

/// Why NVML could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NvmlUnavailable(pub String);

impl NvmlSource {
    /// Loads and initialises NVML from `lib_path` (or the system default) and
    /// starts the XID event thread.
    pub fn open(lib_path: Option<&OsStr>) -> Result<Self, NvmlUnavailable> {
        let mut builder = Nvml::builder();
        if let Some(p) = lib_path {
            builder.lib_path(p);
        }
        let nvml = builder.init().map_err(|e| {
            let lib = lib_path.map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "libnvidia-ml.so".into());
            NvmlUnavailable(match e {
                NvmlError::LibloadingError(e) => format!("cannot load NVML: {e}"),
                NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".into(),
                NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".into(),
                e => format!("NVML from {lib} failed to initialise: {e}"),
            })
        })?;
        // One NVML handle for the life of the process: the event thread and the
        // sampler share it.
        let nvml: &'static Nvml = Box::leak(Box::new(nvml));
        let driver = nvml.sys_driver_version().ok();
        let cuda = nvml.sys_cuda_driver_version().ok().map(|v| {
            format!("{}.{}", nvml_wrapper::cuda_driver_version_major(v), nvml_wrapper::cuda_driver_version_minor(v))
        });
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("nvml-events".into())
            .spawn(move || events::xid_events(nvml, tx))
            .map_err(|e| NvmlUnavailable(format!("cannot start the NVML event thread: {e}")))?;
        Ok(Self {
            nvml,
            driver,
            cuda,
            facts: HashMap::new(),
            lost: HashMap::new(),
            events: rx,
            gpm: GpmState::default(),
            mig: MigCache::default(),
        })
    }

    /// Number of GPUs NVML reports.
    pub fn count(&self) -> u32 {
        self.nvml.device_count().unwrap_or(0)
    }

    fn read_one(&mut self, index: u32) -> Gpu {
        let mut gpu = Gpu { index, ..Default::default() };
        let device = match self.nvml.device_by_index(index) {
            Ok(d) => d,
            Err(e) => {
                gpu.health = if matches!(e, NvmlError::GpuLost) { Health::Lost } else { Health::Error };
                self.fill_static(&mut gpu);
                return gpu;
            }
        };
        let mut lost = false;
        // Unwraps one NVML answer: a lost GPU stops the read, anything
        // unsupported or failing leaves the field absent.
        macro_rules! get {
            ($e:expr) => {{
                if lost {
                    None
                } else {
                    match $e {
                        Ok(v) => Some(v),
                        Err(NvmlError::GpuLost) => {
                            lost = true;
                            None
                        }
                        Err(_) => None,
                    }
                }
            }};
        }
        let known = self.facts.get(&index).filter(|f| f.uuid.is_some()).cloned();
        let facts = match known {
            Some(f) => f,
            None => {
                let f = StaticFacts {
                    uuid: get!(device.uuid()),
                    name: get!(device.name()),
                    pci_bus_id: get!(device.pci_info()).map(|p| p.bus_id),
                    minor: get!(device.minor_number()),
                };
                if f.uuid.is_some() {
                    self.facts.insert(index, f.clone());
                }
                f
            }
        };
        gpu.uuid = facts.uuid;
        gpu.name = facts.name;
        gpu.pci_bus_id = facts.pci_bus_id;
        gpu.minor = facts.minor;
        if let Some(u) = get!(device.utilization_rates()) {
            gpu.util_gpu_pct = Some(u.gpu);
            gpu.util_mem_pct = Some(u.memory);
        }
        if let Some(m) = get!(device.memory_info()) {
            gpu.mem_used_bytes = Some(m.used);
            gpu.mem_total_bytes = Some(m.total);
        }
        gpu.temperature_c = get!(device.temperature(TemperatureSensor::Gpu));
        gpu.power_mw = get!(device.power_usage());
        gpu.power_limit_mw = get!(device.enforced_power_limit());
        gpu.energy_mj = get!(device.total_energy_consumption());
        gpu.sm_clock_mhz = get!(device.clock_info(Clock::SM));
        gpu.mem_clock_mhz = get!(device.clock_info(Clock::Memory));
        if let Some(n) = get!(device.num_fans()) {
            let speeds: Option<Vec<u32>> = (0..n).map(|i| get!(device.fan_speed(i))).collect();
            gpu.fan_pct = speeds.filter(|s| !s.is_empty());
        }
        gpu.ecc_enabled = get!(device.is_ecc_enabled()).map(|m| m.currently_enabled);
        if gpu.ecc_enabled == Some(true) {
            let ecc = EccCounts {
                volatile_corrected: get!(device.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile)),
                volatile_uncorrected: get!(device.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)),
                aggregate_corrected: get!(device.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate)),
                aggregate_uncorrected: get!(device.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate)),
            };
            if ecc != EccCounts::default() {
                gpu.ecc = Some(ecc);
            }
        }
        gpu.throttle_reasons = get!(device.current_throttle_reasons()).map(|r| throttle_reason_names(r.bits()));
        gpu.mig_enabled = get!(device.mig_mode()).map(|m| m.current == 1);
        if let Some(procs) = get!(device.running_compute_processes()) {
            gpu.processes = procs.into_iter().map(process_of).collect();
        }
        if gpu.mig_enabled == Some(true) && !lost {
            match mig::read(&device, index, gpu.mem_total_bytes, &mut self.mig) {
                Ok(devices) => gpu.mig_devices = devices,
                Err(Lost) => lost = true,
            }
        } else {
            self.mig.forget(index);
        }
        if !lost {
            let instances: Vec<u32> = gpu.mig_devices.iter().filter_map(|d| d.gpu_instance_id).collect();
            match self.gpm.read(index, &device, &instances) {
                Ok(read) => {
                    gpu.gpm = read.gpu;
                    for d in &mut gpu.mig_devices {
                        d.gpm = d.gpu_instance_id.and_then(|gi| read.instances.get(&gi).cloned());
                    }
                }
                Err(Lost) => lost = true,
            }
        }
        if lost {
            self.gpm.forget(index);
            self.mig.forget(index);
            gpu = Gpu { index, health: Health::Lost, ..Default::default() };
            self.fill_static(&mut gpu);
        }
        gpu
    }

    /// Takes each GPU's first GPM samples (and those of its MIG GPU instances).
    fn prime_gpm(&mut self) -> bool {
        let mut primed = false;
        for index in 0..self.count() {
            let Ok(device) = self.nvml.device_by_index(index) else { continue };
            let instances = match device.mig_mode() {
                Ok(m) if m.current == 1 => mig::gpu_instance_ids(&device).unwrap_or_default(),
                _ => Vec::new(),
            };
            primed |= self.gpm.read(index, &device, &instances).is_ok_and(|_| self.gpm.has_samples(index));
        }
        primed
    }

    /// Static facts from the last time the GPU answered.
    fn fill_static(&self, gpu: &mut Gpu) {
        if let Some(f) = self.facts.get(&gpu.index) {
            gpu.uuid = f.uuid.clone();
            gpu.name = f.name.clone();
            gpu.pci_bus_id = f.pci_bus_id.clone();
            gpu.minor = f.minor;
        }
    }
}

impl GpuSource for NvmlSource {
    fn read(&mut self, now_ms: i64) -> GpuRead {
        let mut out = GpuRead::default();
        for index in 0..self.count() {
            let gpu = self.read_one(index);
            let was_lost = self.lost.insert(index, gpu.health == Health::Lost).unwrap_or(false);
            if gpu.health == Health::Lost && !was_lost {
                tracing::warn!(
                    index,
                    uuid = gpu.uuid.as_deref().unwrap_or("unknown"),
                    "GPU is lost (fell off the bus)"
                );
                out.events.push(Event { time_ms: now_ms, gpu_uuid: gpu.uuid.clone(), kind: EventKind::GpuLost });
            }
            out.gpus.push(gpu);
        }
        out.events.extend(self.events.try_iter());
        out
    }

    fn driver_version(&self) -> Option<String> {
        self.driver.clone()
    }

    fn cuda_version(&self) -> Option<String> {
        self.cuda.clone()
    }

    fn prime(&mut self) -> Duration {
        // A little over NVML's minimum, so the first report is past it.
        if self.prime_gpm() { gpm::MIN_GAP + Duration::from_millis(20) } else { Duration::ZERO }
    }
}

/// A compute process as NVML lists it: pid and GPU memory; the sampler
/// attributes it to its user and job.
fn process_of(p: ProcessInfo) -> Process {
    Process {
        pid: p.pid,
        gpu_mem_bytes: match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => Some(b),
            UsedGpuMemory::Unavailable => None,
        },
        ..Default::default()
    }
}
