//! History: per-GPU points (`/api/v1/history`) and the cluster series
//! (`/api/v1/history/cluster`).

use serde::{Deserialize, Serialize};

/// How finely history is kept: at report resolution, then 1-minute and 1-hour means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Raw,
    Minute,
    Hour,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Minute => "minute",
            Self::Hour => "hour",
        }
    }

    /// The smallest bucket it can answer, in milliseconds.
    pub fn step_ms(self) -> i64 {
        match self {
            Self::Raw => 1000,
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
        }
    }
}

/// `GET /api/v1/history?from=&to=&node=&gpu=&resolution=&limit=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistoryQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// `raw`, `minute`, `hour` or `auto` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One point of history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistoryPoint {
    pub node: String,
    pub gpu: String,
    pub ts_ms: i64,
    pub util: Option<f64>,
    pub mem_used: Option<f64>,
    pub power_w: Option<f64>,
    pub temp: Option<f64>,
    pub allocated: Option<f64>,
}

/// Answer of `GET /api/v1/history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryResponse {
    pub resolution: Resolution,
    pub points: Vec<HistoryPoint>,
}

/// `GET /api/v1/history/cluster?window=&points=`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeriesQuery {
    /// `1h`, `24h`, `7d`, … (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<usize>,
}

/// One bucket of a cluster-wide series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeriesPoint {
    pub ts_ms: i64,
    pub util_pct: Option<f64>,
    pub power_w: f64,
    pub allocated_gpus: f64,
    pub gpus: u64,
}

/// Answer of `GET /api/v1/history/cluster`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesResponse {
    pub window: String,
    pub resolution: Resolution,
    pub bucket_ms: i64,
    pub points: Vec<SeriesPoint>,
}
