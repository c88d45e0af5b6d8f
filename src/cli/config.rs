//! `jazari check-config` and `jazari gen-config`.

use crate::config::{Config, EXAMPLE};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The file to check.
    pub file: PathBuf,
}

pub fn check(a: CheckArgs) -> Result<()> {
    let cfg = Config::load(&a.file)?;
    println!("{}: ok ({} institutes: {})", a.file.display(), cfg.institutes.len(), cfg.institute_ids());
    Ok(())
}

pub fn generate() -> Result<()> {
    print!("{EXAMPLE}");
    Ok(())
}
