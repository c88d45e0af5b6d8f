//! Drawing: one small function per screen area and one file per view, each
//! taking the frame, the area and the state. Table views take `&mut App` only
//! to record how many rows fit (`ui.page`, for PgUp/PgDn); nothing else here
//! changes state.

mod history;
mod institutes;
mod jobs;
mod nodes;
mod overview;
mod widgets;

use super::state::{App, KEYS, View};
use crate::format::{ago, fit};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};
use widgets::Theme;

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &mut App, now_ms: i64) {
    let t = Theme { color: app.ui.color };
    let area = f.area();
    if area.width < 20 || area.height < 5 {
        f.render_widget(Paragraph::new("jazari: enlarge the window"), area);
        return;
    }
    let banner = app.link.error.is_some();
    let [head, ban, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(banner)),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header(f, head, app, &t);
    if banner {
        banner_line(f, ban, app, &t, now_ms);
    }
    match app.ui.view {
        View::Overview => overview::overview(f, body, app, &t),
        View::Nodes => match app.ui.detail.clone() {
            Some(n) => nodes::node_detail(f, body, app, &t, &n),
            None => nodes::nodes(f, body, app, &t),
        },
        View::Jobs => match app.ui.detail.clone() {
            Some(j) => jobs::job_detail(f, body, app, &t, &j),
            None => jobs::jobs(f, body, app, &t),
        },
        View::Institutes => match app.ui.detail.clone() {
            Some(i) => institutes::institute_detail(f, body, app, &t, &i),
            None => institutes::institutes(f, body, app, &t),
        },
        View::History => history::history(f, body, app, &t),
    }
    footer(f, foot, app, &t, now_ms);
    if app.ui.help {
        help(f, area, &t);
    }
}

fn header(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let cluster = app.data.cluster.as_ref().map(|c| c.cluster.as_str()).unwrap_or("…");
    let mut spans = vec![Span::styled(format!(" Jazari {} ", fit(cluster, 16)), t.bold())];
    for (i, v) in View::ALL.iter().enumerate() {
        let label = format!(" {}:{} ", i + 1, v.title());
        spans.push(if *v == app.ui.view { Span::styled(label, t.selected()) } else { Span::raw(label) });
    }
    if area.width >= 96 {
        spans.push(Span::styled("  ?:keys q:quit", t.dim()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn banner_line(f: &mut Frame, area: Rect, app: &App, t: &Theme, now_ms: i64) {
    let (err, _) = app.link.error.clone().unwrap_or_default();
    let age = if app.data.fetched_ms > 0 {
        format!("data {} old", ago(now_ms - app.data.fetched_ms))
    } else {
        "no data yet".into()
    };
    let retry = app.link.retry_ms.map(|r| format!(" · retrying in {}", ago(r - now_ms))).unwrap_or_default();
    let text = format!(" collector unreachable ({}) · {age}{retry}", fit(&err, 60));
    f.render_widget(Paragraph::new(text).style(t.bad().add_modifier(Modifier::REVERSED)), area);
}

fn footer(f: &mut Frame, area: Rect, app: &App, t: &Theme, now_ms: i64) {
    if app.ui.filtering {
        f.render_widget(Paragraph::new(format!("/{}█  (Enter: keep, Esc: clear)", app.ui.filter)), area);
        return;
    }
    let mut parts = vec![];
    if let Some(c) = &app.data.cluster {
        parts.push(format!("{} of {} nodes reporting", c.summary.nodes_reporting, c.summary.nodes));
    }
    if app.data.fetched_ms > 0 {
        parts.push(format!("updated {} ago", ago(now_ms - app.data.fetched_ms)));
    }
    if app.ui.paused {
        parts.push("PAUSED (p)".into());
    }
    if !app.ui.filter.is_empty() {
        parts.push(format!("filter: {}", app.ui.filter));
    }
    parts.push(app.url.clone());
    f.render_widget(Paragraph::new(format!(" {}", parts.join(" · "))).style(t.dim()), area);
}

fn help(f: &mut Frame, area: Rect, t: &Theme) {
    let w = 46.min(area.width);
    let h = (KEYS.len() as u16 + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    let rows: Vec<Row> = KEYS.iter().map(|(k, what, _)| Row::new(vec![Cell::from(*k), Cell::from(*what)])).collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Table::new(rows, [Constraint::Length(11), Constraint::Min(10)])
            .block(Block::default().borders(Borders::ALL).title(" Keys (any key closes) ").title_style(t.bold())),
        r,
    );
}
