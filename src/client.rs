//! A small blocking client for the collector's API, shared by `jazari quota`,
//! `report`, `top` and `sim`: reqwest with rustls, a private CA and a client
//! certificate when given, proxies from the environment.

use crate::tls::ClientTls;
use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

#[derive(Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    auth: String,
}

/// Why a request failed, kept apart so callers can say "unreachable" vs "refused".
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the collector at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the collector answered {status} for {url}: {message}")]
    Refused { url: String, status: u16, message: String },
}

impl Client {
    /// A client over plain HTTP or HTTPS with the system's roots.
    pub fn new(base: &str, token: &str, timeout: Duration) -> Self {
        Self::with_tls(base, token, timeout, &ClientTls::default()).expect("a client without TLS files builds")
    }

    /// A client trusting `tls`'s CA besides the system's, with its certificate if any.
    pub fn with_tls(base: &str, token: &str, timeout: Duration, tls: &ClientTls) -> Result<Self> {
        let builder = reqwest::blocking::Client::builder().timeout(timeout).connect_timeout(Duration::from_secs(10));
        let http = tls.apply(builder).map_err(anyhow::Error::msg)?.build().context("building the HTTP client")?;
        Ok(Self { http, base: base.trim_end_matches('/').to_string(), auth: format!("Bearer {token}") })
    }

    /// From `--url`, `--token-file` and the TLS options, else `JAZARI_URL`,
    /// `JAZARI_TOKEN_FILE` (and `JAZARI_CA_FILE`, `JAZARI_CERT`, `JAZARI_KEY`),
    /// else the first client file (`$XDG_CONFIG_HOME/jazari/client.toml`,
    /// `/etc/jazari/client.toml`).
    pub fn from_args(url: Option<&str>, token_file: Option<&Path>, tls: &ClientTls) -> Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let file = crate::config::ClientFile::find().map_err(anyhow::Error::msg)?;
        let (file_path, f) = file.map(|(p, f)| (Some(p), f)).unwrap_or_default();
        let url = url
            .map(str::to_string)
            .or_else(|| env("JAZARI_URL"))
            .or(f.url.clone())
            .unwrap_or_else(|| "http://127.0.0.1:9470".into());
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("the collector URL `{url}` must start with http:// or https://");
        }
        let token_file = token_file
            .map(Path::to_path_buf)
            .or_else(|| env("JAZARI_TOKEN_FILE").map(Into::into))
            .or(f.token_file.clone())
            .with_context(|| {
                let searched: Vec<String> =
                    crate::config::ClientFile::locations().iter().map(|p| p.display().to_string()).collect();
                format!(
                    "no token: give --token-file FILE (an admin or institute token from `jazari token add --out FILE`), \
                     set JAZARI_TOKEN_FILE, or write `token_file` in a client file ({})",
                    searched.join(" or ")
                )
            })?;
        let token = jazari_wire::token::read(&token_file)?;
        if let Some(w) = jazari_wire::token::exposure(&token_file) {
            // Wrapped to 80 columns: it lands next to tables made for 80-column terminals.
            eprintln!("{}", crate::format::wrap(&format!("jazari: warning: {w}"), 80, "  "));
        }
        let tls = ClientTls {
            ca_file: tls.ca_file.clone().or(f.ca_file),
            cert: tls.cert.clone().or(f.cert),
            key: tls.key.clone().or(f.key),
        };
        tracing::debug!(url, client_file = ?file_path, "collector");
        Self::with_tls(&url, &token, Duration::from_secs(30), &tls)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET a path (with query) and decode the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: &dyn std::error::Error| ClientError::Unreachable {
            url: url.clone(),
            why: jazari_wire::errors::one_line(e),
        };
        let resp = self.http.get(&url).header("Authorization", &self.auth).send().map_err(|e| unreachable(&e))?;
        let status = resp.status().as_u16();
        let text = read_limited(resp, 512 << 20).map_err(|e| unreachable(&e))?;
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<crate::api::ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
            return Err(ClientError::Refused { url, status, message });
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Refused {
            url,
            status,
            message: format!("unexpected answer: {e}"),
        })
    }

    /// GET a path with a query (one of the API's query types) and decode the JSON answer.
    pub fn get_with<Q: serde::Serialize, T: DeserializeOwned>(&self, path: &str, query: &Q) -> Result<T, ClientError> {
        let q = serde_urlencoded::to_string(query).map_err(|e| ClientError::Refused {
            url: format!("{}{path}", self.base),
            status: 0,
            message: format!("cannot encode the query: {e}"),
        })?;
        if q.is_empty() { self.get(path) } else { self.get(&format!("{path}?{q}")) }
    }

    /// POST a JSON body (optionally zstd-compressed); returns status and body.
    pub fn post_json(&self, path: &str, json: &[u8], zstd_level: Option<i32>) -> Result<(u16, String), ClientError> {
        match zstd_level {
            Some(l) => {
                let body = zstd::encode_all(json, l).map_err(|e| ClientError::Unreachable {
                    url: format!("{}{path}", self.base),
                    why: jazari_wire::errors::one_line(&e),
                })?;
                self.post_body(path, body, "application/json", Some("zstd"))
            }
            None => self.post_body(path, json.to_vec(), "application/json", None),
        }
    }

    /// POST a body as it is (already encoded with `encoding`, when given); returns status and body.
    pub fn post_body(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        encoding: Option<&str>,
    ) -> Result<(u16, String), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.post(&url).header("Authorization", &self.auth).header("Content-Type", content_type);
        if let Some(e) = encoding {
            req = req.header("Content-Encoding", e);
        }
        let resp = req
            .body(body)
            .send()
            .map_err(|e| ClientError::Unreachable { url: url.clone(), why: jazari_wire::errors::one_line(&e) })?;
        let status = resp.status().as_u16();
        let text = read_limited(resp, 16 << 20).unwrap_or_default();
        Ok((status, text))
    }
}

/// The body as text, refusing more than `max` bytes. The buffer is sized
/// from Content-Length up front: the dashboard reads several MB every
/// refresh, and growing by doubling copied it over and over.
fn read_limited(resp: reqwest::blocking::Response, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(resp.content_length().unwrap_or(0).min(max) as usize);
    resp.take(max).read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
