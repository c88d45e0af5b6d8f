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

/// Why a token file is exposed: readable or writable by others than its
/// owner (mode bits 0o077). `None` when only its owner may read it.
pub fn exposure(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "token file {} has mode {mode:03o}: others on this machine can read the secret; `chmod 600 {}` \
             (or make it with `jazari token add --out FILE`)",
            path.display(),
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn exposed_token_files_are_named() {
        let dir = std::env::temp_dir().join(format!("jazari-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t");
        std::fs::write(&f, "jzr_abc_def\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(exposure(&f).unwrap().contains("644"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(exposure(&f), None);
        assert_eq!(read(&f).unwrap(), "jzr_abc_def");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
