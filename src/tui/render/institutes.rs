//! The Institutes view (quota burn-down) and an institute's drill-down.

use super::super::state::App;
use super::widgets::{Theme, bar, selectable, window};
use crate::format::{exact, fit, hours, span};
use crate::quota::State as QState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

pub fn institutes(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
    app.ui.page = area.height.saturating_sub(2) as usize;
    let narrow = area.width < 100;
    let list = app.institutes();
    let n = list.len();
    let (start, end, mut st) = window(app, n, area);
    let header =
        Row::new(vec!["INSTITUTE", "PERIOD", "GRANTED", "USED", "USE", "PROJECTED", "RUNS OUT", "GPUS (+Q)", "STATE"])
            .style(t.bold());
    let rows: Vec<Row> = list[start..end]
        .iter()
        .map(|q| {
            let style = match q.state {
                QState::Exceeded => t.bad(),
                QState::Warning => t.warn(),
                _ => Style::default(),
            };
            let gauge = match q.used_pct {
                Some(p) if narrow => format!("{p:>3.0}%"),
                Some(p) => format!("{} {:>3.0}%", bar(p / 100.0, 8), p),
                None => String::new(),
            };
            let proj = match (q.projected_gpu_hours, q.projected_pct) {
                (Some(v), Some(p)) if !narrow => format!("{} ({p:.0}%)", hours(v)),
                (Some(v), _) => hours(v),
                _ => "-".into(),
            };
            Row::new(vec![
                Cell::from(fit(&q.institute, 14)),
                Cell::from(q.period.as_ref().map(|p| p.label.clone()).unwrap_or_else(|| "-".into())),
                Cell::from(q.granted_gpu_hours.map(exact).unwrap_or_else(|| "-".into())),
                Cell::from(hours(q.used_gpu_hours)),
                Cell::from(gauge).style(style),
                Cell::from(proj),
                Cell::from(q.runs_out_ms.map(crate::time::format_date).unwrap_or_else(|| "-".into())),
                Cell::from(match (q.max_gpus, q.queued_gpus) {
                    (Some(c), Some(w)) if w > 0 => format!("{}/{c} +{w}", q.gpus_in_use),
                    (None, Some(w)) if w > 0 => format!("{} +{w}", q.gpus_in_use),
                    (Some(c), _) => format!("{}/{c}", q.gpus_in_use),
                    (None, _) => q.gpus_in_use.to_string(),
                }),
                Cell::from(match q.state {
                    QState::Ok => "ok",
                    QState::Warning => "WARNING",
                    QState::Exceeded => "EXCEEDED",
                    QState::NoQuota => "no quota",
                })
                .style(style),
            ])
        })
        .collect();
    // At 80 columns: no period column, no gauge bars.
    let widths = [
        Constraint::Length(14),
        Constraint::Length(if narrow { 0 } else { 8 }),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(if narrow { 4 } else { 13 }),
        Constraint::Length(if narrow { 9 } else { 15 }),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(9),
    ];
    let title = " quota burn-down (GPU-hours) · Enter: users and jobs ";
    selectable(f, area, Table::new(rows, widths).header(header), title, &mut st, t);
}

pub fn institute_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, id: &str) {
    let Some(q) = app.data.quotas.iter().find(|q| q.institute == id) else {
        f.render_widget(Paragraph::new(format!("institute {id} is not visible (Esc: back)")), area);
        return;
    };
    let [head, body] = Layout::vertical([Constraint::Length(4), Constraint::Min(0)]).areas(area);
    let [users, jobs_area] = Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body);
    let committed = if q.committed_known { hours(q.committed_gpu_hours) } else { "n/a (no time limits)".into() };
    let lines = vec![
        Line::styled(format!(" {} · {} · {:?}", q.institute, q.name, q.state), t.bold()),
        Line::from(format!(
            " granted {} · used {} (settled {} + in flight {}) · committed {}",
            q.granted_gpu_hours.map(exact).unwrap_or_else(|| "-".into()),
            hours(q.used_gpu_hours),
            hours(q.settled_gpu_hours),
            hours(q.in_flight_gpu_hours),
            committed
        )),
        Line::from(format!(
            " burn {}/day over {} · projected {} · runs out {} · efficiency {}",
            hours(q.burn_rate_gpu_hours_per_day),
            span(q.burn_window_s),
            q.projected_gpu_hours.map(hours).unwrap_or_else(|| "-".into()),
            q.runs_out_ms.map(crate::time::format_date).unwrap_or_else(|| "-".into()),
            q.efficiency_pct.map(|e| format!("{e:.0}%")).unwrap_or_else(|| "-".into())
        )),
        Line::styled(" Esc: back", t.dim()),
    ];
    f.render_widget(Paragraph::new(lines), head);
    let rows: Vec<Row> = q
        .by_user
        .iter()
        .map(|u| {
            Row::new(vec![if u.key.is_empty() { "(none)".to_string() } else { u.key.clone() }, hours(u.used_gpu_hours)])
        })
        .collect();
    f.render_widget(
        Table::new(rows, [Constraint::Min(10), Constraint::Length(10)])
            .header(Row::new(vec!["USER", "GPU-HOURS"]).style(t.bold()))
            .block(Block::default().borders(Borders::TOP).title(" users this period ")),
        users,
    );
    let rows: Vec<Row> = app
        .data
        .jobs
        .iter()
        .filter(|j| j.institute == id)
        .map(|j| {
            Row::new(vec![
                j.id.clone(),
                j.user.clone().unwrap_or_default(),
                j.gpu_count.to_string(),
                j.mean_util_pct.map(|u| format!("{u:.0}%")).unwrap_or_else(|| "-".into()),
                if j.idle_gpus > 0 { format!("{} IDLE", j.idle_gpus) } else { String::new() },
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(9),
                Constraint::Length(12),
                Constraint::Length(5),
                Constraint::Length(5),
                Constraint::Length(7),
            ],
        )
        .header(Row::new(vec!["JOB", "USER", "GPUS", "UTIL", ""]).style(t.bold()))
        .block(Block::default().borders(Borders::TOP).title(" running jobs ")),
        jobs_area,
    );
}
