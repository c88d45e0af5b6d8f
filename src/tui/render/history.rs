//! The History view: utilisation, power and allocated GPUs over a window.

use super::super::state::{App, WINDOWS};
use super::widgets::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};

pub fn history(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let (label, _) = WINDOWS[app.ui.window];
    let pts = &app.data.history;
    let [a, b, c] =
        Layout::vertical([Constraint::Ratio(1, 3), Constraint::Ratio(1, 3), Constraint::Ratio(1, 3)]).areas(area);
    let width = area.width.saturating_sub(2) as usize;
    let take = |v: Vec<u64>| -> Vec<u64> { v[v.len().saturating_sub(width)..].to_vec() };
    let util = take(pts.iter().map(|p| p.util_pct.unwrap_or(0.0).round() as u64).collect());
    let power = take(pts.iter().map(|p| p.power_w.round() as u64).collect());
    let alloc = take(pts.iter().map(|p| p.allocated_gpus.round() as u64).collect());
    let gpus = pts.iter().map(|p| p.gpus).max().unwrap_or(0);
    let last = |v: &Vec<u64>| v.last().copied().unwrap_or(0);
    let title = |what: String| Block::default().borders(Borders::TOP).title(what);
    f.render_widget(
        Sparkline::default()
            .block(title(format!(
                " utilisation, last {label} (w: 1h/24h/7d) · now {}% · NVML GPU utilisation ",
                last(&util)
            )))
            .data(&util)
            .max(100)
            .style(t.fg(Color::Green)),
        a,
    );
    let pmax = power.iter().copied().max().unwrap_or(1).max(1);
    f.render_widget(
        Sparkline::default()
            .block(title(format!(
                " power, last {label} · now {:.1} kW · peak {:.1} kW ",
                last(&power) as f64 / 1000.0,
                pmax as f64 / 1000.0
            )))
            .data(&power)
            .max(pmax)
            .style(t.fg(Color::Yellow)),
        b,
    );
    f.render_widget(
        Sparkline::default()
            .block(title(format!(" allocated GPUs, last {label} · now {} of {gpus} ", last(&alloc))))
            .data(&alloc)
            .max(gpus.max(1))
            .style(t.fg(Color::Cyan)),
        c,
    );
    if pts.is_empty() {
        f.render_widget(
            Paragraph::new(" no history yet for this window").style(t.dim()),
            Rect { height: 1, y: a.y + 1, ..a },
        );
    }
}
