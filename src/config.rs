//! Collector configuration: one TOML file, unknown keys refused, errors that
//! name the file, the line and the key.

use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The example configuration, printed by `jazari gen-config`.
pub const EXAMPLE: &str = include_str!("../config/jazari.example.toml");

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
    pub scheduler: crate::scheduler::SchedulerConfig,
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
    #[serde(with = "duration")]
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
    #[serde(with = "duration")]
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
    #[serde(with = "duration")]
    pub raw: Duration,
    /// How long 1-minute history is kept.
    #[serde(with = "duration")]
    pub minute: Duration,
    /// How long 1-hour history is kept.
    #[serde(with = "duration")]
    pub hour: Duration,
    /// How often history is downsampled and pruned.
    #[serde(with = "duration")]
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
    /// Kubernetes namespaces.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// GPU-hour grant; absent for an institute without a quota.
    #[serde(default)]
    pub quota: Option<crate::quota::QuotaSpec>,
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
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate().map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
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
            if let Some(q) = &inst.quota {
                q.validate().map_err(|e| format!("institute `{}`: {e}", inst.id))?;
                if let Some(a) = q.accounts.keys().find(|a| !inst.accounts.contains(a)) {
                    return Err(format!(
                        "institute `{}`: quota.accounts.{a} is not one of its accounts ({})",
                        inst.id,
                        inst.accounts.join(", ")
                    ));
                }
            }
            for (kind, list) in [
                ("accounts", &inst.accounts),
                ("users", &inst.users),
                ("groups", &inst.groups),
                ("namespaces", &inst.namespaces),
            ] {
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

/// Durations written as "10s", "5m", "48h", "365d" or "500ms".
pub mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 =
            num.parse().map_err(|_| format!("`{s}` is not a duration: write for example 10s, 5m, 48h or 365d"))?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "s" | "" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            u => return Err(format!("`{s}`: unknown unit `{u}`; use ms, s, m, h or d")),
        };
        if !(secs > 0.0 && secs.is_finite()) {
            return Err(format!("`{s}`: a duration must be positive"));
        }
        Ok(Duration::from_secs_f64(secs))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn the_example_is_valid_and_has_three_institutes() {
        let c = parse(EXAMPLE).unwrap();
        assert!(c.institutes.len() >= 3);
        assert!(c.institute("ibn-sina").is_some());
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let err = parse("cluster = \"x\"\n\n[nodes]\nintervall = \"10s\"\n").unwrap_err().to_string();
        assert!(err.contains("intervall"), "{err}");
        assert!(err.contains("line 4") || err.contains(":4:"), "{err}");
        assert!(err.starts_with("test.toml"), "{err}");
    }

    #[test]
    fn bad_duration_is_explained() {
        let err = parse("[nodes]\ninterval = \"10 parsecs\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn a_member_in_two_institutes_is_refused() {
        let err =
            parse("[[institutes]]\nid = \"a\"\naccounts = [\"x\"]\n[[institutes]]\nid = \"b\"\naccounts = [\"x\"]\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("`a` and `b`") && err.contains("`x`"), "{err}");
    }

    #[test]
    fn duplicate_and_malformed_ids_are_refused() {
        assert!(
            parse("[[institutes]]\nid = \"a\"\n[[institutes]]\nid = \"a\"\n")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        assert!(parse("[[institutes]]\nid = \"Bad Id\"\n").unwrap_err().to_string().contains("Bad Id"));
    }

    #[test]
    fn quota_errors_name_the_institute_and_the_key() {
        let err = parse("[[institutes]]\nid = \"a\"\naccounts = [\"x\"]\n[institutes.quota]\ngpu_hours = 10\nperiod = \"fortnight\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("institute `a`") && err.contains("quota.period") && err.contains("fortnight"), "{err}");
        let err = parse("[[institutes]]\nid = \"a\"\naccounts = [\"x\"]\n[institutes.quota]\ngpu_hours = 10\nperiod = \"year\"\naccounts = { y = 5 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("quota.accounts.y"), "{err}");
        let err =
            parse("[[institutes]]\nid = \"a\"\n[institutes.quota]\ngpu_hours = 10\nperiod = \"year\"\nbudget = 3\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("budget"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration::parse("48h").unwrap(), Duration::from_secs(172800));
        assert_eq!(duration::parse("365d").unwrap(), Duration::from_secs(365 * 86400));
        assert!(duration::parse("-1s").is_err());
    }
}
