//! The History view: utilisation, power and allocated GPUs over a window, on
//! a time axis (blank where no report fell), with the live values as "now".

use super::super::state::{App, WINDOWS};
use super::chart::{chart, columns};
use super::widgets::{Theme, kw, pct};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph};

pub fn history(f: &mut Frame, area: Rect, app: &App, t: &Theme, now_ms: i64) {
    let (label, window_ms) = WINDOWS[app.ui.window];
    let pts = &app.data.history;
    let bucket = app.data.history_bucket_ms;
    let to = if app.data.fetched_ms > 0 { app.data.fetched_ms } else { now_ms };
    let [a, b, c] =
        Layout::vertical([Constraint::Ratio(1, 3), Constraint::Ratio(1, 3), Constraint::Ratio(1, 3)]).areas(area);
    let width = area.width as usize;
    let summary = app.data.cluster.as_ref().map(|c| &c.summary);
    let gpus = summary.map(|s| s.gpus as u64).or(pts.iter().map(|p| p.gpus).max()).unwrap_or(0);
    let section = |f: &mut Frame, r: Rect, title: String| -> Rect {
        let block = Block::default().borders(Borders::TOP).title(title);
        let inner = block.inner(r);
        f.render_widget(block, r);
        inner
    };

    let util = columns(pts, bucket, to, window_ms, width, |p| p.util_pct);
    let now = summary.and_then(|s| s.mean_util_pct).map(pct).unwrap_or_else(|| "-".into());
    let r = section(
        f,
        a,
        format!(" utilisation (NVML: a kernel ran), last {label} (w: 1h/24h/7d) · now {now} · blank: no reports "),
    );
    chart(f, r, &util, 100.0, t.fg(Color::Green), window_ms, t);

    let power = columns(pts, bucket, to, window_ms, width, |p| Some(p.power_w));
    let peak = power.iter().flatten().copied().fold(0.0, f64::max);
    let now = summary.map(|s| kw(s.power_w)).unwrap_or_else(|| "-".into());
    let r = section(f, b, format!(" power, last {label} · now {now} · peak {} ", kw(peak)));
    chart(f, r, &power, peak.max(1.0), t.fg(Color::Yellow), window_ms, t);

    let alloc = columns(pts, bucket, to, window_ms, width, |p| Some(p.allocated_gpus));
    let now = summary.map(|s| s.gpus_allocated.to_string()).unwrap_or_else(|| "-".into());
    let r = section(f, c, format!(" allocated GPUs, last {label} · now {now} of {gpus} "));
    chart(f, r, &alloc, gpus.max(1) as f64, t.fg(Color::Cyan), window_ms, t);

    if pts.is_empty() {
        f.render_widget(
            Paragraph::new(" no history yet for this window").style(t.dim()),
            Rect { height: 1, y: a.y + 1, ..a },
        );
    }
}
