//! The Users view: who holds GPUs now, and what they used this period.

use super::super::state::{App, USER_SORTS, View, sort_name};
use super::widgets::{Theme, pct, record, selectable, window};
use crate::format::{fit, hours};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::widgets::{Cell, Row, Table};

pub fn users(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
    let sort = sort_name(&app.ui, View::Users, &USER_SORTS);
    let list = app.users();
    let n = list.len();
    let (start, end, mut st) = window(app, n, area);
    let wide = area.width >= 120;
    let name_w = list.iter().map(|u| u.user.chars().count()).max().unwrap_or(4).clamp(4, if wide { 24 } else { 12 });
    let header = Row::new(vec![
        "USER",
        "INSTITUTE",
        "GPUS NOW",
        "IDLE NOW",
        "JOBS",
        "GPU-HOURS",
        "IDLE-ALLOC H",
        "PERIOD EFF.",
        "SM ACT.",
    ])
    .style(t.bold());
    let rows: Vec<Row> = list[start..end]
        .iter()
        .map(|u| {
            let idle_style = if u.idle_now > 0 { t.warn() } else { Style::default() };
            Row::new(vec![
                Cell::from(fit(&u.user, name_w)),
                Cell::from(fit(&u.institutes.join(","), if wide { 24 } else { 12 })),
                Cell::from(u.gpus_now.to_string()),
                Cell::from(u.idle_now.to_string()).style(idle_style),
                Cell::from(u.jobs_now.to_string()),
                Cell::from(hours(u.gpu_hours)),
                Cell::from(hours(u.idle_alloc_gpu_hours)),
                Cell::from(u.efficiency_pct().map(pct).unwrap_or_else(|| "-".into())),
                Cell::from(u.sm_active_pct().map(pct).unwrap_or_else(|| "-".into())),
            ])
        })
        .collect();
    drop(list);
    record(app, area, start);
    let widths = [
        Constraint::Length(name_w as u16),
        Constraint::Length(if wide { 24 } else { 0 }),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(11),
        Constraint::Length(7),
    ];
    let since = if app.data.usage_label.is_empty() { "this period".into() } else { app.data.usage_label.clone() };
    let title = format!(
        " {n} users · GPU-hours in {since} · EFF.=busy/allocated (NVML), SM ACT.=SM active/measured (GPM) · \
         sorted by {sort} (s) · Enter: their jobs "
    );
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
}
