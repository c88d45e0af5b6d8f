//! The HTTP client for the collector's ingest endpoint: reqwest over rustls
//! (ring), driven by a current-thread runtime on the caller's thread.
//!
//! TLS: the platform's CA certificates, or, with `--ca-file`, only the CAs
//! in that file (as curl's `--cacert` and Prometheus' `ca_file` do: a node
//! that talks to one collector of a private CA need trust nothing else, and
//! loads no system store; concatenate the system bundle into the file to
//! trust both); a client identity from `--cert` and `--key` (PEM) for
//! mutual TLS. A plain `http://` collector without `--ca-file` loads no CA
//! store at all. Proxies come from the environment (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `NO_PROXY`).
//!
//! Why a runtime of our own and not `reqwest::blocking`: the agent sends
//! from one thread anyway; `blocking` would add a second thread running the
//! same runtime and a channel between the two.

use super::answer::{Verdict, classify};
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Answers over this many bytes are cut (they are only read for their message).
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// The TLS files of a client.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// PEM file of the CA certificates to trust instead of the platform's.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// Why a client could not be set up. Every error names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the CA file {path}: {err}")]
    ReadCa { path: PathBuf, err: std::io::Error },
    #[error("the CA file {0} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)")]
    EmptyCa(PathBuf),
    #[error("the CA file {path} is not valid PEM: {why}")]
    BadCa { path: PathBuf, why: String },
    #[error("mutual TLS needs both --cert and --key; only {given} was given")]
    HalfIdentity { given: &'static str },
    #[error("cannot read the client {what} {path}: {err}")]
    ReadIdentity { what: &'static str, path: PathBuf, err: std::io::Error },
    #[error("the client certificate {cert} and key {key} do not make a TLS identity: {why}")]
    BadIdentity { cert: PathBuf, key: PathBuf, why: String },
    #[error("the token holds characters an HTTP header cannot carry")]
    BadToken,
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// A client for the collector's ingest endpoint.
pub struct Client {
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    url: String,
    auth: HeaderValue,
}

fn install_ring_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn bearer(token: &str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::BadToken)?;
    v.set_sensitive(true);
    Ok(v)
}

impl Client {
    /// A client for `collector` (a base URL) with `token`.
    pub fn new(collector: &str, token: &str, tls: &TlsFiles) -> Result<Self, ClientError> {
        install_ring_provider();
        let url = format!("{}/api/v1/reports", collector.trim_end_matches('/'));
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .user_agent(concat!("jazari-agent/", env!("CARGO_PKG_VERSION")));
        match &tls.ca_file {
            Some(path) => b = b.tls_certs_only(read_ca(path)?),
            None if url.starts_with("http://") => b = b.tls_certs_only(std::iter::empty()),
            None => {}
        }
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => b = b.identity(read_identity(cert, key)?),
            (None, None) => {}
            (Some(_), None) => return Err(ClientError::HalfIdentity { given: "--cert" }),
            (None, Some(_)) => return Err(ClientError::HalfIdentity { given: "--key" }),
        }
        let http = b.build().map_err(|e| ClientError::Setup(jazari_wire::errors::one_line(&e)))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self { http, rt, url, auth: bearer(token)? })
    }

    /// Where reports go.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Uses a new token from now on (a token file rewritten while running).
    pub fn set_token(&mut self, token: &str) -> Result<(), ClientError> {
        self.auth = bearer(token)?;
        Ok(())
    }

    /// Posts records (each one report's JSON) as one zstd-compressed array.
    pub fn post(&self, records: &[Vec<u8>]) -> Verdict {
        let body = match compress(records) {
            Ok(b) => b,
            Err(e) => return Verdict::Retry { after: None, why: format!("compressing: {e}") },
        };
        let req = self
            .http
            .post(&self.url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "zstd")
            .body(body);
        self.rt.block_on(async {
            let mut resp = match req.send().await {
                Ok(r) => r,
                Err(e) => return Verdict::Retry { after: None, why: transport_error(&e, &self.url) },
            };
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            let mut text = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                text.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - text.len())]);
                if text.len() >= MAX_ANSWER_BYTES {
                    break;
                }
            }
            classify(status, retry_after.as_deref(), &String::from_utf8_lossy(&text))
        })
    }
}

/// The JSON array of `records`, zstd-compressed as it is written (the
/// uncompressed array is never held whole). Telling zstd the size up front
/// lets it size its window and tables to the batch, not to the level's
/// default (a few MiB for what is usually one 10 KiB report).
fn compress(records: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let commas = records.len().saturating_sub(1) as u64;
    let len = records.iter().map(|r| r.len() as u64).sum::<u64>() + commas + 2;
    let mut z = zstd::stream::Encoder::new(Vec::new(), 3)?;
    z.set_pledged_src_size(Some(len))?;
    z.write_all(b"[")?;
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            z.write_all(b",")?;
        }
        z.write_all(r)?;
    }
    z.write_all(b"]")?;
    z.finish()
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = std::fs::read(path).map_err(|err| ClientError::ReadCa { path: path.into(), err })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| ClientError::BadCa { path: path.into(), why: jazari_wire::errors::one_line(&e) })?;
    if certs.is_empty() {
        return Err(ClientError::EmptyCa(path.into()));
    }
    Ok(certs)
}

fn read_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, ClientError> {
    let mut pem =
        std::fs::read(cert).map_err(|err| ClientError::ReadIdentity { what: "certificate", path: cert.into(), err })?;
    pem.push(b'\n');
    pem.extend(std::fs::read(key).map_err(|err| ClientError::ReadIdentity { what: "key", path: key.into(), err })?);
    reqwest::Identity::from_pem(&pem).map_err(|e| ClientError::BadIdentity {
        cert: cert.into(),
        key: key.into(),
        why: jazari_wire::errors::one_line(&e),
    })
}

/// Why a request got no answer, with what to do when it is TLS.
fn transport_error(e: &reqwest::Error, url: &str) -> String {
    if let Some(tls) = find_tls_error(e) {
        return format!("TLS handshake with {url} failed: {tls}{}", tls_hint(tls));
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // reqwest's own line repeats the URL; its causes say what happened.
    let why = e.source().map_or_else(|| e.to_string(), jazari_wire::errors::one_line);
    format!("{what} to {url}: {why}")
}

/// The rustls error behind an error, through causes and wrapped I/O errors
/// (an io::Error's `source()` skips the error it wraps).
fn find_tls_error<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let wrapped = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
    if let Some(inner) = wrapped.and_then(|w| find_tls_error(w)) {
        return Some(inner);
    }
    e.source().and_then(find_tls_error)
}

fn tls_hint(e: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            " (the collector's certificate is not signed by a CA this agent trusts: give --ca-file with the CA that signed it)"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            " (the certificate does not name the host in --collector: use the name it was issued for)"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => " (the collector's certificate has expired)",
        E::AlertReceived(A::CertificateRequired | A::HandshakeFailure | A::BadCertificate | A::UnknownCA) => {
            " (the collector wants a client certificate it trusts: give --cert and --key)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_one_compressed_json_array() {
        for records in
            [vec![], vec![b"{\"a\":1}".to_vec()], vec![b"{}".to_vec(), b"{\"b\":[2]}".to_vec(), b"{}".to_vec()]]
        {
            let json = zstd::decode_all(&compress(&records).unwrap()[..]).unwrap();
            let parsed: Vec<serde_json::Value> = serde_json::from_slice(&json).unwrap();
            assert_eq!(parsed.len(), records.len());
        }
    }
}
