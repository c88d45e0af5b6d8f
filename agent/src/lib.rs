//! Jazari agent: reads a GPU node (NVML, host, /proc) and reports to the collector.
//!
//! With default features off only [`wire`], the report format shared with the
//! collector, is built.

pub mod wire;

#[cfg(feature = "collect")]
pub mod gpu;
#[cfg(feature = "collect")]
pub mod host;
#[cfg(feature = "collect")]
pub mod procs;
#[cfg(feature = "collect")]
pub mod push;
#[cfg(feature = "collect")]
pub mod sampler;
#[cfg(feature = "collect")]
pub mod spool;

/// Now, UTC milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
