//! `jazari check-config` and `jazari gen-config`.

use crate::config::{Config, EXAMPLE};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The file to check: its syntax and values, then the machine (listen address, the
    /// store's folder, the files it names).
    #[arg(default_value = crate::config::DEFAULT_CONFIG)]
    pub file: PathBuf,
}

pub fn check(a: CheckArgs) -> Result<()> {
    let cfg = Config::load(&a.file)?;
    let checked = cfg.check_machine();
    for n in &checked.notes {
        eprintln!("note: {n}");
    }
    if !checked.problems.is_empty() {
        for p in &checked.problems {
            eprintln!("problem: {p}");
        }
        anyhow::bail!(
            "{}: the file parses, but the collector would not start: {} problem{}",
            a.file.display(),
            checked.problems.len(),
            if checked.problems.len() == 1 { "" } else { "s" }
        );
    }
    println!("{}: ok ({} institutes: {})", a.file.display(), cfg.institutes.len(), cfg.institute_ids());
    Ok(())
}

pub fn generate() -> Result<()> {
    print!("{EXAMPLE}");
    Ok(())
}
