//! A small blocking client for the collector's API, shared by `jazari quota`,
//! `report`, `top` and `sim`: reqwest with rustls, a private CA and a client
//! certificate when given, proxies from the environment; [`network`]: several
//! collectors at once.

pub mod network;

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

    /// The one collector of `--url` (else `JAZARI_URL`, else the client file)
    /// with `--token-file` and the TLS options, as [`network::targets`] finds
    /// them; an error when the client file names several.
    pub fn from_args(url: Option<&str>, token_file: Option<&Path>, tls: &ClientTls) -> Result<Self> {
        let urls: Vec<String> = url.map(str::to_string).into_iter().collect();
        let mut all = network::targets(&urls, token_file, tls)?;
        if all.len() != 1 {
            bail!("this command talks to one collector and the client file names {}: give --url", all.len());
        }
        Ok(all.remove(0).client)
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
        let decode = |body: &[u8]| -> Result<T, ClientError> {
            let url = url.clone();
            if !(200..300).contains(&status) {
                let text = String::from_utf8_lossy(body).into_owned();
                let message = serde_json::from_str::<crate::api::ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
                return Err(ClientError::Refused { url, status, message });
            }
            serde_json::from_slice(body).map_err(|e| ClientError::Refused {
                url,
                status,
                message: format!("unexpected answer: {e}"),
            })
        };
        // A body of known length is taken whole from the client's runtime:
        // read piece by piece, each piece of several MB handed from its thread
        // to this one woke both (a fifth of the dashboard's CPU).
        if resp.content_length().is_some_and(|n| n <= BODY_MAX) {
            return decode(&resp.bytes().map_err(|e| unreachable(&e))?);
        }
        decode(&read_bytes(resp, BODY_MAX).map_err(|e| unreachable(&e))?)
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

/// The largest answer read.
const BODY_MAX: u64 = 512 << 20;

/// The body, refusing more than `max` bytes; the buffer is sized from
/// Content-Length up front.
fn read_bytes(resp: reqwest::blocking::Response, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(resp.content_length().unwrap_or(0).min(max) as usize);
    resp.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The body as text, refusing more than `max` bytes.
fn read_limited(resp: reqwest::blocking::Response, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_bytes(resp, max)?).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
