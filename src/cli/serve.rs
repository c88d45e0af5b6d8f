//! `jazari serve`: the collector.

use crate::config::{Config, DEFAULT_CONFIG};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Collector configuration (TOML).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Listen address, HOST:PORT (overrides `listen` in the config).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Store: a SQLite file, or a postgres:// URL (overrides `store` in the config).
    #[arg(long, value_name = "STORE")]
    pub store: Option<PathBuf>,
}

pub fn run(a: ServeArgs) -> Result<()> {
    let cfg = Config::load(&a.config)?;
    let store = a.store.unwrap_or_else(|| cfg.store.clone());
    let listen = a.listen.unwrap_or_else(|| cfg.listen.clone());
    if listen.parse::<std::net::SocketAddr>().is_err() {
        bail!(
            "--listen `{listen}` is not an address HOST:PORT: for example 0.0.0.0:9470 (all interfaces) or \
             127.0.0.1:9470 (this machine only)"
        );
    }
    tracing::info!(
        version = crate::api::VERSION,
        config = %a.config.display(),
        "jazari serve starting"
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(crate::server::serve(cfg, store, listen))
}
