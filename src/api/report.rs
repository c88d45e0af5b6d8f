//! Usage reports for a period (`/api/v1/report`, `jazari report`).

use serde::{Deserialize, Serialize};

/// Version of the report's JSON shape.
pub const SCHEMA_VERSION: u32 = 4;

/// `GET /api/v1/report?period=` or `?from=&to=` (days), `&institute=&anonymise=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportQuery {
    /// `2026`, `2026-Q1` or `2026-03`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// First day, `YYYY-MM-DD`; with `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last day, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymise: Option<bool>,
}

/// The report's period: [start, end) in UTC seconds, whole days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPeriod {
    pub label: String,
    /// First day, `YYYY-MM-DD`.
    pub first_day: String,
    /// Last day, inclusive.
    pub last_day: String,
    pub start_s: i64,
    pub end_s: i64,
}

/// Figures in GPU-hours and kWh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub capacity_gpu_hours: f64,
    pub allocated_gpu_hours: f64,
    /// Allocated GPU-hours weighted by NVML GPU utilisation.
    pub utilised_gpu_hours: f64,
    pub idle_allocated_gpu_hours: f64,
    pub unscheduled_gpu_hours: f64,
    pub energy_kwh: f64,
    /// Allocated GPU-hours on GPUs that measured GPM activity (Hopper and later).
    #[serde(default)]
    pub gpm_measured_gpu_hours: f64,
    /// Allocated GPU-hours × SM active (GPM); over `gpm_measured_gpu_hours` it is the SM efficiency.
    #[serde(default)]
    pub sm_active_gpu_hours: f64,
    /// Allocated GPU-hours × tensor pipes active (GPM).
    #[serde(default)]
    pub tensor_active_gpu_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    /// `2026-03` for a month, `2026-03-02` (the Monday) for a week.
    pub label: String,
    pub start_s: i64,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A user's amounts in the period (GPU-hours used = allocated + unscheduled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopUser {
    pub user: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A job's amounts in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopJob {
    pub job: String,
    pub user: String,
    pub account: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// An institute's grant and how the report's share of it was computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// GPU-hours granted per quota period.
    pub per_period_gpu_hours: f64,
    /// The quota's period: `month`, `quarter`, `year`, or its explicit dates.
    pub quota_period: String,
    /// GPU-hours of the grant that fall in the report's period.
    pub for_report_gpu_hours: f64,
    /// Whether the report's period differs from the quota's, so the grant was pro-rated by time.
    pub prorated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstituteReport {
    pub id: String,
    pub name: String,
    /// Grant for the report period, pro-rated from the quota's own periods.
    pub granted_gpu_hours: Option<f64>,
    /// How the grant for the period was found.
    pub grant: Option<Grant>,
    #[serde(flatten)]
    pub figures: Figures,
    /// Allocated plus unscheduled GPU-hours against the grant, percent.
    pub share_of_grant_pct: Option<f64>,
    /// Utilised over allocated GPU-hours, percent: NVML utilisation (a duty cycle, not SM activity).
    pub efficiency_pct: Option<f64>,
    /// Jobs and users with use in the period (the top lists show the largest of them).
    pub jobs: usize,
    pub users: usize,
    /// The most GPUs held at once (allocated or unscheduled) in the period, as the highest minute mean.
    pub peak_held_gpus: f64,
    /// The most GPUs busy at once (held × NVML utilisation), likewise.
    pub peak_busy_gpus: f64,
    pub breakdown: Vec<Slice>,
    /// The users with the most GPU-hours, at most 10 of `users`.
    pub top_users: Vec<TopUser>,
    /// The jobs with the most GPU-hours, at most 10 of `jobs`.
    pub top_jobs: Vec<TopJob>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub node: String,
    pub from_s: i64,
    pub to_s: i64,
    pub missing_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub nodes: usize,
    pub expected_node_hours: f64,
    pub received_node_hours: f64,
    /// Share of the expected node-intervals received, percent.
    pub coverage_pct: Option<f64>,
    /// Every gap, largest first (formats may show the first ones and say how many there are).
    pub gaps: Vec<Gap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    #[serde(flatten)]
    pub figures: Figures,
    pub allocated_share_pct: Option<f64>,
    pub utilised_share_pct: Option<f64>,
    /// Share of the expected GPU-time during which GPUs reported, percent.
    pub availability_pct: Option<f64>,
    pub coverage: Coverage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayPoint {
    pub day_s: i64,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub cluster_name: String,
    pub generated_ms: i64,
    pub period: ReportPeriod,
    pub utilisation_signal: String,
    pub anonymised: bool,
    /// The institute the report is limited to (its own nodes' coverage, no totals of others).
    pub institute: Option<String>,
    pub breakdown_by: String,
    pub cluster: ClusterReport,
    pub institutes: Vec<InstituteReport>,
    /// All institutes together, `unassigned` included: equals the ledger (for an
    /// institute-scoped report, that institute's figures).
    pub total: Figures,
    pub daily: Vec<DayPoint>,
    /// What went wrong in the period (for an institute's report, its own findings only).
    #[serde(default)]
    pub findings: FindingsSummary,
}

/// Findings that held in a report's period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingsSummary {
    /// How many of each kind, most severe first.
    pub counts: Vec<FindingCount>,
    /// GPUs that failed: lost, a critical XID, uncorrectable ECC errors.
    pub failed_gpus: Vec<crate::api::findings::Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingCount {
    pub kind: crate::api::findings::FindingKind,
    pub severity: crate::api::findings::Severity,
    pub count: u64,
}
