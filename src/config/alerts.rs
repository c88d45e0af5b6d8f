//! `[alerts]`: the rules' thresholds and where findings are sent.

use crate::api::findings::Severity;
use jazari_wire::duration;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// How often the rules are evaluated, and the quota rules (they read the ledger).
    #[serde(deserialize_with = "duration::deserialize")]
    pub evaluate_every: Duration,
    #[serde(deserialize_with = "duration::deserialize")]
    pub quota_every: Duration,
    /// A finding that holds is notified again after this long.
    #[serde(deserialize_with = "duration::deserialize")]
    pub repeat_interval: Duration,
    /// A finding clears only once its condition has been absent this long (no flapping).
    #[serde(deserialize_with = "duration::deserialize")]
    pub clear_after: Duration,
    /// A job's GPUs at or under the idle threshold this long make a finding.
    #[serde(deserialize_with = "duration::deserialize")]
    pub idle_allocated_after: Duration,
    /// XID codes that make a critical finding (held this long after the last one).
    pub critical_xids: Vec<u64>,
    #[serde(deserialize_with = "duration::deserialize")]
    pub xid_window: Duration,
    /// Corrected ECC errors per hour on one GPU that make a finding.
    pub ecc_corrected_per_hour: f64,
    /// Throttle reasons that count, and how long they must last.
    pub throttle_reasons: Vec<String>,
    #[serde(deserialize_with = "duration::deserialize")]
    pub throttle_after: Duration,
    /// A job whose GPUs' SM activity (GPM, Hopper and later) stays under this percent
    /// while they are not idle by NVML utilisation (kernels run, the SMs wait) ...
    pub low_sm_active_pct: f64,
    /// ... this long makes a finding.
    #[serde(deserialize_with = "duration::deserialize")]
    pub low_sm_active_after: Duration,
    /// Slurm partitions meant for tensor-core work ("AI partitions"): a job there whose
    /// GPUs run kernels (not idle) with no tensor activity (GPM) ...
    pub tensor_idle_partitions: Vec<String>,
    /// ... this long makes a finding. Empty partitions: the rule is off.
    #[serde(deserialize_with = "duration::deserialize")]
    pub tensor_idle_after: Duration,
    /// Notifications waiting for a receiver, at most (the oldest are dropped, counted and logged).
    pub max_queue: usize,
    pub webhook: Vec<Webhook>,
    pub email: Vec<Email>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            evaluate_every: Duration::from_secs(10),
            quota_every: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(4 * 3600),
            clear_after: Duration::from_secs(120),
            idle_allocated_after: Duration::from_secs(30 * 60),
            critical_xids: vec![48, 63, 64, 74, 79, 92, 94, 95],
            xid_window: Duration::from_secs(3600),
            ecc_corrected_per_hour: 100.0,
            throttle_reasons: ["hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown"]
                .map(String::from)
                .to_vec(),
            throttle_after: Duration::from_secs(600),
            low_sm_active_pct: 10.0,
            low_sm_active_after: Duration::from_secs(3600),
            tensor_idle_partitions: vec![],
            tensor_idle_after: Duration::from_secs(3600),
            max_queue: 10_000,
            webhook: vec![],
            email: vec![],
        }
    }
}

/// Which findings a receiver gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Only findings concerning these institutes (empty: all, also the cluster's own).
    #[serde(default)]
    pub institutes: Vec<String>,
    /// Only findings at or above this severity.
    #[serde(default = "warning")]
    pub min_severity: Severity,
}

fn warning() -> Severity {
    Severity::Warning
}

/// `[[alerts.webhook]]`: a JSON POST per group of findings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// `json` (Jazari's own body) or `slack` (`{"text": ...}`, also Mattermost).
    #[serde(default)]
    pub format: WebhookFormat,
    #[serde(flatten)]
    pub route: Route,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
}

/// `[[alerts.email]]`: a mail per group of findings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// `smtp://host:port` (STARTTLS when the server offers it, required with
    /// `starttls = true`), or `smtps://host:port` (TLS from the start).
    pub smtp: String,
    #[serde(default)]
    pub starttls: bool,
    pub from: String,
    pub to: Vec<String>,
    /// SMTP user and a file holding its password (not the password itself).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(flatten)]
    pub route: Route,
}

impl Alerts {
    pub(super) fn validate(&self, institutes: &[&str]) -> Result<(), String> {
        if !(0.0..=100.0).contains(&self.low_sm_active_pct) {
            return Err(format!("alerts.low_sm_active_pct = {} must be between 0 and 100", self.low_sm_active_pct));
        }
        if self.tensor_idle_partitions.iter().any(|p| p.trim().is_empty() || p.contains(',')) {
            return Err("alerts.tensor_idle_partitions: each entry is one Slurm partition name".into());
        }
        if self.evaluate_every < Duration::from_millis(200) || self.evaluate_every > Duration::from_secs(600) {
            return Err(format!("alerts.evaluate_every = {:?} must be between 200ms and 10m", self.evaluate_every));
        }
        if self.quota_every < self.evaluate_every || self.quota_every > Duration::from_secs(3600) {
            return Err(format!(
                "alerts.quota_every = {:?} must be between alerts.evaluate_every and 1h",
                self.quota_every
            ));
        }
        if self.repeat_interval < Duration::from_secs(60) {
            return Err(format!("alerts.repeat_interval = {:?} must be at least 1m", self.repeat_interval));
        }
        if !self.ecc_corrected_per_hour.is_finite() || self.ecc_corrected_per_hour <= 0.0 {
            return Err("alerts.ecc_corrected_per_hour must be above 0".into());
        }
        if self.max_queue == 0 || self.max_queue > 1_000_000 {
            return Err(format!("alerts.max_queue = {} must be within 1..1000000", self.max_queue));
        }
        for r in &self.throttle_reasons {
            if !jazari_wire::THROTTLE_REASONS.iter().any(|(_, n)| n == r) {
                let known: Vec<&str> = jazari_wire::THROTTLE_REASONS.iter().map(|(_, n)| *n).collect();
                return Err(format!("alerts.throttle_reasons: `{r}` is not one of {}", known.join(", ")));
            }
        }
        let routes =
            self.webhook.iter().map(|w| ("webhook", &w.route)).chain(self.email.iter().map(|e| ("email", &e.route)));
        for (what, route) in routes {
            if let Some(i) = route.institutes.iter().find(|i| !institutes.contains(&i.as_str())) {
                return Err(format!("alerts.{what}: institute `{i}` is not defined in [[institutes]]"));
            }
        }
        for w in &self.webhook {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(format!("alerts.webhook url = `{}` must start with http:// or https://", w.url));
            }
        }
        for e in &self.email {
            if !(e.smtp.starts_with("smtp://") || e.smtp.starts_with("smtps://")) {
                return Err(format!("alerts.email smtp = `{}` must be smtp://host:port or smtps://host:port", e.smtp));
            }
            if e.to.is_empty() {
                return Err("alerts.email needs at least one address in `to`".into());
            }
            for a in std::iter::once(&e.from).chain(&e.to) {
                if a.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(format!("alerts.email: `{a}` is not an e-mail address"));
                }
            }
            if e.user.is_some() != e.password_file.is_some() {
                return Err("alerts.email: give both `user` and `password_file`, or neither".into());
            }
        }
        Ok(())
    }
}
