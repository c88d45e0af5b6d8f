//! What every view draws with: the theme (colour or none), bars, selectable tables.

use super::super::state::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Borders, Table, TableState};

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
