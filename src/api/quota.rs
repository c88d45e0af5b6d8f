//! Quotas: the burn-down of each institute (`/api/v1/quotas`).

use serde::{Deserialize, Serialize};

/// A period [start, end) in UTC milliseconds, with a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub label: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Breakdown {
    pub key: String,
    pub used_gpu_hours: f64,
    pub granted_gpu_hours: Option<f64>,
    pub share_pct: Option<f64>,
}

/// The burn-down of one institute at one instant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BurnDown {
    pub institute: String,
    pub name: String,
    pub at_ms: i64,
    pub period: Option<Period>,
    pub granted_gpu_hours: Option<f64>,
    pub used_gpu_hours: f64,
    pub settled_gpu_hours: f64,
    pub in_flight_gpu_hours: f64,
    pub committed_gpu_hours: f64,
    /// False when no running job had a time limit from the scheduler.
    pub committed_known: bool,
    pub remaining_gpu_hours: Option<f64>,
    pub used_pct: Option<f64>,
    /// GPU-hours per day over the last `burn_window_s` before `at`.
    pub burn_rate_gpu_hours_per_day: f64,
    /// The window the burn rate is taken over: 7 days, or the time with data if shorter (seconds).
    pub burn_window_s: f64,
    pub projected_gpu_hours: Option<f64>,
    pub projected_pct: Option<f64>,
    /// When the grant runs out at the burn rate, if within the period.
    pub runs_out_ms: Option<i64>,
    pub gpus_in_use: u32,
    pub max_gpus: Option<u32>,
    /// GPUs asked for by the institute's pending jobs (queue pressure), when the scheduler says.
    #[serde(default)]
    pub queued_gpus: Option<u32>,
    pub busy_gpu_hours: f64,
    /// Busy over allocated GPU-hours, percent (NVML GPU utilisation).
    pub efficiency_pct: Option<f64>,
    /// Allocated GPU-hours of the period on GPUs that measure GPM activity (Hopper
    /// and later), and those hours × SM active: SM efficiency is the second over the
    /// first. Absent where nothing it held measured GPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpm_measured_gpu_hours: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_active_gpu_hours: Option<f64>,
    pub state: State,
    pub reasons: Vec<String>,
    pub by_account: Vec<Breakdown>,
    pub by_user: Vec<Breakdown>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Warning,
    Exceeded,
    NoQuota,
}

/// `GET /api/v1/quotas?institute=&at=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QuotaQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institute: Option<String>,
    /// `YYYY-MM-DD` or an RFC 3339 UTC time; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Answer of `GET /api/v1/quotas`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotasResponse {
    /// The collector's cluster (`cluster` in its configuration); empty from older collectors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    pub at_ms: i64,
    pub utilisation_signal: String,
    pub institutes: Vec<BurnDown>,
}
