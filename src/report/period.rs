//! The report's period and the figures' arithmetic.

use super::{Figures, ReportPeriod};
use crate::accounting::Amounts;
use crate::time::format_date;

const DAY: i64 = 86_400;

impl ReportPeriod {
    /// `2026`, `2026-Q1` or `2026-03`.
    pub fn named(s: &str) -> Result<Self, String> {
        let p = crate::quota::parse_period(s)?;
        Ok(Self::new(p.label, p.start_ms / 1000, p.end_ms / 1000))
    }

    /// From a first day to a last day (inclusive), both `YYYY-MM-DD`.
    pub fn dates(from: &str, to: &str) -> Result<Self, String> {
        let f = crate::time::parse_instant(from).map_err(|e| format!("--from: {e}"))? / 1000;
        let t = crate::time::parse_instant(to).map_err(|e| format!("--to: {e}"))? / 1000;
        let (f, t) = (f.div_euclid(DAY) * DAY, t.div_euclid(DAY) * DAY + DAY);
        if t <= f {
            return Err(format!("the period is empty or inverted: --from {from} is after --to {to}"));
        }
        Ok(Self::new(format!("{}..{}", format_date(f * 1000), format_date((t - DAY) * 1000)), f, t))
    }

    fn new(label: String, start_s: i64, end_s: i64) -> Self {
        Self {
            label,
            first_day: format_date(start_s * 1000),
            last_day: format_date((end_s - DAY) * 1000),
            start_s,
            end_s,
        }
    }

    pub fn days(&self) -> i64 {
        (self.end_s - self.start_s) / DAY
    }
}

impl Figures {
    pub(crate) fn add(&mut self, a: &Amounts) {
        self.capacity_gpu_hours += a.capacity_s / 3600.0;
        self.allocated_gpu_hours += a.allocated_s / 3600.0;
        self.utilised_gpu_hours += a.busy_s / 3600.0;
        self.idle_allocated_gpu_hours += a.idle_allocated_s / 3600.0;
        self.unscheduled_gpu_hours += a.unscheduled_s / 3600.0;
        self.energy_kwh += a.energy_j / 3.6e6;
        self.gpm_measured_gpu_hours += a.gpm_s / 3600.0;
        self.sm_active_gpu_hours += a.sm_active_s / 3600.0;
        self.tensor_active_gpu_hours += a.tensor_active_s / 3600.0;
    }

    /// Utilised over allocated GPU-hours (NVML utilisation: the share of time a kernel ran).
    pub fn efficiency_pct(&self) -> Option<f64> {
        (self.allocated_gpu_hours > 0.0).then(|| self.utilised_gpu_hours / self.allocated_gpu_hours * 100.0)
    }

    /// SM active over the allocated GPU-hours that measured it (GPM); none without GPM.
    pub fn sm_active_pct(&self) -> Option<f64> {
        (self.gpm_measured_gpu_hours > 0.0).then(|| self.sm_active_gpu_hours / self.gpm_measured_gpu_hours * 100.0)
    }

    /// Tensor pipes active over the allocated GPU-hours that measured it (GPM).
    pub fn tensor_active_pct(&self) -> Option<f64> {
        (self.gpm_measured_gpu_hours > 0.0).then(|| self.tensor_active_gpu_hours / self.gpm_measured_gpu_hours * 100.0)
    }

    /// The share of allocated GPU-hours that measured GPM activity, percent.
    pub fn gpm_coverage_pct(&self) -> Option<f64> {
        (self.allocated_gpu_hours > 0.0).then(|| self.gpm_measured_gpu_hours / self.allocated_gpu_hours * 100.0)
    }
}
