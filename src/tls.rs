//! TLS for Jazari's HTTP clients: rustls with the ring provider, installed
//! once per process before any client is built.

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
