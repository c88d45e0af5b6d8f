//! Usage reports for a period (`jazari report`, `/api/v1/report`): the data,
//! built by a pure function ([`build`]) from the ledger's daily and hourly
//! roll-ups and the coverage record ([`coverage`]), and one module per output
//! format. The report's shape is the API's ([`crate::api::report`]).
//!
//! Reports cover whole UTC days: `from` is the first day, `to` the day after
//! the last. Sums over sub-periods equal the sum over the whole period
//! because every figure is a sum of daily buckets.

pub mod build;
pub mod coverage;
pub mod csv;
pub mod html;
pub mod md;
pub mod network;
mod period;
pub mod text;

pub use crate::api::report::*;
pub use build::{Inputs, Options, PSEUDONYM_KEY, build, prorated_grant, pseudonym};
pub use coverage::CoverageInput;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Md,
    Html,
}

/// Renders a report in a format.
pub fn render(r: &Report, f: Format) -> String {
    match f {
        Format::Csv => csv::render(r),
        Format::Json => serde_json::to_string_pretty(r).expect("report serialises") + "\n",
        Format::Md => md::render(r),
        Format::Html => html::render(r),
    }
}

#[cfg(test)]
mod tests;
