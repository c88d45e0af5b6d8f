//! Ledger sums (`/api/v1/usage`) and what each node delivered (`/api/v1/coverage`).

use serde::{Deserialize, Serialize};

/// What a usage query groups the ledger by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    #[default]
    Institute,
    Account,
    User,
    Job,
    Node,
    Gpu,
    Hour,
}

impl GroupBy {
    pub const ALL: [GroupBy; 7] =
        [Self::Institute, Self::Account, Self::User, Self::Job, Self::Node, Self::Gpu, Self::Hour];

    pub fn name(self) -> &'static str {
        match self {
            Self::Institute => "institute",
            Self::Account => "account",
            Self::User => "user",
            Self::Job => "job",
            Self::Node => "node",
            Self::Gpu => "gpu",
            Self::Hour => "hour",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == s)
    }
}

/// `GET /api/v1/usage?from=&to=&group_by=&institute=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UsageQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institute: Option<String>,
}

/// The ledger's amounts under their API names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageAmounts {
    pub capacity_gpu_seconds: f64,
    pub allocated_gpu_seconds: f64,
    /// Allocated time × NVML GPU utilisation.
    pub busy_gpu_seconds: f64,
    pub idle_allocated_gpu_seconds: f64,
    pub unscheduled_gpu_seconds: f64,
    pub energy_joules: f64,
    /// Allocated GPU-seconds on GPUs that measured GPM activity (Hopper and later).
    #[serde(default)]
    pub gpm_measured_gpu_seconds: f64,
    /// Allocated time × SM active (GPM): SM efficiency is this over `gpm_measured_gpu_seconds`.
    #[serde(default)]
    pub sm_active_gpu_seconds: f64,
    /// Allocated time × tensor pipes active (GPM), over `gpm_measured_gpu_seconds`.
    #[serde(default)]
    pub tensor_active_gpu_seconds: f64,
}

/// The value a row is grouped by, under the group's name (`"institute": "x"`);
/// null for idle capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKey {
    Institute(Option<String>),
    Account(Option<String>),
    User(Option<String>),
    Job(Option<String>),
    Node(Option<String>),
    Gpu(Option<String>),
    Hour(Option<String>),
}

impl GroupKey {
    /// The key of a row grouped by `g`; an empty value is null.
    pub fn new(g: GroupBy, value: String) -> Self {
        let v = (!value.is_empty()).then_some(value);
        match g {
            GroupBy::Institute => Self::Institute(v),
            GroupBy::Account => Self::Account(v),
            GroupBy::User => Self::User(v),
            GroupBy::Job => Self::Job(v),
            GroupBy::Node => Self::Node(v),
            GroupBy::Gpu => Self::Gpu(v),
            GroupBy::Hour => Self::Hour(v),
        }
    }

    pub fn value(&self) -> Option<&str> {
        match self {
            Self::Institute(v)
            | Self::Account(v)
            | Self::User(v)
            | Self::Job(v)
            | Self::Node(v)
            | Self::Gpu(v)
            | Self::Hour(v) => v.as_deref(),
        }
    }
}

/// One row of a usage answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    #[serde(flatten)]
    pub key: GroupKey,
    #[serde(flatten)]
    pub amounts: UsageAmounts,
}

/// Answer of `GET /api/v1/usage`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageResponse {
    pub from: String,
    pub to: String,
    pub group_by: GroupBy,
    pub utilisation_signal: String,
    pub rows: Vec<UsageRow>,
}

/// `GET /api/v1/coverage?from=&to=` (and other queries over a period).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeriodQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Reports received from one node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CoverageRow {
    pub node: String,
    pub reports: i64,
    pub covered_s: f64,
    pub first_hour: i64,
    pub last_hour: i64,
}

/// Answer of `GET /api/v1/coverage`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoverageResponse {
    pub nodes: Vec<CoverageRow>,
}
