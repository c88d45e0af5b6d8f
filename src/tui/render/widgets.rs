//! What every view draws with: the theme (colour or none), bars, selectable tables.

use super::super::focus::Whole;
use super::super::state::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Paragraph, Table, TableState};

/// Styles, or none of them when colour is off (`NO_COLOR`).
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(&self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }
    pub fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn dim(&self) -> Style {
        if self.color { Style::default().fg(Color::DarkGray) } else { Style::default() }
    }
    pub fn util(&self, u: f64) -> Style {
        self.fg(match u {
            u if u < 25.0 => Color::Blue,
            u if u < 50.0 => Color::Cyan,
            u if u < 75.0 => Color::Green,
            _ => Color::LightGreen,
        })
    }
    pub fn bad(&self) -> Style {
        if self.color { Style::default().fg(Color::Red).add_modifier(Modifier::BOLD) } else { self.bold() }
    }
    pub fn warn(&self) -> Style {
        if self.color { Style::default().fg(Color::Magenta) } else { Style::default() }
    }
}

pub fn bar(frac: f64, width: usize) -> String {
    let frac = frac.clamp(0.0, 1.0);
    let full = (frac * width as f64).round() as usize;
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

/// A table with a selected row, under a titled top border.
pub fn selectable(f: &mut Frame, area: Rect, table: Table, title: &str, st: &mut TableState, t: &Theme) {
    let block = Block::default().borders(Borders::TOP).title(title.to_string());
    f.render_stateful_widget(table.block(block).row_highlight_style(t.selected()), area, st);
}

/// The rows worth building: a window of the table around the selection
/// (tables of thousands of nodes only build what shows).
pub fn window(app: &App, rows: usize, area: Rect) -> (usize, usize, TableState) {
    let page = area.height.saturating_sub(2).max(1) as usize;
    let sel = app.selected().min(rows.saturating_sub(1));
    let start = sel.saturating_sub(page.saturating_sub(1)).min(rows.saturating_sub(page));
    let end = (start + page).min(rows);
    let mut st = TableState::default();
    if rows > 0 {
        st.select(Some(sel - start));
    }
    (start, end, st)
}

/// The widths a table gives its columns in `width` cells (as ratatui lays
/// them out: one space between columns), so a bar can fill exactly its cell.
pub fn column_widths(width: u16, widths: &[Constraint]) -> Vec<u16> {
    Layout::horizontal(widths.iter().copied())
        .flex(Flex::Start)
        .spacing(1)
        .split(Rect::new(0, 0, width, 1))
        .iter()
        .map(|r| r.width)
        .collect()
}

/// A percentage without a sign on zero ("0%", never "-0%").
pub fn pct(v: f64) -> String {
    format!("{:.0}%", nonneg_zero(v, 0))
}

/// Kilowatts from watts with one decimal, never "-0.0".
pub fn kw(w: f64) -> String {
    format!("{:.1} kW", nonneg_zero(w / 1000.0, 1))
}

/// `v`, or 0 when it rounds to zero at `decimals` (no "-0").
pub fn nonneg_zero(v: f64, decimals: i32) -> f64 {
    if (v * 10f64.powi(decimals)).round() == 0.0 { 0.0 } else { v }
}

/// The short reason a quota is in its state: "cap", "proj." (projection), "grant", "account".
pub fn short_reason(reasons: &[String]) -> &'static str {
    match reasons.first().map(String::as_str) {
        Some(r) if r.contains("cap") => "cap",
        Some(r) if r.contains("projected") => "proj.",
        Some(r) if r.starts_with("account") => "account",
        Some(_) => "grant",
        None => "",
    }
}

/// Records where a table's rows are drawn (for PgUp/PgDn and the mouse):
/// under its titled border and its header, from row `start` on.
pub fn record(app: &mut App, area: Rect, start: usize) {
    app.ui.page = area.height.saturating_sub(2).max(1) as usize;
    app.ui.table_y = Some(area.y + 2);
    app.ui.table_start = start;
}

/// A drill-down's subject whole; else draws that it is being fetched, or
/// that it is `gone` ("job 4711" "has ended"), and gives None.
pub fn whole_or_say<'a, T>(f: &mut Frame, area: Rect, w: Whole<'a, T>, subject: &str, gone: &str) -> Option<&'a T> {
    let text = match w {
        Whole::Here(x) => return Some(x),
        Whole::Fetching => format!("{subject}: fetching it whole… (Esc: back)"),
        Whole::Gone => format!("{subject} {gone} (Esc: back)"),
    };
    f.render_widget(Paragraph::new(text), area);
    None
}
