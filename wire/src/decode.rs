//! Decoding a posted body: one report or a JSON array of reports.

use crate::Report;

/// Why a body did not decode, naming the field at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match field { Some(f) => format!("report field `{f}`: {message}"), None => format!("report is not valid: {message}") })]
pub struct DecodeError {
    /// Path of the field, for example `[0].gpus[2].util_gpu_pct`.
    pub field: Option<String>,
    pub message: String,
}

/// Decodes one report or an array of reports. Unknown fields are ignored
/// (newer agents may add optional fields); the version is checked by
/// [`crate::validate`].
pub fn decode(body: &[u8]) -> Result<Vec<Report>, DecodeError> {
    let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    // Fast path without path tracking; decode again to name the field only on error.
    let fast = if array { serde_json::from_slice(body) } else { serde_json::from_slice(body).map(|r| vec![r]) };
    fast.map_err(|_| {
        let de = &mut serde_json::Deserializer::from_slice(body);
        let result = if array {
            serde_path_to_error::deserialize::<_, Vec<Report>>(de).map(drop)
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
}
