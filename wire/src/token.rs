//! Token files: the secret of a `jazari token add` token, on the first
//! non-empty line of a file readable only by its user.

use std::path::Path;

/// Why a token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("token file {path} is empty")]
    Empty { path: String },
}

/// Reads a token file: the first non-empty line, trimmed.
pub fn read(path: &Path) -> Result<String, TokenFileError> {
    let p = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read { path: p(), source })?;
    let tok = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    if tok.is_empty() {
        return Err(TokenFileError::Empty { path: p() });
    }
    Ok(tok.to_string())
}
