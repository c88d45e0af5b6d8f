//! `[scheduler]`: where allocations come from.

use crate::api::scheduler::SchedulerKind;
use crate::scheduler::GpuIndex;
use jazari_wire::duration;
use serde::Deserialize;
use std::time::Duration;

/// The `[scheduler]` table.
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
    pub(super) fn validate(&self) -> Result<(), String> {
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
