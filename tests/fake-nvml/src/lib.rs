//! A fake `libnvidia-ml.so` for tests on machines without an NVIDIA GPU.
//!
//! It exports NVML's C functions that a monitoring agent uses, with struct
//! layouts, constants and signatures taken from `nvml-wrapper-sys` (checked at
//! compile time in [`signatures`]), so the real nvml-wrapper code path loads
//! and drives it exactly as it would the vendor library.
//!
//! The GPUs come from the JSON scenario file named by `FAKE_NVML_CONFIG`,
//! re-read at each first `nvmlInit_v2` (a `dlopen`ed library is one instance
//! per process). A scenario can also describe *processes*: at init the library
//! starts one real `sleep` per named process, with the given uid and
//! environment (Slurm variables, for example), and reports its real pid as a
//! GPU process. The agent then attributes it through the real `/proc`, as on a
//! cluster node. The children die with the process that loaded the library.
//!
//! See `scenarios/README.md` for the scenario format.

#![allow(non_snake_case, non_upper_case_globals, clippy::missing_safety_doc)]

use nvml_wrapper_sys::bindings::*;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{c_char, c_int, c_uint, c_ulonglong};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default = "default_driver")]
    driver_version: String,
    /// CUDA driver version as NVML encodes it: 1000 × major + 10 × minor.
    #[serde(default = "default_cuda")]
    cuda_version: i32,
    /// Real processes to start at init, by name.
    #[serde(default)]
    processes: BTreeMap<String, SpawnSpec>,
    #[serde(default)]
    gpus: Vec<FakeGpu>,
}

