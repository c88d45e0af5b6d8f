//! Per-GPU queries: identity, utilisation, memory, power, clocks, ECC, processes.
//! Identity, memory and processes also answer for MIG device handles.

use crate::scenario::{GpuProcess, MIB};
use crate::{Dev, State, handle_of, index_of, state, with_device, with_gpu, write_cstr};
use nvml_wrapper_sys::bindings::*;
use std::ffi::{c_char, c_int, c_uint, c_ulonglong};

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
    with_device(device, "uuid", |s, d| {
        let id = match d {
            Dev::Gpu(i) => &s.scenario.gpus[i].uuid,
            Dev::Mig(i, m) => &s.scenario.gpus[i].mig_devices[m].uuid,
        };
        unsafe { write_cstr(id, uuid, length) }
    })
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
    with_device(device, "memory", |s, d| {
        if m.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        // NVML_STRUCT_VERSION(Memory, 2)
        let want = (std::mem::size_of::<nvmlMemory_v2_t>() | (2 << 24)) as c_uint;
        if unsafe { (*m).version } != want {
            return nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        }
        // A MIG device has the memory of its GPU instance's profile.
        let (total_mib, used_mib, reserved) = match d {
            Dev::Gpu(i) => {
                let g = &s.scenario.gpus[i];
                (g.memory_total_mib, g.memory_used_mib, 512 * MIB)
            }
            Dev::Mig(i, k) => {
                let mig = &s.scenario.gpus[i].mig_devices[k];
                (mig.profile().memory_mib, mig.memory_used_mib, 0)
            }
        };
        let total = total_mib * MIB;
        let used = (used_mib * MIB).min(total);
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

/// NVML's records of a scenario's GPU processes (the started ones by their real pid).
fn process_infos(s: &State, procs: &[GpuProcess], gi: u32, ci: u32) -> Vec<nvmlProcessInfo_t> {
    procs
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
                gpuInstanceId: gi,
                computeInstanceId: ci,
            })
        })
        .collect()
}

/// A GPU lists its own processes (GPU and compute instance ids unset) and, in
/// MIG mode, every MIG device's with their ids, as NVML does for a caller with
/// the privileges to see them; a MIG device lists its own.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    with_device(device, "processes", |s, d| {
        if count.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        let procs = match d {
            Dev::Gpu(i) => {
                let g = &s.scenario.gpus[i];
                let mut all = process_infos(s, &g.processes, u32::MAX, u32::MAX);
                for m in g.mig_devices.iter().filter(|_| g.mig_enabled) {
                    all.extend(process_infos(s, &m.processes, m.gpu_instance_id, m.compute_instance_id));
                }
                all
            }
            Dev::Mig(i, k) => {
                let m = &s.scenario.gpus[i].mig_devices[k];
                process_infos(s, &m.processes, m.gpu_instance_id, m.compute_instance_id)
            }
        };
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

/// The scenario's `compute_capability` ("9.0"); NOT_SUPPORTED when it gives none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCudaComputeCapability(
    device: nvmlDevice_t,
    major: *mut c_int,
    minor: *mut c_int,
) -> nvmlReturn_t {
    with_gpu(device, "compute_capability", |s, i| {
        let cc = s.scenario.gpus[i].compute_capability.as_deref().and_then(crate::scenario::parse_cc);
        let Some((a, b)) = cc else {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        };
        if minor.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        unsafe { *minor = b as c_int };
        out!(major, a as c_int)
    })
}
