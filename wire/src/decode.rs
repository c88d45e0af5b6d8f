//! Decoding a posted body: one report or a JSON array of reports.

use crate::Report;
use crate::bounded::{self, DecodeLimits};
use serde::{Deserialize, Deserializer};

/// Why a body did not decode, naming the field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match field { Some(f) => format!("report field `{f}`: {message}"), None => format!("report is not valid: {message}") })]
pub struct DecodeError {
    /// Path of the field, for example `[0].gpus[2].util_gpu_pct`.
    pub field: Option<String>,
    pub message: String,
}

/// Decodes one report or an array of reports with the default
/// [`DecodeLimits`]. Unknown fields are ignored (newer agents may add optional
/// fields); the version is checked by [`crate::validate`].
pub fn decode(body: &[u8]) -> Result<Vec<Report>, DecodeError> {
    decode_with(body, DecodeLimits::default())
}

/// The reports of a batch (an array), counted against `limits.reports`.
struct Batch(Vec<Report>);

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bounded::seq(d, bounded::List::Reports).map(Batch)
    }
}

/// Decodes one report or an array of reports, refusing a body over `limits`
/// as soon as the first item too many is read (memory stays bounded by the
/// limits, whatever the body holds).
pub fn decode_with(body: &[u8], limits: DecodeLimits) -> Result<Vec<Report>, DecodeError> {
    let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    bounded::with_limits(limits, || {
        bounded::next_report();
        // Fast path without path tracking; decode again to name the field only on error.
        // The body is checked as UTF-8 once, whole, so the strings in it are not
        // checked again one by one (a few per cent of ingest's CPU); a body that is
        // not UTF-8 takes the slow path, which says where.
        let fast = std::str::from_utf8(body).map_err(drop).and_then(|text| {
            if array {
                serde_json::from_str::<Batch>(text).map(|b| b.0).map_err(drop)
            } else {
                serde_json::from_str(text).map(|r| vec![r]).map_err(drop)
            }
        });
        fast.map_err(|()| {
            bounded::next_report();
            let de = &mut serde_json::Deserializer::from_slice(body);
            let result = if array {
                serde_path_to_error::deserialize::<_, Batch>(de).map(drop)
            } else {
                serde_path_to_error::deserialize::<_, Report>(de).map(drop)
            };
            match result {
                Ok(()) => DecodeError { field: None, message: "not valid JSON for the wire format".into() },
                Err(e) => {
                    let path = e.path().to_string();
                    let message = e.into_inner().to_string();
                    let field = (!path.is_empty() && path != ".").then_some(path);
                    DecodeError { field, message }
                }
            }
        })
    })
}
