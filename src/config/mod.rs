//! Collector configuration: one TOML file, unknown keys refused, errors that
//! name the file, the line and the key.

mod alerts;
mod check;
mod client;
mod limits;
mod scheduler;
pub mod store_url;

pub use alerts::{Alerts, Email, Route, Webhook, WebhookFormat};
pub use check::Checked;
pub use client::{ClientFile, CollectorEntry, DEFAULT_CONFIG};
pub use limits::{Ingest, Nodes, Server, Tls, glob};
pub use scheduler::SchedulerConfig;

use crate::accounting::InstituteMap;
use crate::quota::{Quota, QuotaSpec};
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
    pub server: Server,
    /// HTTPS (and optional mutual TLS) on `listen`; plain HTTP without it.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// The rules' thresholds and where findings are sent.
    #[serde(default)]
    pub alerts: Alerts,
    /// How time is charged where the ledger offers a choice.
    #[serde(default)]
    pub accounting: Accounting,
    #[serde(default)]
    pub institutes: Vec<Institute>,
}

/// `[accounting]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounting {
    /// A MIG slice is charged as this fraction of its GPU: "max" (default; the larger
    /// of compute slices / 7 and memory slices / 8), "compute" or "memory".
    #[serde(default)]
    pub mig_charge: crate::accounting::MigCharge,
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
            if RESERVED_IDS.contains(&inst.id.as_str()) {
                return Err(format!(
                    "institute id `{}` is reserved (Jazari uses it for {}); choose another",
                    inst.id,
                    if inst.id == crate::accounting::UNASSIGNED {
                        "use no institute claims"
                    } else {
                        "its own figures"
                    }
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
        self.ingest.validate()?;
        self.nodes.validate()?;
        self.server.validate()?;
        if let Some(t) = &self.tls {
            t.validate()?;
        }
        self.scheduler.validate()?;
        let ids: Vec<&str> = self.institutes.iter().map(|i| i.id.as_str()).collect();
        self.alerts.validate(&ids)?;
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

/// Institute ids Jazari uses itself (`unassigned` collects use no institute claims).
pub const RESERVED_IDS: &[&str] = &[crate::accounting::UNASSIGNED, "all", "other", "none", "total", "admin"];

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests;
