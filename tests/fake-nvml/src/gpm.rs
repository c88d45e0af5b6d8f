//! GPM (GPU Performance Monitoring, Hopper and later).
//!
//! NVML's GPM samples are snapshots of activity counters; `nvmlGpmMetricsGet`
//! turns two of them into the mean activity between them. The fake keeps, per
//! metric, a counter of *active time*: a GPU (or MIG GPU instance) configured
//! at `p` percent has been active `p / 100 × t` seconds at `t` seconds after
//! init. A sample records `t` and those counters; a metric from two samples is
//!
//! ```text
//! 100 × (active₂ − active₁) / (t₂ − t₁) = p
//! ```
//!
//! so the agent reads back the scenario's percentages (within floating-point
//! rounding), whatever its interval. NVML wants samples more than 100 ms
//! apart; the fake refuses closer ones with INVALID_ARGUMENT, and says so on
//! stderr, so that an agent that forgets it fails a test. Metric names (`metricInfo`) are left null.

use crate::scenario::{FakeGpu, GpmSpec};
use crate::{state, with_gpu};
use nvml_wrapper_sys::bindings::*;
use std::ffi::c_uint;
use std::time::Duration;

/// Shortest time between two samples that NVML computes metrics from.
const MIN_GAP: Duration = Duration::from_millis(100);

/// Reads one percentage of a scenario's GPM values.
type Value = fn(&GpmSpec) -> Option<f64>;

/// The metrics the fake computes, and the scenario value behind each.
const METRICS: [(c_uint, Value); 5] = [
    (nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_UTIL, |g| g.sm_active_pct),
    (nvmlGpmMetricId_t_NVML_GPM_METRIC_SM_OCCUPANCY, |g| g.sm_occupancy_pct),
    (nvmlGpmMetricId_t_NVML_GPM_METRIC_ANY_TENSOR_UTIL, |g| g.tensor_active_pct),
    (nvmlGpmMetricId_t_NVML_GPM_METRIC_DRAM_BW_UTIL, |g| g.dram_active_pct),
    (nvmlGpmMetricId_t_NVML_GPM_METRIC_FP64_UTIL, |g| g.fp64_active_pct),
];

/// What an `nvmlGpmSample_t` points to.
#[derive(Default)]
struct Sample {
    taken: Option<Taken>,
}

struct Taken {
    gpu: usize,
    /// GPU instance of a MIG sample.
    gpu_instance: Option<u32>,
    /// Time since init.
    at: Duration,
    /// Active seconds per metric of [`METRICS`] (None: metric not offered).
    active: [Option<f64>; METRICS.len()],
}

/// GPM is supported when the scenario gives GPM values for the GPU or one of its MIG devices.
fn supports(g: &FakeGpu) -> bool {
    g.gpm.is_some() || g.mig_devices.iter().any(|m| m.gpm.is_some())
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmQueryDeviceSupport(
    device: nvmlDevice_t,
    support: *mut nvmlGpmSupport_t,
) -> nvmlReturn_t {
    with_gpu(device, "gpm", |s, i| {
        if support.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        if unsafe { (*support).version } != NVML_GPM_SUPPORT_VERSION {
            return nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        }
        unsafe { (*support).isSupportedDevice = supports(&s.scenario.gpus[i]) as c_uint };
        nvmlReturn_enum_NVML_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleAlloc(sample: *mut nvmlGpmSample_t) -> nvmlReturn_t {
    if state().is_none() {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    }
    out!(sample, Box::into_raw(Box::new(Sample::default())) as nvmlGpmSample_t)
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleFree(sample: nvmlGpmSample_t) -> nvmlReturn_t {
    if sample.is_null() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    drop(unsafe { Box::from_raw(sample as *mut Sample) });
    nvmlReturn_enum_NVML_SUCCESS
}

/// Fills `sample` with the counters of `spec` now.
fn take(sample: nvmlGpmSample_t, gpu: usize, gpu_instance: Option<u32>, at: Duration, spec: &GpmSpec) {
    let t = at.as_secs_f64();
    let active = METRICS.map(|(_, value)| value(spec).map(|p| p / 100.0 * t));
    unsafe { (*(sample as *mut Sample)).taken = Some(Taken { gpu, gpu_instance, at, active }) };
}

/// A whole-GPU sample; NOT_SUPPORTED for a GPU without GPU-level values (a
/// GPU in MIG mode whose scenario gives values per MIG device only).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmSampleGet(device: nvmlDevice_t, sample: nvmlGpmSample_t) -> nvmlReturn_t {
    with_gpu(device, "gpm", |s, i| {
        if sample.is_null() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        let Some(spec) = &s.scenario.gpus[i].gpm else {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        };
        take(sample, i, None, s.started.elapsed(), spec);
        nvmlReturn_enum_NVML_SUCCESS
    })
}

/// A sample of one MIG GPU instance: the values of the first MIG device of
/// that GPU instance that gives some.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMigSampleGet(
    device: nvmlDevice_t,
    gpu_instance_id: c_uint,
    sample: nvmlGpmSample_t,
) -> nvmlReturn_t {
    with_gpu(device, "gpm", |s, i| {
        let g = &s.scenario.gpus[i];
        if !g.mig_enabled || !supports(g) {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        }
        let mut gi = g.mig_devices.iter().filter(|m| m.gpu_instance_id == gpu_instance_id).peekable();
        if sample.is_null() || gi.peek().is_none() {
            return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
        }
        let Some(spec) = gi.find_map(|m| m.gpm.as_ref()) else {
            return nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
        };
        take(sample, i, Some(gpu_instance_id), s.started.elapsed(), spec);
        nvmlReturn_enum_NVML_SUCCESS
    })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlGpmMetricsGet(request: *mut nvmlGpmMetricsGet_t) -> nvmlReturn_t {
    if state().is_none() {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    }
    if request.is_null() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    let r = unsafe { &mut *request };
    if r.version != NVML_GPM_METRICS_GET_VERSION {
        return nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    }
    if r.sample1.is_null() || r.sample2.is_null() || r.numMetrics as usize > r.metrics.len() {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    let (a, b) = unsafe { (&*(r.sample1 as *const Sample), &*(r.sample2 as *const Sample)) };
    let (Some(a), Some(b)) = (&a.taken, &b.taken) else {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    };
    // Two samples of the same GPU (or GPU instance), the second at least MIN_GAP later.
    if (a.gpu, a.gpu_instance) != (b.gpu, b.gpu_instance) {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    if b.at < a.at + MIN_GAP {
        eprintln!("fake-nvml: nvmlGpmMetricsGet on samples {:?} apart (NVML wants more than 100 ms)", b.at - a.at);
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    }
    let dt = (b.at - a.at).as_secs_f64();
    for m in &mut r.metrics[..r.numMetrics as usize] {
        let k = METRICS.iter().position(|(id, _)| *id == m.metricId);
        m.metricInfo = unsafe { std::mem::zeroed() };
        match k.and_then(|k| Some((a.active[k]?, b.active[k]?))) {
            Some((x, y)) => {
                m.value = 100.0 * (y - x) / dt;
                m.nvmlReturn = nvmlReturn_enum_NVML_SUCCESS;
            }
            None => {
                m.value = 0.0;
                m.nvmlReturn = nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED;
            }
        }
    }
    nvmlReturn_enum_NVML_SUCCESS
}
