//! Several collectors at once (one per cluster of a network): which ones a
//! client command talks to, each with its own token and TLS files, and
//! asking all of them concurrently.

use super::Client;
use crate::config::{ClientFile, CollectorEntry};
use crate::tls::ClientTls;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a client looks when nothing names a collector.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9470";

/// The per-request timeout of the command-line clients.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One collector a command talks to.
#[derive(Clone)]
pub struct Target {
    /// Its name in the client file, if it has one there.
    pub name: Option<String>,
    pub client: Client,
}

impl Target {
    /// What to call it before (or without) its answer: its name in the client file, else its URL.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(self.client.base())
    }
}

/// The collectors to talk to: every `--url` given (`urls`), else `JAZARI_URL`,
/// else the client file's `[[collector]]` tables or its `url`, else
/// [`DEFAULT_URL`]. Each takes `--token-file` and the TLS options when given
/// (else `JAZARI_TOKEN_FILE`, ...), else its `[[collector]]` table's (a `--url`
/// equal to a table's `url` takes that table's), else the client file's own.
pub fn targets(urls: &[String], token_file: Option<&Path>, tls: &ClientTls) -> Result<Vec<Target>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let file = ClientFile::find().map_err(anyhow::Error::msg)?;
    let (file_path, f) = file.map(|(p, f)| (Some(p), f)).unwrap_or_default();
    let entry_for = |u: &str| f.collectors.iter().find(|c| same_url(&c.url, u)).cloned();
    let chosen: Vec<(String, Option<CollectorEntry>)> = if !urls.is_empty() {
        urls.iter().map(|u| (u.clone(), entry_for(u))).collect()
    } else if let Some(u) = env("JAZARI_URL") {
        vec![(u.clone(), entry_for(&u))]
    } else if !f.collectors.is_empty() {
        f.collectors.iter().map(|c| (c.url.clone(), Some(c.clone()))).collect()
    } else {
        vec![(f.url.clone().unwrap_or_else(|| DEFAULT_URL.into()), None)]
    };
    let token_arg = token_file.map(Path::to_path_buf).or_else(|| env("JAZARI_TOKEN_FILE").map(Into::into));
    let mut warned: Vec<PathBuf> = vec![];
    let mut out: Vec<Target> = vec![];
    for (url, entry) in chosen {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("the collector URL `{url}` must start with http:// or https://");
        }
        if out.iter().any(|t| same_url(t.client.base(), &url)) {
            bail!("the collector {url} is named twice");
        }
        let e = entry.unwrap_or_default();
        let token_file = token_arg.clone().or(e.token_file).or(f.token_file.clone()).with_context(|| {
            let searched: Vec<String> = ClientFile::locations().iter().map(|p| p.display().to_string()).collect();
            format!(
                "no token for {url}: give --token-file FILE (an admin or institute token from `jazari token add --out FILE`), \
                 set JAZARI_TOKEN_FILE, or write `token_file` in a client file ({})",
                searched.join(" or ")
            )
        })?;
        let token = jazari_wire::token::read(&token_file)?;
        if !warned.contains(&token_file) {
            if let Some(w) = jazari_wire::token::exposure(&token_file) {
                // Wrapped to 80 columns: it lands next to tables made for 80-column terminals.
                eprintln!("{}", crate::format::wrap(&format!("jazari: warning: {w}"), 80, "  "));
            }
            warned.push(token_file);
        }
        let tls = ClientTls {
            ca_file: tls.ca_file.clone().or(e.ca_file).or(f.ca_file.clone()),
            cert: tls.cert.clone().or(e.cert).or(f.cert.clone()),
            key: tls.key.clone().or(e.key).or(f.key.clone()),
        };
        tracing::debug!(url, client_file = ?file_path, "collector");
        let client = Client::with_tls(&url, &token, TIMEOUT, &tls).with_context(|| format!("the collector {url}"))?;
        out.push(Target { name: e.name, client });
    }
    Ok(out)
}

/// The same collector, whatever the trailing slashes.
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Runs `ask` against every target at once (a thread each, so the slowest
/// sets the pace, each under the client's timeout); answers in the targets' order.
pub fn each<T: Send, E: Send>(targets: &[Target], ask: impl Fn(&Client) -> Result<T, E> + Sync) -> Vec<Result<T, E>> {
    std::thread::scope(|s| {
        let ask = &ask;
        let running: Vec<_> = targets.iter().map(|t| s.spawn(move || ask(&t.client))).collect();
        running.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}
