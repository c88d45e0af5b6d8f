//! `jazari top`: the dashboard.

use super::ClientArgs;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Time between fetches.
    #[arg(long, default_value = "2s", value_parser = jazari_wire::duration::parse)]
    pub refresh: std::time::Duration,
    /// Leave the mouse to the terminal (no clicks or wheel in the dashboard).
    #[arg(long)]
    pub no_mouse: bool,
}

pub fn run(a: TopArgs) -> Result<()> {
    crate::tui::run(a.client.targets()?, a.refresh, !a.no_mouse)
}
