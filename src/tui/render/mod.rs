//! Drawing: one small function per screen area and one file per view, each
//! taking the frame, the area and the state. Table views take `&mut App` only
//! to record how many rows fit (`ui.page`, for PgUp/PgDn); nothing else here
//! changes state.

mod chart;
mod clusters;
mod findings;
mod history;
mod institutes;
mod jobs;
mod nodes;
mod overview;
mod users;
mod widgets;

use super::filter;
use super::state::{App, KEYS, View};
use crate::api::findings::Severity;
use crate::format::{ago, fit};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use widgets::Theme;

#[cfg(test)]
pub fn bar_for_tests(frac: f64, width: usize) -> String {
    widgets::bar(frac, width)
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &mut App, now_ms: i64) {
    let t = Theme { color: app.ui.color };
    let area = f.area();
    app.ui.table_y = None;
    app.ui.tabs.clear();
    if area.width < 20 || area.height < 5 {
        f.render_widget(Paragraph::new("jazari: enlarge the window"), area);
        return;
    }
    let banner = app.link.error.is_some();
    let strip = clusters::lines(app, area.width as usize, (area.height as usize / 4).max(1), &t, now_ms);
    let [head, nets, ban, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(strip.len() as u16),
        Constraint::Length(u16::from(banner)),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header(f, head, app, &t);
    if !strip.is_empty() {
        f.render_widget(Paragraph::new(strip), nets);
    }
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
        View::History => history::history(f, body, app, &t, now_ms),
        View::Findings => findings::findings(f, body, app, &t, now_ms),
        View::Users => users::users(f, body, app, &t),
    }
    footer(f, foot, app, &t);
    if app.ui.help {
        help(f, area, &t);
    }
}

/// The cluster, the views (a tab each, clickable), the findings count and the key hint.
/// At 80 columns the tabs shorten so that the `?` hint stays.
fn header(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
    let wide = area.width >= 120;
    let cluster = app.data.cluster.as_ref().map(|c| c.cluster.as_str()).unwrap_or("…");
    let name = if wide { format!(" Jazari {} ", fit(cluster, 16)) } else { format!(" {} ", fit(cluster, 10)) };
    let mut x = area.x + name.chars().count() as u16;
    let mut spans = vec![Span::styled(name, t.bold())];
    for (i, v) in View::ALL.iter().enumerate() {
        let label = if wide { format!(" {}:{} ", i + 1, v.title()) } else { format!("{}:{} ", i + 1, v.short()) };
        let w = label.chars().count() as u16;
        app.ui.tabs.push((x, x + w, *v));
        x += w;
        spans.push(if *v == app.ui.view { Span::styled(label, t.selected()) } else { Span::raw(label) });
    }
    let n = app.data.findings.len();
    if n > 0 {
        let critical = app.data.findings.iter().any(|f| f.severity == Severity::Critical);
        let text = if wide { format!(" ! {n} findings (6) ") } else { format!(" !{n} ") };
        spans.push(Span::styled(text, if critical { t.bad() } else { t.warn() }));
    }
    spans.push(Span::styled(if wide { " ?:keys q:quit" } else { " ?:keys" }, t.dim()));
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

fn footer(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    if app.ui.filtering {
        f.render_widget(Paragraph::new(format!("/{}█  (Enter: keep, Esc: clear)", app.ui.filter)), area);
        return;
    }
    let mut parts = vec![];
    if let Some(c) = &app.data.cluster {
        parts.push(format!("{} of {} nodes reporting", c.summary.nodes_reporting, c.summary.nodes));
    }
    if app.data.fetched_ms > 0 {
        // A time, not an age: it stays true between refreshes without a frame per second.
        parts.push(format!("updated {} UTC", &crate::time::format_rfc3339(app.data.fetched_ms)[11..19]));
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

/// The key table and the filter's words; in two columns when one does not fit.
fn help(f: &mut Frame, area: Rect, t: &Theme) {
    let keys: Vec<Line> = KEYS.iter().map(|(k, what, _)| Line::from(format!("{k:<11}{what}"))).collect();
    let filter: Vec<Line> =
        std::iter::once(Line::styled("Filter", t.bold())).chain(filter::HELP.iter().map(|l| Line::from(*l))).collect();
    let one_column = keys.len() + filter.len() + 3 <= area.height as usize;
    let (w, h) = if one_column {
        (50, keys.len() + filter.len() + 3)
    } else {
        let half = keys.len().div_ceil(2);
        (84, half.max(keys.len() - half + 1 + filter.len()) + 2)
    };
    let w = (w as u16).min(area.width);
    let h = (h as u16).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, r);
    let block = Block::default().borders(Borders::ALL).title(" Keys (any key closes) ").title_style(t.bold());
    let inner = block.inner(r);
    f.render_widget(block, r);
    if one_column {
        let mut lines = keys;
        lines.push(Line::from(""));
        lines.extend(filter);
        f.render_widget(Paragraph::new(lines), inner);
    } else {
        let half = keys.len().div_ceil(2);
        let mut right: Vec<Line> = keys[half..].to_vec();
        right.push(Line::from(""));
        right.extend(filter);
        let [l, rr] = Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(inner);
        f.render_widget(Paragraph::new(keys[..half].to_vec()), l);
        f.render_widget(Paragraph::new(right), rr);
    }
}
