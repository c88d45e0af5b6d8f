//! What the collector takes from the network: `[ingest]` (bodies and the
//! lists in a report), `[nodes]` (which node names may report), `[server]`
//! (connections and timeouts) and `[tls]`. Every limit has a default, is
//! checked against the others at load, and its refusal names it.

use jazari_wire::{DecodeLimits, duration};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ingest {
    /// Largest request body accepted, as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Largest body accepted after decompression.
    pub max_decompressed_bytes: usize,
    /// Reports in one posted batch.
    pub max_reports_per_batch: usize,
    /// GPUs in one report.
    pub max_gpus_per_report: usize,
    /// Processes on one GPU (or MIG device), and on all GPUs of one report.
    pub max_processes_per_gpu: usize,
    pub max_processes_per_report: usize,
    /// Jobs and events in one report.
    pub max_jobs_per_report: usize,
    pub max_events_per_report: usize,
    /// Distinct process owners in one report.
    pub max_users_per_report: usize,
    /// Batches decoded, checked and prepared at once (CPU work, off the
    /// threads that answer requests); 0: one per core.
    pub workers: usize,
    /// An allocated GPU at or under this utilisation (percent) during an interval is idle-allocated.
    pub idle_threshold_pct: f64,
    /// Longest interval one report may claim to cover.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_interval: Duration,
}

impl Default for Ingest {
    fn default() -> Self {
        let d = DecodeLimits::default();
        Self {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 16 << 20,
            max_reports_per_batch: d.reports,
            max_gpus_per_report: d.gpus,
            max_processes_per_gpu: d.processes_per_gpu,
            max_processes_per_report: d.processes,
            max_jobs_per_report: d.jobs,
            max_events_per_report: d.events,
            max_users_per_report: 1024,
            workers: 0,
            idle_threshold_pct: 5.0,
            max_interval: Duration::from_secs(3600),
        }
    }
}

/// Hard ceilings: no configuration goes beyond these.
const MAX_DECOMPRESSED: usize = 256 << 20;
const MAX_LIST: usize = 1 << 20;

impl Ingest {
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            reports: self.max_reports_per_batch,
            gpus: self.max_gpus_per_report,
            processes_per_gpu: self.max_processes_per_gpu,
            processes: self.max_processes_per_report,
            jobs: self.max_jobs_per_report,
            events: self.max_events_per_report,
        }
    }

    /// Batches prepared at once.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes < 1024 {
            return Err(format!("ingest.max_body_bytes = {} must be at least 1024", self.max_body_bytes));
        }
        if self.max_decompressed_bytes < self.max_body_bytes || self.max_decompressed_bytes > MAX_DECOMPRESSED {
            return Err(format!(
                "ingest.max_decompressed_bytes = {} must be between ingest.max_body_bytes ({}) and {MAX_DECOMPRESSED}",
                self.max_decompressed_bytes, self.max_body_bytes
            ));
        }
        for (key, v) in [
            ("max_reports_per_batch", self.max_reports_per_batch),
            ("max_gpus_per_report", self.max_gpus_per_report),
            ("max_processes_per_gpu", self.max_processes_per_gpu),
            ("max_processes_per_report", self.max_processes_per_report),
            ("max_jobs_per_report", self.max_jobs_per_report),
            ("max_events_per_report", self.max_events_per_report),
            ("max_users_per_report", self.max_users_per_report),
        ] {
            if v == 0 || v > MAX_LIST {
                return Err(format!("ingest.{key} = {v} must be within 1..{MAX_LIST}"));
            }
        }
        if self.max_gpus_per_report > jazari_wire::validate::MAX_GPUS {
            return Err(format!(
                "ingest.max_gpus_per_report = {} is more than a node can have ({})",
                self.max_gpus_per_report,
                jazari_wire::validate::MAX_GPUS
            ));
        }
        if self.max_processes_per_gpu > self.max_processes_per_report {
            return Err(format!(
                "ingest.max_processes_per_gpu = {} is more than ingest.max_processes_per_report = {}",
                self.max_processes_per_gpu, self.max_processes_per_report
            ));
        }
        if self.workers > 1024 {
            return Err(format!("ingest.workers = {} must be at most 1024 (0: one per core)", self.workers));
        }
        if !(0.0..=100.0).contains(&self.idle_threshold_pct) {
            return Err(format!("ingest.idle_threshold_pct = {} must be within 0..100", self.idle_threshold_pct));
        }
        if self.max_interval < Duration::from_secs(1) || self.max_interval > Duration::from_secs(86_400) {
            return Err(format!(
                "ingest.max_interval = {:?} must be between 1s and 1d (a report covers one sampling interval)",
                self.max_interval
            ));
        }
        Ok(())
    }
}

/// `[nodes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nodes {
    /// Interval the agents report at.
    #[serde(deserialize_with = "duration::deserialize")]
    pub interval: Duration,
    /// A node that missed this many intervals is stale.
    pub stale_after_intervals: u32,
    /// Names a node token for `*` may report as (`*` and `?` wildcards).
    pub names: Vec<String>,
    /// Most nodes the collector knows; a new name beyond it is refused.
    pub max_nodes: usize,
}

