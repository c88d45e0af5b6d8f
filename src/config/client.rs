//! Where clients (`jazari top`, `quota`, `report`, `sim`) find the collector:
//! options first, then `JAZARI_URL`, `JAZARI_TOKEN_FILE`, `JAZARI_CA_FILE`,
//! `JAZARI_CERT`, `JAZARI_KEY`, then `$XDG_CONFIG_HOME/jazari/client.toml`
//! (`~/.config/jazari/client.toml`), then `/etc/jazari/client.toml`.
//!
//! A client file names one collector (`url`) or several (`[[collector]]`
//! tables, each with its `url` and, where it differs from the file's own,
//! `name`, `token_file`, `ca_file`, `cert`, `key`).

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
    /// Several collectors (clusters), one `[[collector]]` table each, instead of `url`.
    #[serde(default, rename = "collector")]
    pub collectors: Vec<CollectorEntry>,
}

/// One collector of several; what it leaves out is the file's own (`token_file`, ...).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CollectorEntry {
    /// What to call the cluster until its collector answers with its own name.
    pub name: Option<String>,
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
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
                Ok(text) => return Self::parse(&text, &p).map(|f| Some((p, f))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
            }
        }
        Ok(None)
    }

    /// A client file's text, read from `path`: relative paths in it become relative to the file.
    pub fn parse(text: &str, path: &Path) -> Result<ClientFile, String> {
        let f: ClientFile =
            toml::from_str(text).map_err(|e| format!("{}: {}", path.display(), e.to_string().trim_end()))?;
        if f.url.is_some() && !f.collectors.is_empty() {
            return Err(format!(
                "{}: give either `url` (one collector) or `[[collector]]` tables (several), not both",
                path.display()
            ));
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let abs = |x: Option<PathBuf>| x.map(|x| if x.is_relative() { base.join(x) } else { x });
        let collectors = f
            .collectors
            .into_iter()
            .map(|c| CollectorEntry {
                token_file: abs(c.token_file),
                ca_file: abs(c.ca_file),
                cert: abs(c.cert),
                key: abs(c.key),
                ..c
            })
            .collect();
        Ok(ClientFile {
            token_file: abs(f.token_file),
            ca_file: abs(f.ca_file),
            cert: abs(f.cert),
            key: abs(f.key),
            url: f.url,
            collectors,
        })
    }
}
