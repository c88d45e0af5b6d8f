//! The Findings view: what the collector finds wrong now, worst first.

use super::super::state::{App, FINDING_SORTS, View, sort_name};
use super::widgets::{Theme, column_widths, record, selectable, window};
use crate::api::findings::Severity;
use crate::format::{ago, fit};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Cell, Paragraph, Row, Table};

pub fn findings(f: &mut Frame, area: Rect, app: &mut App, t: &Theme, now_ms: i64) {
    let sort = sort_name(&app.ui, View::Findings, &FINDING_SORTS);
    let list = app.findings();
    let n = list.len();
    let (start, end, mut st) = window(app, n, area);
    let wide = area.width >= 120;
    // SEV, KIND, SUBJECT, INSTITUTE, FIRST SEEN, LAST SEEN, MESSAGE (the rest).
    let widths = [
        Constraint::Length(if wide { 8 } else { 4 }),
        Constraint::Length(if wide { 18 } else { 14 }),
        Constraint::Length(if wide { 24 } else { 16 }),
        Constraint::Length(if wide { 12 } else { 0 }),
        Constraint::Length(if wide { 10 } else { 7 }),
        Constraint::Length(if wide { 10 } else { 0 }),
        Constraint::Fill(1),
    ];
    let cols = column_widths(area.width, &widths);
    let header = Row::new(vec![
        "SEV",
        "KIND",
        "SUBJECT",
        "INSTITUTE",
        if wide { "FIRST SEEN" } else { "SINCE" },
        "LAST SEEN",
        "MESSAGE",
    ])
    .style(t.bold());
    let rows: Vec<Row> = list[start..end]
        .iter()
        .map(|x| {
            let (sev, style) = match x.severity {
                Severity::Critical => (if wide { "CRITICAL" } else { "CRIT" }, t.bad()),
                Severity::Warning => (if wide { "warning" } else { "warn" }, t.warn()),
                Severity::Info => ("info", Style::default()),
            };
            Row::new(vec![
                Cell::from(sev).style(style),
                Cell::from(fit(x.kind.name(), cols[1] as usize)),
                Cell::from(fit(&app.subject(x), cols[2] as usize)),
                Cell::from(fit(x.institute.as_deref().unwrap_or("-"), cols[3] as usize)),
                Cell::from(if wide {
                    format!("{} ago", ago(now_ms - x.first_seen_ms))
                } else {
                    ago(now_ms - x.first_seen_ms)
                }),
                Cell::from(format!("{} ago", ago(now_ms - x.last_seen_ms))),
                Cell::from(fit(&x.message, cols[6] as usize)),
            ])
        })
        .collect();
    drop(list);
    record(app, area, start);
    let title = if n == 0 && app.data.findings.is_empty() {
        " findings: none, nothing the collector checks is wrong now ".to_string()
    } else {
        format!(" {n} findings · sorted by {sort} (s) · / filter · Enter opens the job or node ")
    };
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
    if n == 0 && area.height > 3 {
        let text = if app.data.findings.is_empty() {
            " stale nodes, lost or failing GPUs, idle-allocated jobs and quotas are checked by the collector"
        } else {
            " no finding matches the filter (Esc clears it)"
        };
        f.render_widget(Paragraph::new(text).style(t.dim()), Rect { y: area.y + 2, height: 1, ..area });
    }
}
