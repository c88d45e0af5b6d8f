//! XID events: an event set holds the GPUs registered on it; a wait hands out
//! the scenario's pending XID codes, then times out.

use crate::{handle_of, state, with_gpu};
use nvml_wrapper_sys::bindings::*;
use std::ffi::{c_uint, c_ulonglong};
use std::time::Duration;

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
