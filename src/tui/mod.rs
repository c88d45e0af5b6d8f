//! `jazari top`: the dashboard.
//!
//! A background thread fetches from the collector on the refresh interval and
//! reconnects with capped backoff; the draw loop only reads the last state, so
//! a slow or absent collector never stalls the screen. With several
//! collectors, each has its own thread and backoff, and the draw loop merges
//! their last answers when one changes ([`network`]).

mod fetch;
#[cfg(test)]
mod fetch_tests;
mod filter;
pub mod focus;
mod lists;
pub mod network;
pub mod render;
pub mod state;
#[cfg(test)]
mod tests;

use crate::client::network::Target;
use crate::client::{Client, ClientError};
use crate::time::now_ms;
use anyhow::Result;
use focus::Focus;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEventKind, KeyModifiers, MouseButton,
    MouseEventKind,
};
use state::{App, Data, Link};
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

/// What the draw loop tells the fetchers.
struct Asks {
    window: AtomicUsize,
    /// Whether the History view is shown (its series is fetched only then).
    history: AtomicBool,
    paused: AtomicBool,
    stop: AtomicBool,
    /// The open drill-down, as the merged view names it.
    focus: Mutex<Option<Focus>>,
    /// Several collectors: names carry `CLUSTER/`.
    multi: bool,
}