impl Default for Nodes {
    fn default() -> Self {
        Self { interval: Duration::from_secs(10), stale_after_intervals: 3, names: vec!["*".into()], max_nodes: 20_000 }
    }
}

impl Nodes {
    /// Whether `name` matches one of the `names` patterns.
    pub fn allows(&self, name: &str) -> bool {
        self.names.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.stale_after_intervals == 0 {
            return Err("nodes.stale_after_intervals must be at least 1".into());
        }
        if self.interval < Duration::from_millis(100) || self.interval > Duration::from_secs(3600) {
            return Err(format!("nodes.interval = {:?} must be between 100ms and 1h", self.interval));
        }
        if self.names.is_empty() {
            return Err("nodes.names is empty: no node could report (\"*\" allows any name)".into());
        }
        if self.max_nodes == 0 || self.max_nodes > 1_000_000 {
            return Err(format!("nodes.max_nodes = {} must be within 1..1000000", self.max_nodes));
        }
        Ok(())
    }
}

/// Shell-style wildcard match: `*` any run, `?` one character.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `[server]`: connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: usize,
    /// Time to send a request's headers (and the TLS handshake); an idle
    /// keep-alive connection is closed after it too.
    #[serde(deserialize_with = "duration::deserialize")]
    pub header_timeout: Duration,
    /// Time to send a request's body.
    #[serde(deserialize_with = "duration::deserialize")]
    pub body_timeout: Duration,
    /// How long `/metrics` is answered from the last rendering.
    #[serde(deserialize_with = "duration::deserialize")]
    pub metrics_cache: Duration,
    /// A file holding the secret `/metrics` asks for as a bearer token; none: `/metrics` is open.
    pub metrics_token_file: Option<PathBuf>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            metrics_cache: Duration::from_secs(5),
            metrics_token_file: None,
        }
    }
}

impl Server {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.max_connections < 16 || self.max_connections > 1_000_000 {
            return Err(format!("server.max_connections = {} must be within 16..1000000", self.max_connections));
        }
        for (key, d) in [("header_timeout", self.header_timeout), ("body_timeout", self.body_timeout)] {
            if d < Duration::from_millis(100) || d > Duration::from_secs(600) {
                return Err(format!("server.{key} = {d:?} must be between 100ms and 10m"));
            }
        }
        if self.metrics_cache > Duration::from_secs(300) {
            return Err(format!("server.metrics_cache = {:?} must be at most 5m", self.metrics_cache));
        }
        Ok(())
    }
}

/// `[tls]`: the collector answers HTTPS only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain and private key (reloaded on SIGHUP).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// PEM CA certificates that sign client certificates (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: refuse connections without a client certificate.
    #[serde(default)]
    pub require_client_cert: bool,
    /// With `client_ca`: client certificate names (CN or DNS name, `*` and
    /// `?` wildcards) that may report as the node of that name without a token.
    #[serde(default)]
    pub node_names: Vec<String>,
}

impl Tls {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.client_ca.is_none() && (self.require_client_cert || !self.node_names.is_empty()) {
            return Err(
                "tls.require_client_cert and tls.node_names need tls.client_ca (the CA of client certificates)".into(),
            );
        }
        Ok(())
    }

    /// Whether a client certificate named `name` may report as node `name`.
    pub fn node_may_use_cert(&self, name: &str) -> bool {
        self.node_names.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"gpu-*", b"gpu-a1"));
        assert!(!glob(b"gpu-*", b"cpu-a1"));
        assert!(glob(b"dgx?", b"dgx7"));
        assert!(!glob(b"dgx?", b"dgx17"));
        assert!(glob(b"*-a*", b"gpu-a1"));
        assert!(!glob(b"", b"x"));
    }

    #[test]
    fn limits_are_checked_against_each_other() {
        let mut i = Ingest::default();
        assert!(i.validate().is_ok());
        i.max_body_bytes = 0;
        assert!(i.validate().unwrap_err().contains("max_body_bytes"));
        let mut i = Ingest { max_decompressed_bytes: 1 << 40, ..Default::default() };
        assert!(i.validate().unwrap_err().contains("max_decompressed_bytes"));
        i.max_decompressed_bytes = i.max_body_bytes - 1;
        assert!(i.validate().unwrap_err().contains("max_decompressed_bytes"));
        let i = Ingest { max_interval: Duration::from_secs(400 * 86_400), ..Default::default() };
        assert!(i.validate().unwrap_err().contains("max_interval"));
        let i = Ingest { max_processes_per_gpu: 10_000, max_processes_per_report: 100, ..Default::default() };
        assert!(i.validate().unwrap_err().contains("max_processes_per_gpu"));
        let s = Server { max_connections: 1, ..Default::default() };
        assert!(s.validate().unwrap_err().contains("max_connections"));
    }
}
