//! Collector configuration: one TOML file, unknown keys refused, errors that
//! name the file, the line and the key.

use crate::accounting::InstituteMap;
use crate::api::scheduler::SchedulerKind;
use crate::quota::{Quota, QuotaSpec};
use crate::scheduler::GpuIndex;
use jazari_wire::duration;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The example configuration, printed by `jazari gen-config`.
pub const EXAMPLE: &str = include_str!("../../config/jazari.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Cluster name shown in the dashboard and reports.
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// Address the collector listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// SQLite file (created on first start).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    #[serde(default)]
    pub ingest: Ingest,
    #[serde(default)]
    pub nodes: Nodes,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    #[serde(default)]
    pub institutes: Vec<Institute>,
}

fn default_cluster() -> String {
    "jazari".into()
}
fn default_listen() -> String {
    "127.0.0.1:9470".into()
}
fn default_store() -> PathBuf {
    "/var/lib/jazari/jazari.sqlite".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ingest {
    /// Largest request body accepted, as sent (compressed or not).
    pub max_body_bytes: usize,
    /// Largest body accepted after decompression.
    pub max_decompressed_bytes: usize,
    /// An allocated GPU at or under this utilisation (percent) during an interval is idle-allocated.
    pub idle_threshold_pct: f64,
    /// Longest interval one report may claim to cover.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_interval: Duration,
}

impl Default for Ingest {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 64 << 20,
            idle_threshold_pct: 5.0,
            max_interval: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nodes {
    /// Interval the agents report at.
    #[serde(deserialize_with = "duration::deserialize")]
    pub interval: Duration,
    /// A node that missed this many intervals is stale.
    pub stale_after_intervals: u32,
}

impl Default for Nodes {
    fn default() -> Self {
        Self { interval: Duration::from_secs(10), stale_after_intervals: 3 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// How long history is kept at report resolution.
    #[serde(deserialize_with = "duration::deserialize")]
    pub raw: Duration,
    /// How long 1-minute history is kept.
    #[serde(deserialize_with = "duration::deserialize")]
    pub minute: Duration,
    /// How long 1-hour history is kept.
    #[serde(deserialize_with = "duration::deserialize")]
    pub hour: Duration,
    /// How often history is downsampled and pruned.
    #[serde(deserialize_with = "duration::deserialize")]
    pub prune_every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw: Duration::from_secs(6 * 3600),
            minute: Duration::from_secs(48 * 3600),
            hour: Duration::from_secs(400 * 86400),
            prune_every: Duration::from_secs(600),
        }
    }
}

/// An institute and who belongs to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institute {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Slurm accounts.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Unix user names.
    #[serde(default)]
    pub users: Vec<String>,
    /// Unix group names.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Refused until Kubernetes pods are attributed by namespace (see `validate`).
    #[serde(default)]
    namespaces: Option<Vec<String>>,
    /// The GPU-hour grant as written (`[institutes.quota]`); checked into `quota`.
    #[serde(default, rename = "quota")]
    quota_spec: Option<QuotaSpec>,
    /// The checked grant; absent for an institute without a quota.
    #[serde(skip)]
    pub quota: Option<Quota>,
}

impl Institute {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A configuration error, with where it is and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        Ok(cfg)
    }

    /// Checks the values (and turns quota specs into quotas); the message names the key.
    fn validate(&mut self) -> Result<(), String> {
        for inst in &mut self.institutes {
            if inst.namespaces.is_some() {
                return Err(format!(
                    "institute `{}`: `namespaces` is not supported yet (Kubernetes pods are not attributed to \
                     institutes by namespace); remove the key: pod usage is charged by the process owner's user or group",
                    inst.id
                ));
            }
            inst.quota = inst
                .quota_spec
                .as_ref()
                .map(QuotaSpec::resolve)
                .transpose()
                .map_err(|e| format!("institute `{}`: {e}", inst.id))?;
        }
        let mut ids = HashSet::new();
        let mut owner: std::collections::HashMap<(&str, &str), &str> = Default::default();
        for inst in &self.institutes {
            if !valid_id(&inst.id) {
                return Err(format!(
                    "institute id `{}` must be 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit",
                    inst.id
                ));
            }
            if !ids.insert(inst.id.as_str()) {
                return Err(format!("institute `{}` is defined twice", inst.id));
            }
            if let Some(q) = &inst.quota
                && let Some(a) = q.accounts.keys().find(|a| !inst.accounts.contains(a))
            {
                return Err(format!(
                    "institute `{}`: quota.accounts.{a} is not one of its accounts ({})",
                    inst.id,
                    inst.accounts.join(", ")
                ));
            }
            for (kind, list) in [("accounts", &inst.accounts), ("users", &inst.users), ("groups", &inst.groups)] {
                for m in list {
                    if let Some(other) = owner.insert((kind, m.as_str()), inst.id.as_str()) {
                        return Err(format!(
                            "institutes `{other}` and `{}` both list `{m}` in {kind}: a member belongs to one institute",
                            inst.id
                        ));
                    }
                }
            }
        }
        if !(0.0..=100.0).contains(&self.ingest.idle_threshold_pct) {
            return Err(format!(
                "ingest.idle_threshold_pct = {} must be within 0..100",
                self.ingest.idle_threshold_pct
            ));
        }
        self.scheduler.validate()?;
        if self.nodes.stale_after_intervals == 0 {
            return Err("nodes.stale_after_intervals must be at least 1".into());
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("listen = `{}` is not an address like 127.0.0.1:9470", self.listen));
        }
        Ok(())
    }

    /// Who belongs to which institute.
    pub fn institute_map(&self) -> InstituteMap {
        let mut m = InstituteMap::default();
        for i in &self.institutes {
            m.add(&i.id, &i.accounts, &i.users, &i.groups);
        }
        m
    }

    pub fn institute(&self, id: &str) -> Option<&Institute> {
        self.institutes.iter().find(|i| i.id == id)
    }

    /// The ids of all institutes, for error messages.
    pub fn institute_ids(&self) -> String {
        self.institutes.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", ")
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_alphanumeric()
}

