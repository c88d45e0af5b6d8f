//! `jazari top`: the dashboard.
//!
//! A background thread fetches from the collector on the refresh interval and
//! reconnects with capped backoff; the draw loop only reads the last state, so
//! a slow or absent collector never stalls the screen.

pub mod render;
pub mod state;
#[cfg(test)]
mod tests;

use crate::api::cluster::{ClusterView, JobsResponse};
use crate::api::findings::FindingsResponse;
use crate::api::history::{SeriesQuery, SeriesResponse};
use crate::api::paths;
use crate::api::quota::QuotasResponse;
use crate::client::{Client, ClientError};
use crate::time::now_ms;
use anyhow::Result;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use state::{App, Data, Link, WINDOWS};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// What the fetcher shares with the draw loop.
#[derive(Default)]
struct Shared {
    data: Option<Data>,
    link: Link,
    fresh: bool,
}

/// Fetches everything the views need, once.
pub fn fetch(client: &Client, window: usize) -> Result<Data, ClientError> {
    let cluster: ClusterView = client.get(paths::CLUSTER)?;
    let jobs: JobsResponse = client.get(paths::JOBS)?;
    let quotas: QuotasResponse = client.get(paths::QUOTAS)?;
    let series = |window: &str, points: usize| -> Result<SeriesResponse, ClientError> {
        client.get_with(paths::CLUSTER_HISTORY, &SeriesQuery { window: Some(window.into()), points: Some(points) })
    };
    let recent = series("24h", 240)?;
    let history = series(WINDOWS[window].0, 300)?;
    // Findings span institutes: an institute token is refused them, which is fine.
    let findings = match client.get::<FindingsResponse>(paths::FINDINGS) {
        Ok(f) => f.findings,
        Err(ClientError::Refused { status: 403, .. }) => vec![],
        Err(e) => return Err(e),
    };
    Ok(Data {
        cluster: Some(cluster),
        jobs: jobs.jobs,
        quotas: quotas.institutes,
        recent: recent.points,
        history: history.points,
        findings,
        fetched_ms: now_ms(),
    })
}

fn fetcher(
    client: Client,
    refresh: Duration,
    shared: Arc<Mutex<Shared>>,
    window: Arc<AtomicUsize>,
    paused: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    wake: mpsc::Receiver<()>,
) {
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let mut wait = refresh;
        if !paused.load(Ordering::Relaxed) {
            match fetch(&client, window.load(Ordering::Relaxed)) {
                Ok(d) => {
                    failures = 0;
                    let mut s = shared.lock().unwrap();
                    s.data = Some(d);
                    s.link = Link::default();
                    s.fresh = true;
                }
                Err(e) => {
                    tracing::warn!("fetch failed: {e}");
                    // Capped exponential backoff: 1, 2, 4, … 30 s.
                    wait = Duration::from_secs(1 << failures.min(5)).min(Duration::from_secs(30));
                    failures += 1;
                    let now = now_ms();
                    let mut s = shared.lock().unwrap();
                    let since = s.link.error.as_ref().map(|e| e.1).unwrap_or(now);
                    let msg = match &e {
                        ClientError::Unreachable { why, .. } => why.clone(),
                        ClientError::Refused { status, message, .. } => format!("{status}: {message}"),
                    };
                    s.link = Link { error: Some((msg, since)), retry_ms: Some(now + wait.as_millis() as i64) };
                    s.fresh = true;
                }
            }
        }
        match wake.recv_timeout(wait) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Names a key as the key table does.
fn key_name(code: KeyCode) -> Option<String> {
    Some(match code {
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "BackTab".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Up => "Up".into(),
        KeyCode::Down => "Down".into(),
        KeyCode::PageUp => "PageUp".into(),
        KeyCode::PageDown => "PageDown".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::Backspace => "Backspace".into(),
        _ => return None,
    })
}

/// Whether colour is allowed: `NO_COLOR` set to anything non-empty turns it off.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs the dashboard until `q`.
pub fn run(client: Client, refresh: Duration) -> Result<()> {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let window = Arc::new(AtomicUsize::new(1));
    let paused = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (wake_tx, wake_rx) = mpsc::channel();
    let mut app = App { url: client.base().to_string(), ..Default::default() };
    app.ui.color = color_allowed();
    let th = {
        let (shared, window, paused, stop) = (shared.clone(), window.clone(), paused.clone(), stop.clone());
        std::thread::Builder::new()
            .name("fetch".into())
            .spawn(move || fetcher(client, refresh, shared, window, paused, stop, wake_rx))?
    };
    // ratatui::init restores the terminal on panic too.
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            {
                let mut s = shared.lock().unwrap();
                if s.fresh {
                    s.fresh = false;
                    if let Some(d) = s.data.take() {
                        app.set_data(d);
                    }
                    if s.link.error.is_some() {
                        app.link = s.link.clone();
                    }
                }
            }
            terminal.draw(|f| render::draw(f, &mut app, now_ms()))?;
            if event::poll(Duration::from_millis(250))?
                && let Event::Key(k) = event::read()?
                && k.kind != KeyEventKind::Release
            {
                if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                    break;
                }
                let Some(name) = key_name(k.code) else { continue };
                if app.ui.filtering {
                    app.filter_key(&name);
                } else if let Some(cmd) = state::command_for(&name, k.modifiers.contains(KeyModifiers::SHIFT)) {
                    let before = app.ui.window;
                    app.apply(cmd);
                    paused.store(app.ui.paused, Ordering::Relaxed);
                    if app.ui.window != before {
                        window.store(app.ui.window, Ordering::Relaxed);
                        let _ = wake_tx.send(());
                    }
                }
                if app.ui.quit {
                    break;
                }
            }
        }
        Ok(())
    })();
    ratatui::restore();
    stop.store(true, Ordering::Relaxed);
    drop(wake_tx);
    let _ = th.join();
    result
}

/// Where the dashboard logs (never to the terminal it draws on).
pub fn log_path() -> std::path::PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("jazari").join("top.log")
}
