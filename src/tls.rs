//! TLS for Jazari's HTTP clients: rustls with the ring provider, installed
//! once per process before any client or server configuration is built; the
//! files a client may name (`--ca-file`, `--cert`, `--key`, or
//! `JAZARI_CA_FILE`, `JAZARI_CERT`, `JAZARI_KEY`).

use std::path::{Path, PathBuf};
use std::sync::Once;

/// Installs ring as the process's rustls provider (idempotent).
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another provider already installed (by an embedding program) is fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An async HTTP client that checks servers against the system's roots.
pub fn http_client() -> Result<reqwest::Client, String> {
    install_provider();
    reqwest::Client::builder().build().map_err(|e| format!("building the HTTP client failed: {e}"))
}

/// A client's TLS files: a private CA to trust (besides the system's), and
/// a certificate with its key for mutual TLS.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca_file: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTls {
    /// From the options, else the environment.
    pub fn from_args(ca_file: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Self {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        ClientTls {
            ca_file: ca_file.map(Path::to_path_buf).or_else(|| env("JAZARI_CA_FILE")),
            cert: cert.map(Path::to_path_buf).or_else(|| env("JAZARI_CERT")),
            key: key.map(Path::to_path_buf).or_else(|| env("JAZARI_KEY")),
        }
    }

    /// Adds the CA and the identity to a client builder; errors name the file.
    pub fn apply(&self, mut b: reqwest::blocking::ClientBuilder) -> Result<reqwest::blocking::ClientBuilder, String> {
        install_provider();
        let read =
            |p: &Path, what: &str| std::fs::read(p).map_err(|e| format!("cannot read the {what} {}: {e}", p.display()));
        if let Some(ca) = &self.ca_file {
            let pem = read(ca, "CA file")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{} is not PEM certificates: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("{} holds no certificate", ca.display()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        match (&self.cert, &self.key) {
            (Some(c), Some(k)) => {
                let mut pem = read(c, "certificate")?;
                pem.push(b'\n');
                pem.extend(read(k, "key")?);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    format!("{} and {} are not a PEM certificate and key: {e}", c.display(), k.display())
                })?;
                b = b.identity(id);
            }
            (None, None) => {}
            _ => {
                return Err(
                    "give both --cert and --key (or JAZARI_CERT and JAZARI_KEY) for a client certificate".into()
                );
            }
        }
        Ok(b)
    }
}
