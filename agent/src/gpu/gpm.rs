//! GPM (GPU Performance Monitoring, Hopper and later): SM, tensor, DRAM and
//! FP64 activity as means over the report interval.
//!
//! NVML's GPM counts activity; a metric is computed from two samples taken at
//! different times. The agent keeps the previous sample of each GPU (and of
//! each MIG GPU instance) and, at each report, takes a new one and asks
//! `nvmlGpmMetricsGet` once for all five metrics between the two: each value
//! is then the mean over the time between the previous report and this one.
//! The first report of a GPU only takes its baseline sample and carries no
//! GPM; `jazari-agent once` takes the baselines before it waits for the host's
//! CPU measure ([`super::GpuSource::prime`]), so its one report has them.
//!
//! Metric ids (NVML `nvmlGpmMetricId_t`):
//!
//! | field               | metric                          | id |
//! |---------------------|---------------------------------|----|
//! | `sm_active_pct`     | `NVML_GPM_METRIC_SM_UTIL`        | 2  |
//! | `sm_occupancy_pct`  | `NVML_GPM_METRIC_SM_OCCUPANCY`   | 3  |
//! | `tensor_active_pct` | `NVML_GPM_METRIC_ANY_TENSOR_UTIL`| 5  |
//! | `dram_active_pct`   | `NVML_GPM_METRIC_DRAM_BW_UTIL`   | 10 |
//! | `fp64_active_pct`   | `NVML_GPM_METRIC_FP64_UTIL`      | 11 |
//!
//! SM_UTIL is the share of time each SM had at least one warp assigned,
//! averaged over the SMs (DCGM's SM_ACTIVE); GRAPHICS_UTIL (id 1) would be the
//! graphics engine's busy time, close to NVML's utilisation and not what this
//! field is for. ANY_TENSOR_UTIL counts every tensor pipe (HMMA, IMMA, DFMA),
//! so an FP8/INT8 or FP64-tensor job is not shown idle.

use super::Lost;
use jazari_wire::Gpm;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::gpm_metrics_get;
use nvml_wrapper::{Device, GpmSample};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// NVML computes metrics only from samples more than 100 ms apart (its
/// counters refresh at that rate, says its documentation).
pub const MIN_GAP: Duration = Duration::from_millis(100);

/// The metrics asked for, in the order of [`to_gpm`].
const METRICS: [GpmMetricId; 5] = [
    GpmMetricId::SmUtil,
    GpmMetricId::SmOccupancy,
    GpmMetricId::AnyTensorUtil,
    GpmMetricId::DramBwUtil,
    GpmMetricId::Fp64Util,
];

/// A whole GPU (`None`) or one of its MIG GPU instances, by NVML index.
type Key = (u32, Option<u32>);

struct Prev {
    sample: GpmSample<'static>,
    at: Instant,
}

/// GPM values of one GPU for one report.
#[derive(Debug, Default)]
pub struct GpmRead {
    pub gpu: Option<Gpm>,
    /// Per GPU instance id.
    pub instances: HashMap<u32, Gpm>,
}

/// Per GPU: whether it has GPM, and the previous samples.
#[derive(Default)]
pub struct GpmState {
    support: HashMap<u32, bool>,
    prev: HashMap<Key, Prev>,
}

impl GpmState {
    /// Samples the GPU and each of the given MIG GPU instances, and computes
    /// the values since the previous samples. GPM absent on the GPU leaves
    /// everything absent; a lost GPU stops the read.
    pub fn read(&mut self, index: u32, device: &Device<'static>, instances: &[u32]) -> Result<GpmRead, Lost> {
        let mut out = GpmRead::default();
        if !self.supported(index, device)? {
            return Ok(out);
        }
        out.gpu = self.step((index, None), device, || device.gpm_sample())?;
        // Compute instances of one GPU instance share its GPM: sample it once.
        let mut seen = Vec::with_capacity(instances.len());
        for &gi in instances {
            if seen.contains(&gi) {
                continue;
            }
            seen.push(gi);
            if let Some(v) = self.step((index, Some(gi)), device, || device.gpm_mig_sample(gi))? {
                out.instances.insert(gi, v);
            }
        }
        // Forget GPU instances that are gone (the GPU was repartitioned).
        self.prev.retain(|(i, gi), _| *i != index || gi.is_none_or(|g| instances.contains(&g)));
        Ok(out)
    }

    /// Whether the GPU has a sample to compare the next one against.
    pub fn has_samples(&self, index: u32) -> bool {
        self.prev.keys().any(|(i, _)| *i == index)
    }

