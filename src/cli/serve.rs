//! `jazari serve`: the collector.

use crate::config::Config;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Collector configuration (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Listen address (overrides `listen` in the config).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// SQLite store (overrides `store` in the config).
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
}

pub fn run(a: ServeArgs) -> Result<()> {
    let cfg = Config::load(&a.config)?;
    let store = a.store.unwrap_or_else(|| cfg.store.clone());
    let listen = a.listen.unwrap_or_else(|| cfg.listen.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(crate::server::serve(cfg, store, listen))
}
