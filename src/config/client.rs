//! Where clients (`jazari top`, `quota`, `report`, `sim`) find the collector:
//! options first, then `JAZARI_URL`, `JAZARI_TOKEN_FILE`, `JAZARI_CA_FILE`,
//! `JAZARI_CERT`, `JAZARI_KEY`, then `$XDG_CONFIG_HOME/jazari/client.toml`
//! (`~/.config/jazari/client.toml`), then `/etc/jazari/client.toml`.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The collector's configuration when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/jazari/jazari.toml";

/// A client configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// Collector URL (`https://collector.example:9470`).
    pub url: Option<String>,
    /// File holding an admin or institute token.
    pub token_file: Option<PathBuf>,
    /// PEM CA certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key, for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientFile {
    /// The files searched, in order.
    pub fn locations() -> Vec<PathBuf> {
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
        xdg.map(|d| d.join("jazari/client.toml"))
            .into_iter()
            .chain([PathBuf::from("/etc/jazari/client.toml")])
            .collect()
    }

    /// The first client file that exists, read; an unreadable or invalid one is an error naming it.
    pub fn find() -> Result<Option<(PathBuf, ClientFile)>, String> {
        for p in Self::locations() {
            match std::fs::read_to_string(&p) {
                Ok(text) => {
                    let f: ClientFile =
                        toml::from_str(&text).map_err(|e| format!("{}: {}", p.display(), e.to_string().trim_end()))?;
                    // Relative paths in the file are relative to it.
                    let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                    let abs = |x: Option<PathBuf>| x.map(|x| if x.is_relative() { base.join(x) } else { x });
                    let f = ClientFile {
                        token_file: abs(f.token_file),
                        ca_file: abs(f.ca_file),
                        cert: abs(f.cert),
                        key: abs(f.key),
                        url: f.url,
                    };
                    return Ok(Some((p, f)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
            }
        }
        Ok(None)
    }
}