    /// Forgets a GPU's samples (it was lost).
    pub fn forget(&mut self, index: u32) {
        self.prev.retain(|(i, _), _| *i != index);
    }

    fn supported(&mut self, index: u32, device: &Device<'static>) -> Result<bool, Lost> {
        if let Some(s) = self.support.get(&index) {
            return Ok(*s);
        }
        match device.gpm_support() {
            Ok(s) => {
                if s {
                    tracing::debug!(index, "GPU supports GPM");
                }
                self.support.insert(index, s);
                Ok(s)
            }
            Err(NvmlError::GpuLost) => Err(Lost),
            Err(e @ (NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_))) => {
                tracing::debug!(index, "no GPM: {e}");
                self.support.insert(index, false);
                Ok(false)
            }
            // Something passing: ask again at the next report.
            Err(_) => Ok(false),
        }
    }

    /// Takes a new sample for `key` and computes the metrics since the
    /// previous one, which it replaces.
    fn step(
        &mut self,
        key: Key,
        device: &Device<'static>,
        take: impl FnOnce() -> Result<GpmSample<'static>, NvmlError>,
    ) -> Result<Option<Gpm>, Lost> {
        let prev = self.prev.remove(&key);
        // Measured before the new sample is taken, so NVML's own gap is at least this.
        let gap = prev.as_ref().map(|p| p.at.elapsed());
        let sample = match take() {
            Ok(s) => s,
            Err(NvmlError::GpuLost) => return Err(Lost),
            Err(e) => {
                tracing::debug!(index = key.0, gpu_instance = ?key.1, "no GPM sample: {e}");
                return Ok(None);
            }
        };
        let value = match (prev, gap) {
            // The previous sample is too recent for NVML (a report less than
            // 100 ms after the previous one, as right after start): this
            // report carries no GPM, and the new sample becomes the baseline
            // of the next, so each value still covers exactly one report.
            (Some(p), Some(gap)) if gap > MIN_GAP => metrics(device, &p.sample, &sample)?,
            _ => None,
        };
        self.prev.insert(key, Prev { sample, at: Instant::now() });
        Ok(value)
    }
}

/// One `nvmlGpmMetricsGet` for the five metrics between two samples.
fn metrics(device: &Device<'static>, a: &GpmSample<'static>, b: &GpmSample<'static>) -> Result<Option<Gpm>, Lost> {
    match gpm_metrics_get(device.nvml(), a, b, &METRICS) {
        Ok(results) => {
            let values: Vec<Option<f64>> = results.into_iter().map(|r| r.ok().and_then(|m| pct(m.value))).collect();
            Ok(to_gpm(&values))
        }
        Err(NvmlError::GpuLost) => Err(Lost),
        Err(e) => {
            tracing::debug!("GPM metrics failed: {e}");
            Ok(None)
        }
    }
}

/// A percentage for the wire: finite, within 0..100 (NVML's ratios can
/// overshoot by rounding), two decimals.
fn pct(v: f64) -> Option<f64> {
    v.is_finite().then(|| (v.clamp(0.0, 100.0) * 100.0).round() / 100.0)
}

/// Values in the order of [`METRICS`]; `None` when NVML gave none of them.
fn to_gpm(v: &[Option<f64>]) -> Option<Gpm> {
    let at = |i: usize| v.get(i).copied().flatten();
    let g = Gpm {
        sm_active_pct: at(0),
        sm_occupancy_pct: at(1),
        tensor_active_pct: at(2),
        dram_active_pct: at(3),
        fp64_active_pct: at(4),
    };
    (g != Gpm::default()).then_some(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_clamped_rounded_and_finite() {
        assert_eq!(pct(18.000000001), Some(18.0));
        assert_eq!(pct(100.0000001), Some(100.0));
        assert_eq!(pct(-0.0001), Some(0.0));
        assert_eq!(pct(42.456), Some(42.46));
        assert_eq!(pct(f64::NAN), None);
        assert_eq!(pct(f64::INFINITY), None);
    }

    #[test]
    fn no_value_at_all_is_absent_not_zero() {
        assert_eq!(to_gpm(&[None; 5]), None);
        let g = to_gpm(&[Some(18.0), None, Some(0.0), None, None]).unwrap();
        assert_eq!(g.sm_active_pct, Some(18.0));
        assert_eq!(g.tensor_active_pct, Some(0.0), "a measured zero stays zero");
        assert_eq!(g.sm_occupancy_pct, None);
    }
}
