//! A small blocking client for the collector's API, shared by `jazari quota`,
//! `report`, `top` and `sim`.

use anyhow::{Context, Result, bail};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
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
    pub fn new(base: &str, token: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Self { agent, base: base.trim_end_matches('/').to_string(), auth: format!("Bearer {token}") }
    }

    /// From `--url` and `--token-file` (or `JAZARI_URL`, `JAZARI_TOKEN_FILE`).
    pub fn from_args(url: Option<&str>, token_file: Option<&Path>) -> Result<Self> {
        let url = url
            .map(str::to_string)
            .or_else(|| std::env::var("JAZARI_URL").ok())
            .unwrap_or_else(|| "http://127.0.0.1:9470".into());
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url `{url}` must start with http:// or https://");
        }
        let file = token_file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("JAZARI_TOKEN_FILE").map(Into::into))
            .context("give --token-file FILE with an admin or institute token (from `jazari token add`)")?;
        let token = jazari_wire::token::read(&file)?;
        Ok(Self::new(&url, &token, Duration::from_secs(30)))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET a path (with query) and decode the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .header("Authorization", &self.auth)
            .call()
            .map_err(|e| ClientError::Unreachable { url: url.clone(), why: e.to_string() })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(512 << 20)
            .read_to_string()
            .map_err(|e| ClientError::Unreachable { url: url.clone(), why: e.to_string() })?;
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
        let url = format!("{}{path}", self.base);
        let mut req =
            self.agent.post(&url).header("Authorization", &self.auth).header("Content-Type", "application/json");
        let body;
        let payload: &[u8] = match zstd_level {
            Some(l) => {
                body = zstd::encode_all(json, l)
                    .map_err(|e| ClientError::Unreachable { url: url.clone(), why: e.to_string() })?;
                req = req.header("Content-Encoding", "zstd");
                &body
            }
            None => json,
        };
        let mut resp =
            req.send(payload).map_err(|e| ClientError::Unreachable { url: url.clone(), why: e.to_string() })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok((status, text))
    }
}
