//! The agent's settings: command-line flags over the agent configuration file.

use anyhow::{Context, Result};
use clap::Args;
use jazari_agent::push::client::TlsFiles;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/jazari-agent/spool";
/// The agent configuration file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "/etc/jazari/agent.toml";

/// The agent configuration file (`--config`); see config/agent.example.toml.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub collector: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub interval: Option<String>,
    pub max_backoff: Option<String>,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_mib: Option<u64>,
    pub dead_letter_max_mib: Option<u64>,
    pub node: Option<String>,
    pub nvml_lib: Option<PathBuf>,
}

impl FileConfig {
    /// Reads `path`, else /etc/jazari/agent.toml if it exists, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let default = Path::new(DEFAULT_CONFIG);
        let Some(path) = path.or(default.is_file().then_some(default)) else { return Ok(Self::default()) };
        tracing::debug!(config = %path.display(), "agent configuration");
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
    }

    /// A duration key, parsed.
    pub fn duration(&self, key: &str, value: &Option<String>) -> Result<Option<Duration>> {
        value
            .as_deref()
            .map(|s| jazari_wire::duration::parse(s).map_err(|e| anyhow::anyhow!("`{key}` in the agent config: {e}")))
            .transpose()
    }
}

/// TLS towards the collector.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM file of the CA certificates to trust instead of the system's (a private CA for an
    /// https collector; concatenate the system bundle into it to trust both).
    #[arg(long, env = "JAZARI_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --key).
    #[arg(long, env = "JAZARI_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, env = "JAZARI_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// Where the spool is and where reports go.
#[derive(Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Agent configuration file (TOML); flags override it. See config/agent.example.toml
    /// [default: /etc/jazari/agent.toml when it exists].
    #[arg(long, value_name = "FILE", env = "JAZARI_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Collector base URL, for example https://collector:9470.
    #[arg(long, value_name = "URL")]
    pub collector: Option<String>,
    /// File holding this node's token (from `jazari token add --node NAME`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Folder of the on-disk spool that holds reports until the collector has them
    /// [default: /var/lib/jazari-agent/spool].
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
}

/// The collector, its token file and TLS files, merged from flags and file.
pub struct Target {
    pub collector: String,
    pub token_file: PathBuf,
    pub tls: TlsFiles,
}

impl TargetArgs {
    pub fn spool_dir(&self, file: &FileConfig) -> PathBuf {
        self.spool_dir.clone().or(file.spool_dir.clone()).unwrap_or_else(|| DEFAULT_SPOOL_DIR.into())
    }

    pub fn target(&self, file: &FileConfig) -> Result<Target> {
        let collector = self
            .collector
            .clone()
            .or(file.collector.clone())
            .context("give --collector URL (or `collector` in the agent config)")?;
        anyhow::ensure!(
            collector.starts_with("http://") || collector.starts_with("https://"),
            "--collector `{collector}` must start with http:// or https://"
        );
        let token_file = self
            .token_file
            .clone()
            .or(file.token_file.clone())
            .context("give --token-file FILE with this node's token (or `token_file` in the agent config)")?;
        let tls = TlsFiles {
            ca_file: self.tls.ca_file.clone().or(file.ca_file.clone()),
            cert: self.tls.cert.clone().or(file.cert.clone()),
            key: self.tls.key.clone().or(file.key.clone()),
        };
        Ok(Target { collector, token_file, tls })
    }
}

impl Target {
    /// The node token, with a loud warning when others on the node can read it.
    pub fn token(&self) -> Result<String> {
        let token = jazari_wire::token::read(&self.token_file)?;
        if let Some(w) = jazari_wire::token::exposure(&self.token_file) {
            tracing::warn!("{w}");
        }
        Ok(token)
    }
}