fn fetcher(client: Client, refresh: Duration, shared: Arc<Mutex<Shared>>, asks: Arc<Asks>, wake: mpsc::Receiver<()>) {
    let mut failures = 0u32;
    let mut usage = fetch::UsageCache::default();
    let mut versions = fetch::Versions::default();
    // This collector's cluster, once it answered (several: the focus names it).
    let mut cluster: Option<String> = None;
    // Woken: the screen needs what the data has not (a drill-down, the
    // History view): fetched even while refresh is paused.
    let mut woken = false;
    while !asks.stop.load(Ordering::Relaxed) {
        let mut wait = refresh;
        if !asks.paused.load(Ordering::Relaxed) || woken {
            let focus = asks.focus.lock().unwrap().clone();
            let focus = match (focus, asks.multi) {
                (Some(f), true) => cluster.as_deref().and_then(|c| f.within(c)),
                (f, _) => f,
            };
            let window = asks.history.load(Ordering::Relaxed).then(|| asks.window.load(Ordering::Relaxed));
            match fetch::fetch(&client, window, &mut usage, &mut versions, focus.as_ref()) {
                Ok(d) => {
                    failures = 0;
                    if let Some(c) = &d.cluster {
                        cluster = Some(c.cluster.clone());
                    }
                    let mut s = shared.lock().unwrap();
                    // Data the draw loop has not taken yet takes this in (both may be deltas).
                    match s.data.as_mut() {
                        Some(held) => fetch::absorb(held, d),
                        None => s.data = Some(d),
                    }
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
        woken = match wake.recv_timeout(wait) {
            Ok(()) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
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

/// Takes in what the fetchers brought since the last look: with one
/// collector its data and link as they are, with several their merge.
/// Returns whether anything came.
fn take_in(shared: &[Arc<Mutex<Shared>>], parts: &mut [network::Part], app: &mut App) -> bool {
    if let [one] = shared {
        let mut s = one.lock().unwrap();
        if !s.fresh {
            return false;
        }
        s.fresh = false;
        if let Some(d) = s.data.take() {
            let mut held = std::mem::take(&mut app.data);
            fetch::absorb(&mut held, d);
            app.set_data(held);
        }
        if s.link.error.is_some() {
            app.link = s.link.clone();
        }
        return true;
    }
    let mut changed = false;
    for (sh, part) in shared.iter().zip(parts.iter_mut()) {
        let mut s = sh.lock().unwrap();
        if s.fresh {
            s.fresh = false;
            changed = true;
            if let Some(d) = s.data.take() {
                let mut held = part.data.take().unwrap_or_default();
                fetch::absorb(&mut held, d);
                part.data = Some(held);
            }
            part.link = s.link.clone();
        }
    }
    if changed {
        app.set_data(network::merge(parts));
        app.clusters = network::statuses(parts);
    }
    changed
}

/// Runs the dashboard on these collectors until `q`; with `mouse`, clicks
/// and the wheel work too (and the terminal's own selection needs Shift).
pub fn run(targets: Vec<Target>, refresh: Duration, mouse: bool) -> Result<()> {
    let asks = Arc::new(Asks {
        window: AtomicUsize::new(1),
        history: AtomicBool::new(false),
        paused: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        focus: Mutex::new(None),
        multi: targets.len() > 1,
    });
    let url = match targets.as_slice() {
        [one] => one.client.base().to_string(),
        all => format!("{} collectors", all.len()),
    };
    let mut app = App { url, ..Default::default() };
    let mut parts: Vec<network::Part> = targets
        .iter()
        .map(|t| network::Part { label: t.label().to_string(), url: t.client.base().to_string(), ..Default::default() })
        .collect();
    if parts.len() > 1 {
        app.clusters = network::statuses(&parts);
    }
    app.ui.color = color_allowed();
    let (mut shared, mut wakes, mut threads) = (vec![], vec![], vec![]);
    for t in targets {
        let one = Arc::new(Mutex::new(Shared::default()));
        let (wake_tx, wake_rx) = mpsc::channel();
        let (sh, asks) = (one.clone(), asks.clone());
        threads.push(
            std::thread::Builder::new()
                .name("fetch".into())
                .spawn(move || fetcher(t.client, refresh, sh, asks, wake_rx))?,
        );
        shared.push(one);
        wakes.push(wake_tx);
    }
    // ratatui::init restores the terminal on panic too.
    let mut terminal = ratatui::init();
    if mouse {
        let _ = ratatui::crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    }
    let result = (|| -> Result<()> {
        // A frame is drawn when data or an event came, and once a second
        // while a clock is on screen ("retrying in 3 s"), not on every wake-up.
        let mut dirty = true;
        let mut drawn_ms = 0;
        let mut wants = (None, false);
        loop {
            // A drill-down opened or closed, or the History view was entered or
            // left: the fetchers ask for what it shows at once.
            let now_wants = (app.focus(), app.ui.view == state::View::History);
            if now_wants != wants {
                wants = now_wants;
                *asks.focus.lock().unwrap() = wants.0.clone();
                asks.history.store(wants.1, Ordering::Relaxed);
                for w in &wakes {
                    let _ = w.send(());
                }
            }
            dirty |= take_in(&shared, &mut parts, &mut app);
            let now = now_ms();
            if dirty || (now - drawn_ms >= 1000 && app.clocks_shown()) {
                terminal.draw(|f| render::draw(f, &mut app, now))?;
                (dirty, drawn_ms) = (false, now);
            }
            if !event::poll(Duration::from_millis(250))? {
                continue;
            }
            dirty = true;
            let ev = event::read()?;
            if let Event::Mouse(m) = ev {
                match m.kind {
                    MouseEventKind::Down(MouseButton::Left) => app.click(m.column, m.row),
                    MouseEventKind::ScrollUp => app.apply(state::Command::Up),
                    MouseEventKind::ScrollDown => app.apply(state::Command::Down),
                    _ => {}
                }
                continue;
            }
            if let Event::Key(k) = ev
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
                    asks.paused.store(app.ui.paused, Ordering::Relaxed);
                    if app.ui.window != before {
                        asks.window.store(app.ui.window, Ordering::Relaxed);
                        for w in &wakes {
                            let _ = w.send(());
                        }
                    }
                }
                if app.ui.quit {
                    break;
                }
            }
        }
        Ok(())
    })();
    if mouse {
        let _ = ratatui::crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    asks.stop.store(true, Ordering::Relaxed);
    drop(wakes);
    for th in threads {
        let _ = th.join();
    }
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
