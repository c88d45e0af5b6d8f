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
//! - [`scenario`]: the scenario file and its checks;
//! - [`device`]: per-GPU queries (identity, utilisation, memory, power, processes…);
//! - [`mig`]: MIG devices (slices) of a GPU in MIG mode;
//! - [`gpm`]: GPM samples and the metrics computed from two of them;
//! - [`events`]: XID events.
//!
//! See `scenarios/README.md` for the scenario format.

#![allow(non_snake_case, non_upper_case_globals, clippy::missing_safety_doc)]

use nvml_wrapper_sys::bindings::*;
use scenario::{Scenario, SpawnSpec, load_scenario};
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{c_char, c_int, c_uint};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Writes `$val` through `$ptr`, or answers INVALID_ARGUMENT for a null pointer.
macro_rules! out {
    ($ptr:expr, $val:expr) => {{
        if $ptr.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        unsafe { *$ptr = $val };
        nvmlReturn_enum_NVML_SUCCESS
    }};
}

mod device;
mod events;
mod gpm;
mod mig;
mod scenario;
mod signatures;

pub(crate) struct State {
    pub(crate) scenario: Scenario,
    /// When the library was initialised: the fake's clock (energy, GPM counters).
    pub(crate) started: Instant,
    init_count: u32,
    /// Utilisation reads per GPU (one per agent sample).
    pub(crate) samples: Vec<u32>,
    pub(crate) children: BTreeMap<String, Child>,
    pub(crate) pending_xid: Vec<VecDeque<u64>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

pub(crate) fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
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

pub(crate) unsafe fn write_cstr(s: &str, buf: *mut c_char, len: c_uint) -> nvmlReturn_t {
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

/// Device handles: GPU `i` is `i + 1`; MIG device `m` of GPU `i` is
/// `MIG_HANDLE × (i + 1) + m + 1`, which no GPU-only function accepts.
const MIG_HANDLE: usize = 0x1_0000;

/// What a device handle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dev {
    Gpu(usize),
    /// GPU index, MIG device index.
    Mig(usize, usize),
}

pub(crate) fn handle_of(index: usize) -> nvmlDevice_t {
    (index + 1) as nvmlDevice_t
}

pub(crate) fn mig_handle_of(index: usize, mig: usize) -> nvmlDevice_t {
    (MIG_HANDLE * (index + 1) + mig + 1) as nvmlDevice_t
}

/// The GPU behind a GPU handle (out of range for anything else).
pub(crate) fn index_of(device: nvmlDevice_t) -> usize {
    (device as usize).wrapping_sub(1)
}

fn resolve(s: &State, device: nvmlDevice_t) -> Option<Dev> {
    let v = device as usize;
    if v >= MIG_HANDLE {
        let (i, m) = ((v / MIG_HANDLE).checked_sub(1)?, (v % MIG_HANDLE).checked_sub(1)?);
        let g = s.scenario.gpus.get(i)?;
        (g.mig_enabled && m < g.mig_devices.len()).then_some(Dev::Mig(i, m))
    } else {
        let i = v.checked_sub(1)?;
        (i < s.scenario.gpus.len()).then_some(Dev::Gpu(i))
    }
}

fn is_lost(s: &State, i: usize) -> bool {
    let g = &s.scenario.gpus[i];
    g.lost || g.lost_after_samples.is_some_and(|n| s.samples[i] > n)
}

/// Runs `f` on the GPU behind `device` after the common checks:
/// initialised, valid GPU handle, not lost, function group supported.
pub(crate) fn with_gpu(
    device: nvmlDevice_t,
    group: &str,
    f: impl FnOnce(&mut State, usize) -> nvmlReturn_t,
) -> nvmlReturn_t {
    with_device(device, group, |s, d| match d {
        Dev::Gpu(i) => f(s, i),
        Dev::Mig(..) => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
    })
}

/// Like [`with_gpu`], for functions that take a GPU or a MIG device handle;
/// a MIG device is lost with its GPU and shares its unsupported groups.
pub(crate) fn with_device(
    device: nvmlDevice_t,
    group: &str,
    f: impl FnOnce(&mut State, Dev) -> nvmlReturn_t,
) -> nvmlReturn_t {
    let mut g = state();
    let Some(s) = g.as_mut() else {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    };
    let Some(d) = resolve(s, device) else {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    };
    let (Dev::Gpu(i) | Dev::Mig(i, _)) = d;
    if is_lost(s, i) {
        return nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST;
    }
    if s.scenario.gpus[i].unsupported.iter().any(|u| u == group) {
        return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
    }
    f(s, d)
}
