//! What the agent and the collector share.
//!
//! - [`report`]: the versioned wire format, one definition for both sides;
//! - [`decode`] and [`validate`]: reading a posted body and the limits every
//!   value must respect ([`bounded`]: list lengths, counted while decoding);
//! - small pieces both binaries need: [`now_ms`], [`duration`] (durations
//!   written as `10s`, `5m`, `48h`), [`token`] (token files) and, with the
//!   `logging` feature, [`logging`].
//!
//! Nothing here does I/O beyond reading a token file; the crate has no
//! dependency on NVML, HTTP or a database.

pub mod bounded;
#[cfg(feature = "cli")]
pub mod cli_docs;
pub mod decode;
pub mod duration;
pub mod errors;
#[cfg(feature = "logging")]
pub mod logging;
pub mod report;
pub mod token;
pub mod validate;

pub use bounded::DecodeLimits;
pub use decode::{DecodeError, decode, decode_with};
pub use report::*;
pub use validate::{Invalid, Limits, validate};

/// Now, UTC milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests;
