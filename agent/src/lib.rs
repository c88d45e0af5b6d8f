//! Jazari agent: reads a GPU node and reports to the collector.
//!
//! - [`gpu`]: GPUs through NVML (nvml-wrapper): MIG slices, GPM activity, XID events on a thread;
//! - [`host`]: the host through sysinfo;
//! - [`procs`]: `/proc`: which user, unix group, Slurm job and pod each process belongs to;
//! - [`sampler`]: one numbered report from the three;
//! - [`spool`] and [`push`]: the on-disk spool and the sender that drains it to the collector.
//!
//! The report format itself lives in the `jazari-wire` crate, shared with the collector.

pub mod gpu;
pub mod host;
pub mod procs;
pub mod push;
pub mod sampler;
pub mod spool;
