//! MIG devices of a GPU in MIG mode: handles by index, identity (GPU and
//! compute instance ids) and attributes. Their UUID, memory and processes
//! answer through the [`crate::device`] functions, which take MIG handles too.

use crate::scenario::MAX_MIG_DEVICES;
use crate::{Dev, handle_of, mig_handle_of, with_device, with_gpu};
use nvml_wrapper_sys::bindings::*;
use std::ffi::c_uint;

/// The most MIG devices the GPU can hold (7, as on A100, H100 and H200).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(device: nvmlDevice_t, count: *mut c_uint) -> nvmlReturn_t {
    with_gpu(device, "mig", |_, _| out!(count, MAX_MIG_DEVICES as c_uint))
}

/// MIG device `index` (0..max count): NOT_FOUND for a slot that holds none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig_device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    with_gpu(device, "mig", |s, i| {
        let g = &s.scenario.gpus[i];
        let k = index as usize;
        if !g.mig_enabled {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        }
        if k >= MAX_MIG_DEVICES {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        if k >= g.mig_devices.len() {
            return nvmlReturn_enum_NVML_ERROR_NOT_FOUND;
        }
        out!(mig_device, mig_handle_of(i, k))
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceIsMigDeviceHandle(device: nvmlDevice_t, is_mig: *mut c_uint) -> nvmlReturn_t {
    with_device(device, "mig", |_, d| out!(is_mig, matches!(d, Dev::Mig(..)) as c_uint))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
    mig_device: nvmlDevice_t,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    with_device(mig_device, "mig", |_, d| match d {
        Dev::Mig(i, _) => out!(device, handle_of(i)),
        Dev::Gpu(_) => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetGpuInstanceId(device: nvmlDevice_t, id: *mut c_uint) -> nvmlReturn_t {
    with_device(device, "mig", |s, d| match d {
        Dev::Mig(i, k) => out!(id, s.scenario.gpus[i].mig_devices[k].gpu_instance_id),
        Dev::Gpu(_) => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeInstanceId(device: nvmlDevice_t, id: *mut c_uint) -> nvmlReturn_t {
    with_device(device, "mig", |s, d| match d {
        Dev::Mig(i, k) => out!(id, s.scenario.gpus[i].mig_devices[k].compute_instance_id),
        Dev::Gpu(_) => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
    })
}

/// Attributes of a MIG device, from its GPU instance profile; like NVML, only
/// MIG device handles are supported.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetAttributes_v2(
    device: nvmlDevice_t,
    attributes: *mut nvmlDeviceAttributes_t,
) -> nvmlReturn_t {
    with_device(device, "mig", |s, d| {
        let Dev::Mig(i, k) = d else {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        };
        let m = &s.scenario.gpus[i].mig_devices[k];
        let p = m.profile();
        let ci_slices = m.compute_instance_slices.unwrap_or(p.slices);
        out!(
            attributes,
            nvmlDeviceAttributes_t {
                // A smaller compute instance has its share of the GPU instance's SMs.
                multiprocessorCount: p.sms * ci_slices / p.slices,
                sharedCopyEngineCount: p.copy_engines,
                sharedDecoderCount: p.decoders,
                sharedEncoderCount: 0,
                sharedJpegCount: p.jpegs,
                sharedOfaCount: p.ofas,
                gpuInstanceSliceCount: p.slices,
                computeInstanceSliceCount: ci_slices,
                memorySizeMB: p.memory_mib,
            }
        )
    })
}
