//! The Institutes view (quota burn-down) and an institute's drill-down.

use super::super::state::App;
use super::widgets::{Theme, bar, pct, record, selectable, short_reason, window};
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
    // At 80 columns: no period efficiency columns (nor period and burn window, below).
    let keep = |i: usize| !(narrow && (i == 9 || i == 10));
    let only = |v: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        v.into_iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, c)| c).collect()
    };
    let header = Row::new(only(
        [
            "INSTITUTE",
            "PERIOD",
            "GRANTED",
            "USED",
            "USED %",
            "PROJECTED",
            "BURN OVER",
            "RUNS OUT",
            "GPUS (+Q)",
            "EFF.",
            "SM ACT.",
            "STATE (WHY)",
        ]
        .map(Cell::from)
        .to_vec(),
    ))
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
                Some(p) if narrow => format!("{:>4}", pct(p)),
                Some(p) => format!("{} {:>4}", bar(p / 100.0, 8), pct(p)),
                None => String::new(),
            };
            let proj = match (q.projected_gpu_hours, q.projected_pct) {
                (Some(v), Some(p)) if !narrow => format!("{} ({})", hours(v), pct(p)),
                (Some(v), _) => hours(v),
                _ => "-".into(),
            };
            Row::new(only(vec![
                Cell::from(fit(&q.institute, if narrow { 10 } else { 14 })),
                Cell::from(q.period.as_ref().map(|p| p.label.clone()).unwrap_or_else(|| "-".into())),
                Cell::from(q.granted_gpu_hours.map(exact).unwrap_or_else(|| "-".into())),
                Cell::from(hours(q.used_gpu_hours)),
                Cell::from(gauge).style(style),
                Cell::from(proj),
                Cell::from(span(q.burn_window_s)),
                Cell::from(q.runs_out_ms.map(crate::time::format_date).unwrap_or_else(|| "-".into())),
                Cell::from(match (q.max_gpus, q.queued_gpus) {
                    (Some(c), Some(w)) if w > 0 => format!("{}/{c} +{w}", q.gpus_in_use),
                    (None, Some(w)) if w > 0 => format!("{} +{w}", q.gpus_in_use),
                    (Some(c), _) => format!("{}/{c}", q.gpus_in_use),
                    (None, _) => q.gpus_in_use.to_string(),
                }),
                Cell::from(q.efficiency_pct.map(pct).unwrap_or_else(|| "-".into())),
                Cell::from(sm_active(q).map(pct).unwrap_or_else(|| "-".into())),
                Cell::from(match q.state {
                    QState::Ok => "ok".to_string(),
                    QState::Warning => format!("WARNING {}", short_reason(&q.reasons)),
                    QState::Exceeded => format!("EXCEEDED {}", short_reason(&q.reasons)),
                    QState::NoQuota => "no quota".to_string(),
                })
                .style(style),
            ]))
        })
        .collect();
    // At 80 columns: no period or burn window column, no gauge bars.
    let widths: Vec<Constraint> = [
        Constraint::Length(if narrow { 10 } else { 14 }),
        Constraint::Length(if narrow { 0 } else { 8 }),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(if narrow { 6 } else { 13 }),
        Constraint::Length(if narrow { 9 } else { 15 }),
        Constraint::Length(if narrow { 0 } else { 9 }),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Fill(1),
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| keep(*i))
    .map(|(_, c)| c)
    .collect();
    let window = list.iter().map(|q| q.burn_window_s).fold(0.0, f64::max);
    let title = format!(
        " quota burn-down (GPU-hours) · projected at the burn rate over the last {}{} · Enter: users, jobs, why ",
        span(window),
        if narrow { "" } else { " · this period: EFF.=NVML busy/allocated, SM ACT.=GPM" }
    );
    drop(list);
    record(app, area, start);
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
}

/// SM active over the GPM-measured GPU-hours of the period, percent.
fn sm_active(q: &crate::api::quota::BurnDown) -> Option<f64> {
    match (q.gpm_measured_gpu_hours, q.sm_active_gpu_hours) {
        (Some(m), Some(s)) if m > 0.0 => Some(s / m * 100.0),
        _ => None,
    }
}

pub fn institute_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, id: &str) {
    let Some(q) = app.data.quotas.iter().find(|q| q.institute == id) else {
        f.render_widget(Paragraph::new(format!("institute {id} is not visible (Esc: back)")), area);
        return;
    };
    let [head, body] =
        Layout::vertical([Constraint::Length(5 + q.reasons.len() as u16), Constraint::Min(0)]).areas(area);
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
            " burn {}/day over the last {} · projected {} · runs out {}",
            hours(q.burn_rate_gpu_hours_per_day),
            span(q.burn_window_s),
            q.projected_gpu_hours.map(hours).unwrap_or_else(|| "-".into()),
            q.runs_out_ms.map(crate::time::format_date).unwrap_or_else(|| "-".into()),
        )),
        Line::from(format!(
            " this period: busy/allocated (NVML) {} · SM active (GPM) {}",
            q.efficiency_pct.map(pct).unwrap_or_else(|| "-".into()),
            match (q.gpm_measured_gpu_hours, sm_active(q)) {
                (Some(m), Some(p)) => format!("{} over {} GPU-h", pct(p), hours(m)),
                _ => "- (none measured)".into(),
            }
        )),
    ];
    let mut lines = lines;
    lines.extend(q.reasons.iter().map(|r| Line::styled(format!(" why {:?}: {r}", q.state), t.warn())));
    lines.push(Line::styled(" Esc: back", t.dim()));
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
                j.mean_util_pct.map(pct).unwrap_or_else(|| "-".into()),
                j.mean_sm_active_pct.map(pct).unwrap_or_else(|| "-".into()),
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
                Constraint::Length(4),
                Constraint::Length(7),
            ],
        )
        .header(Row::new(vec!["JOB", "USER", "GPUS", "UTIL", "SM", ""]).style(t.bold()))
        .block(Block::default().borders(Borders::TOP).title(" running jobs · now: UTIL=NVML, SM=GPM SM active ")),
        jobs_area,
    );
}