fn default_driver() -> String {
    "570.124.06".into()
}
fn default_cuda() -> i32 {
    12080
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct SpawnSpec {
    #[serde(default)]
    uid: Option<u32>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct FakeGpu {
    name: String,
    uuid: String,
    pci_bus_id: String,
    #[serde(default)]
    minor: Option<u32>,
    memory_total_mib: u64,
    #[serde(default)]
    memory_used_mib: u64,
    #[serde(default)]
    util_gpu: u32,
    #[serde(default)]
    util_mem: u32,
    #[serde(default = "default_temp")]
    temperature_c: u32,
    #[serde(default)]
    power_mw: u32,
    #[serde(default)]
    power_limit_mw: u32,
    /// Energy counter at init; it then grows by power × elapsed time.
    #[serde(default)]
    energy_mj: u64,
    #[serde(default)]
    sm_clock_mhz: u32,
    #[serde(default)]
    mem_clock_mhz: u32,
    #[serde(default)]
    fans: Vec<u32>,
    #[serde(default)]
    ecc_enabled: bool,
    #[serde(default)]
    ecc: EccSpec,
    #[serde(default)]
    throttle_reasons: u64,
    #[serde(default)]
    mig_enabled: bool,
    #[serde(default)]
    processes: Vec<GpuProcess>,
    /// Function groups answering NOT_SUPPORTED: fan, ecc, power, energy,
    /// temperature, clocks, throttle, mig, processes, minor, utilization.
    #[serde(default)]
    unsupported: Vec<String>,
    /// Lost from the start.
    #[serde(default)]
    lost: bool,
    /// Lost after this many utilisation reads (one per agent sample).
    #[serde(default)]
    lost_after_samples: Option<u32>,
    /// XID codes pending for an event set that registers this GPU.
    #[serde(default)]
    xid_events: Vec<u64>,
}

fn default_temp() -> u32 {
    35
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct EccSpec {
    #[serde(default)]
    volatile_corrected: u64,
    #[serde(default)]
    volatile_uncorrected: u64,
    #[serde(default)]
    aggregate_corrected: u64,
    #[serde(default)]
    aggregate_uncorrected: u64,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct GpuProcess {
    /// A process named in the scenario's `processes`, started at init.
    #[serde(default)]
    spawn: Option<String>,
    /// A literal pid (need not exist).
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    used_memory_mib: u64,
}

struct State {
    scenario: Scenario,
    started: Instant,
    init_count: u32,
    samples: Vec<u32>,
    children: BTreeMap<String, Child>,
    pending_xid: Vec<VecDeque<u64>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn load_scenario() -> Result<Scenario, String> {
    let path = std::env::var("FAKE_NVML_CONFIG")
        .map_err(|_| "FAKE_NVML_CONFIG is not set: name a scenario JSON file".to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn spawn(name: &str, spec: &SpawnSpec) -> std::io::Result<Child> {
    let make = |with_uid: bool| {
        let mut c = Command::new("sleep");
        c.arg("3600").envs(&spec.env).stdin(std::process::Stdio::null());
        if let (true, Some(uid)) = (with_uid, spec.uid) {
            c.uid(uid).gid(uid);
        }
        unsafe {
            c.pre_exec(|| {
                // Die with the process that loaded the library.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        c
    };
    let is_root = unsafe { libc::geteuid() } == 0;
    match make(is_root).spawn() {
        Ok(c) => Ok(c),
        Err(e) if is_root => {
            eprintln!("fake-nvml: starting {name} as uid {:?} failed ({e}); starting it as this user", spec.uid);
            make(false).spawn()
        }
        Err(e) => Err(e),
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    let mut g = state();
    if let Some(s) = g.as_mut() {
        s.init_count += 1;
        return nvmlReturn_enum_NVML_SUCCESS;
    }
    let scenario = match load_scenario() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-nvml: {e}");
            return nvmlReturn_enum_NVML_ERROR_UNKNOWN;
        }
    };
    let mut children = BTreeMap::new();
    for (name, spec) in &scenario.processes {
        match spawn(name, spec) {
            Ok(c) => {
                children.insert(name.clone(), c);
            }
            Err(e) => eprintln!("fake-nvml: cannot start process {name}: {e}"),
        }
    }
    let n = scenario.gpus.len();
    let pending_xid = scenario.gpus.iter().map(|g| g.xid_events.iter().copied().collect()).collect();
    *g = Some(State { scenario, started: Instant::now(), init_count: 1, samples: vec![0; n], children, pending_xid });
    nvmlReturn_enum_NVML_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    let mut g = state();
    let Some(s) = g.as_mut() else {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    };
    s.init_count -= 1;
    if s.init_count == 0 {
        let mut s = g.take().expect("state present");
        for c in s.children.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    nvmlReturn_enum_NVML_SUCCESS
}

unsafe fn write_cstr(s: &str, buf: *mut c_char, len: c_uint) -> nvmlReturn_t {
    if buf.is_null() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    let bytes = s.as_bytes();
    if bytes.len() + 1 > len as usize {
        return nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
    }
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr() as *const c_char, buf, bytes.len());
        *buf.add(bytes.len()) = 0;
    }
    nvmlReturn_enum_NVML_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) -> nvmlReturn_t {
    match state().as_ref() {
        Some(s) => unsafe { write_cstr(&s.scenario.driver_version, version, length) },
        None => nvmlReturn_enum_NVML_ERROR_UNINITIALIZED,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetCudaDriverVersion_v2(v: *mut c_int) -> nvmlReturn_t {
    match state().as_ref() {
        Some(s) if !v.is_null() => {
            unsafe { *v = s.scenario.cuda_version };
            nvmlReturn_enum_NVML_SUCCESS
        }
        Some(_) => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
        None => nvmlReturn_enum_NVML_ERROR_UNINITIALIZED,
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    match state().as_ref() {
        Some(s) if !count.is_null() => {
            unsafe { *count = s.scenario.gpus.len() as c_uint };
            nvmlReturn_enum_NVML_SUCCESS
        }
        Some(_) => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
        None => nvmlReturn_enum_NVML_ERROR_UNINITIALIZED,
    }
}

fn handle_of(index: usize) -> nvmlDevice_t {
    (index + 1) as nvmlDevice_t
}

fn index_of(device: nvmlDevice_t) -> usize {
    (device as usize).wrapping_sub(1)
}

fn is_lost(s: &State, i: usize) -> bool {
    let g = &s.scenario.gpus[i];
    g.lost || g.lost_after_samples.is_some_and(|n| s.samples[i] > n)
}

/// Runs `f` on the GPU behind `device` after the common checks:
/// initialised, valid handle, not lost, function group supported.
fn with_gpu(device: nvmlDevice_t, group: &str, f: impl FnOnce(&mut State, usize) -> nvmlReturn_t) -> nvmlReturn_t {
    let mut g = state();
    let Some(s) = g.as_mut() else {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    };
    let i = index_of(device);
    if i >= s.scenario.gpus.len() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    if is_lost(s, i) {
        return nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
    }
    if s.scenario.gpus[i].unsupported.iter().any(|u| u == group) {
        return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
    }
    f(s, i)
}

macro_rules! out {
    ($ptr:expr, $val:expr) => {{
        if $ptr.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        unsafe { *$ptr = $val };
        nvmlReturn_enum_NVML_SUCCESS
    }};
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(index: c_uint, device: *mut nvmlDevice_t) -> nvmlReturn_t {
    let g = state();
    let Some(s) = g.as_ref() else {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    };
    let i = index as usize;
    if i >= s.scenario.gpus.len() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    out!(device, handle_of(i))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(device: nvmlDevice_t, name: *mut c_char, length: c_uint) -> nvmlReturn_t {
    with_gpu(device, "name", |s, i| unsafe { write_cstr(&s.scenario.gpus[i].name, name, length) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(device: nvmlDevice_t, uuid: *mut c_char, length: c_uint) -> nvmlReturn_t {
    with_gpu(device, "uuid", |s, i| unsafe { write_cstr(&s.scenario.gpus[i].uuid, uuid, length) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPciInfo_v3(device: nvmlDevice_t, pci: *mut nvmlPciInfo_t) -> nvmlReturn_t {
    with_gpu(device, "pci", |s, i| {
        if pci.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        let id = &s.scenario.gpus[i].pci_bus_id;
        // "DDDDDDDD:BB:DD.F"
        let parse = |a: usize, b: usize| id.get(a..b).and_then(|x| u32::from_str_radix(x, 16).ok()).unwrap_or(0);
        unsafe {
            let p = &mut *pci;
            *p = std::mem::zeroed();
            p.domain = parse(0, 8);
            p.bus = parse(9, 11);
            p.device = parse(12, 14);
            p.pciDeviceId = 0x233510de;
            p.pciSubSystemId = 0x18a610de;
            write_cstr(id, p.busId.as_mut_ptr(), NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE);
            let legacy = id.get(4..).unwrap_or(id);
            write_cstr(legacy, p.busIdLegacy.as_mut_ptr(), 16);
        }
        nvmlReturn_enum_NVML_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMinorNumber(device: nvmlDevice_t, minor: *mut c_uint) -> nvmlReturn_t {
    with_gpu(device, "minor", |s, i| out!(minor, s.scenario.gpus[i].minor.unwrap_or(i as u32)))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    u: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    // One utilisation read per agent sample: count it before answering, so
    // `lost_after_samples: N` answers N whole samples, then GPU_IS_LOST.
    if let Some(s) = state().as_mut() {
        let i = index_of(device);
        if i < s.samples.len() {
            s.samples[i] = s.samples[i].saturating_add(1);
        }
    }
    with_gpu(device, "utilization", |s, i| {
        let g = &s.scenario.gpus[i];
        out!(u, nvmlUtilization_t { gpu: g.util_gpu, memory: g.util_mem })
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(device: nvmlDevice_t, m: *mut nvmlMemory_v2_t) -> nvmlReturn_t {
    with_gpu(device, "memory", |s, i| {
        if m.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        // NVML_STRUCT_VERSION(Memory, 2)
        let want = (std::mem::size_of::<nvmlMemory_v2_t>() | (2 << 24)) as c_uint;
        if unsafe { (*m).version } != want {
            return nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        }
        let g = &s.scenario.gpus[i];
        let total = g.memory_total_mib * MIB;
        let used = (g.memory_used_mib * MIB).min(total);
        let reserved = 512 * MIB;
        unsafe {
            (*m).total = total;
            (*m).reserved = reserved.min(total - used);
            (*m).used = used;
            (*m).free = total - used - (*m).reserved;
        }
        nvmlReturn_enum_NVML_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    sensor: nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    with_gpu(device, "temperature", |s, i| {
        if sensor != nvmlTemperatureSensors_enum_NVML_TEMPERATURE_GPU {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        out!(temp, s.scenario.gpus[i].temperature_c)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(device: nvmlDevice_t, power: *mut c_uint) -> nvmlReturn_t {
    with_gpu(device, "power", |s, i| out!(power, s.scenario.gpus[i].power_mw))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetEnforcedPowerLimit(device: nvmlDevice_t, limit: *mut c_uint) -> nvmlReturn_t {
    with_gpu(device, "power", |s, i| out!(limit, s.scenario.gpus[i].power_limit_mw))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTotalEnergyConsumption(
    device: nvmlDevice_t,
    energy: *mut c_ulonglong,
) -> nvmlReturn_t {
    with_gpu(device, "energy", |s, i| {
        let g = &s.scenario.gpus[i];
        let elapsed_ms = s.started.elapsed().as_millis() as u64;
        // mW × ms / 1000 = mJ
        out!(energy, g.energy_mj + g.power_mw as u64 * elapsed_ms / 1000)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    device: nvmlDevice_t,
    clock: nvmlClockType_t,
    mhz: *mut c_uint,
) -> nvmlReturn_t {
    with_gpu(device, "clocks", |s, i| {
        let g = &s.scenario.gpus[i];
        let v = match clock {
            nvmlClockType_enum_NVML_CLOCK_SM | nvmlClockType_enum_NVML_CLOCK_GRAPHICS => g.sm_clock_mhz,
            nvmlClockType_enum_NVML_CLOCK_MEM => g.mem_clock_mhz,
            _ => return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED,
        };
        out!(mhz, v)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetEccMode(
    device: nvmlDevice_t,
    current: *mut nvmlEnableState_t,
    pending: *mut nvmlEnableState_t,
) -> nvmlReturn_t {
    with_gpu(device, "ecc", |s, i| {
        let v = if s.scenario.gpus[i].ecc_enabled {
            nvmlEnableState_enum_NVML_FEATURE_ENABLED
        } else {
            nvmlEnableState_enum_NVML_FEATURE_DISABLED
        };
        if pending.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        unsafe { *pending = v };
        out!(current, v)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: nvmlDevice_t,
    error_type: nvmlMemoryErrorType_t,
    counter_type: nvmlEccCounterType_t,
    count: *mut c_ulonglong,
) -> nvmlReturn_t {
    with_gpu(device, "ecc", |s, i| {
        let g = &s.scenario.gpus[i];
        if !g.ecc_enabled {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        }
        let e = &g.ecc;
        let v = match (error_type, counter_type) {
            (nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_CORRECTED, nvmlEccCounterType_enum_NVML_VOLATILE_ECC) => {
                e.volatile_corrected
            }
            (
                nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                nvmlEccCounterType_enum_NVML_VOLATILE_ECC,
            ) => e.volatile_uncorrected,
            (nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_CORRECTED, nvmlEccCounterType_enum_NVML_AGGREGATE_ECC) => {
                e.aggregate_corrected
            }
            (
                nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                nvmlEccCounterType_enum_NVML_AGGREGATE_ECC,
            ) => e.aggregate_uncorrected,
            _ => return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
        };
        out!(count, v)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    with_gpu(device, "processes", |s, i| {
        if count.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        let procs: Vec<nvmlProcessInfo_t> = s.scenario.gpus[i]
            .processes
            .iter()
            .filter_map(|p| {
                let pid = match (&p.spawn, p.pid) {
                    (Some(name), _) => s.children.get(name)?.id(),
                    (None, Some(pid)) => pid,
                    (None, None) => return None,
                };
                Some(nvmlProcessInfo_t {
                    pid,
                    usedGpuMemory: p.used_memory_mib * MIB,
                    gpuInstanceId: u32::MAX,
                    computeInstanceId: u32::MAX,
                })
            })
            .collect();
        let room = unsafe { *count } as usize;
        unsafe { *count = procs.len() as c_uint };
        if room < procs.len() {
            return nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE;
        }
        if !procs.is_empty() {
            if infos.is_null() {
                return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
            }
            unsafe { std::ptr::copy_nonoverlapping(procs.as_ptr(), infos, procs.len()) };
        }
        nvmlReturn_enum_NVML_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigMode(
    device: nvmlDevice_t,
    current: *mut c_uint,
    pending: *mut c_uint,
) -> nvmlReturn_t {
    with_gpu(device, "mig", |s, i| {
        let v = if s.scenario.gpus[i].mig_enabled { NVML_DEVICE_MIG_ENABLE } else { NVML_DEVICE_MIG_DISABLE };
        if pending.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        unsafe { *pending = v };
        out!(current, v)
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksThrottleReasons(
    device: nvmlDevice_t,
    reasons: *mut c_ulonglong,
) -> nvmlReturn_t {
    with_gpu(device, "throttle", |s, i| out!(reasons, s.scenario.gpus[i].throttle_reasons))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetNumFans(device: nvmlDevice_t, n: *mut c_uint) -> nvmlReturn_t {
    with_gpu(device, "fan", |s, i| out!(n, s.scenario.gpus[i].fans.len() as c_uint))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetFanSpeed_v2(
    device: nvmlDevice_t,
    fan: c_uint,
    speed: *mut c_uint,
) -> nvmlReturn_t {
    with_gpu(device, "fan", |s, i| match s.scenario.gpus[i].fans.get(fan as usize) {
        Some(v) => out!(speed, *v),
        None => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
    })
}

/// An event set: the GPUs registered for XID events.
struct EventSet {
    devices: Vec<usize>,
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetCreate(set: *mut nvmlEventSet_t) -> nvmlReturn_t {
    if state().is_none() {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    }
    out!(set, Box::into_raw(Box::new(EventSet { devices: Vec::new() })) as nvmlEventSet_t)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceRegisterEvents(
    device: nvmlDevice_t,
    types: c_ulonglong,
    set: nvmlEventSet_t,
) -> nvmlReturn_t {
    with_gpu(device, "events", |_, i| {
        if set.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        if types & !(nvmlEventTypeXidCriticalError as u64) != 0 {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        }
        let set = unsafe { &mut *(set as *mut EventSet) };
        set.devices.push(i);
        nvmlReturn_enum_NVML_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetWait_v2(
    set: nvmlEventSet_t,
    data: *mut nvmlEventData_t,
    timeout_ms: c_uint,
) -> nvmlReturn_t {
    if set.is_null() || data.is_null() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    let devices = unsafe { &*(set as *const EventSet) }.devices.clone();
    {
        let mut g = state();
        let Some(s) = g.as_mut() else {
            return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
        };
        for i in devices {
            if let Some(code) = s.pending_xid[i].pop_front() {
                unsafe {
                    *data = std::mem::zeroed();
                    (*data).device = handle_of(i);
                    (*data).eventType = nvmlEventTypeXidCriticalError as u64;
                    (*data).eventData = code;
                    (*data).gpuInstanceId = u32::MAX;
                    (*data).computeInstanceId = u32::MAX;
                }
                return nvmlReturn_enum_NVML_SUCCESS;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(timeout_ms.min(60_000) as u64));
    nvmlReturn_enum_NVML_ERROR_TIMEOUT
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlEventSetFree(set: nvmlEventSet_t) -> nvmlReturn_t {
    if set.is_null() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    drop(unsafe { Box::from_raw(set as *mut EventSet) });
    nvmlReturn_enum_NVML_SUCCESS
}

/// GPM is not offered by this fake; the symbol exists because nvml-wrapper
/// panics on drop of a sample if it is missing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleFree(_sample: nvmlGpmSample_t) -> nvmlReturn_t {
    nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED
}

/// Compile-time proof that every exported function has exactly the signature
/// nvml-wrapper-sys expects (a fn item coerces to a fn pointer only then).
#[allow(dead_code, unused_assignments)]
mod signatures {
    use super::*;
    macro_rules! same_signature {
        ($lib:ident: $($f:ident),* $(,)?) => {
            $( if let Ok(mut p) = $lib.$f { p = super::$f; let _ = p; } )*
        };
    }
    fn check(lib: NvmlLib) {
        same_signature!(lib:
            nvmlInit_v2, nvmlShutdown, nvmlSystemGetDriverVersion, nvmlSystemGetCudaDriverVersion_v2,
            nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetName, nvmlDeviceGetUUID,
            nvmlDeviceGetPciInfo_v3, nvmlDeviceGetMinorNumber, nvmlDeviceGetUtilizationRates,
            nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetTemperature, nvmlDeviceGetPowerUsage,
            nvmlDeviceGetEnforcedPowerLimit, nvmlDeviceGetTotalEnergyConsumption, nvmlDeviceGetClockInfo,
            nvmlDeviceGetEccMode, nvmlDeviceGetTotalEccErrors, nvmlDeviceGetComputeRunningProcesses_v3,
            nvmlDeviceGetMigMode, nvmlDeviceGetCurrentClocksThrottleReasons, nvmlDeviceGetNumFans,
            nvmlDeviceGetFanSpeed_v2, nvmlEventSetCreate, nvmlDeviceRegisterEvents, nvmlEventSetWait_v2,
            nvmlEventSetFree, nvmlGpmSampleFree,
        );
    }
}