/// `[scheduler]`: where allocations come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub kind: SchedulerKind,
    /// Command printing `squeue --json` output.
    pub command: Vec<String>,
    /// Command printing `sacct --json` output (Jazari adds the time window and
    /// the states of ended jobs); empty when there is no slurmdbd.
    pub sacct_command: Vec<String>,
    /// Instead of the commands: slurmrestd's base URL (`http(s)://host:6820`).
    pub url: Option<String>,
    /// With `url`: a file holding the JWT (`scontrol token`), and the user it is for.
    pub token_file: Option<std::path::PathBuf>,
    pub user: Option<String>,
    /// With `url`: the OpenAPI version slurmrestd speaks (`v0.0.38` for Slurm 22.05).
    pub api_version: String,
    #[serde(deserialize_with = "duration::deserialize")]
    pub interval: Duration,
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// Largest output read from one poll.
    pub max_output_bytes: usize,
    /// How Slurm's GPU indices (`IDX:`) map to the agent's GPUs.
    pub gpu_index: GpuIndex,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            kind: SchedulerKind::None,
            command: vec!["squeue".into(), "--json".into()],
            sacct_command: vec!["sacct".into(), "--json".into()],
            url: None,
            token_file: None,
            user: None,
            api_version: "v0.0.38".into(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(20),
            max_output_bytes: 256 << 20,
            gpu_index: GpuIndex::Auto,
        }
    }
}

impl SchedulerConfig {
    fn validate(&self) -> Result<(), String> {
        if self.kind == SchedulerKind::Slurm && self.command.is_empty() && self.url.is_none() {
            return Err("scheduler.command is empty: give the squeue command, or scheduler.url for slurmrestd".into());
        }
        if let Some(u) = &self.url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("scheduler.url = `{u}` must start with http:// or https://"));
            }
            if self.token_file.is_none() {
                return Err("scheduler.url needs scheduler.token_file (a JWT from `scontrol token`)".into());
            }
        }
        if self.max_output_bytes < 1 << 16 {
            return Err("scheduler.max_output_bytes must be at least 65536".into());
        }
        Ok(())
    }

    /// How long after its last successful poll the scheduler still counts as answering.
    pub fn fresh_for(&self) -> Duration {
        self.interval * 2 + self.timeout
    }
}

#[cfg(test)]
mod tests;
