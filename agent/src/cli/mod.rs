//! The commands of the `jazari-agent` binary (the library does the work).

pub mod run;
pub mod settings;
pub mod spool;
