//! The Jobs view and a job's drill-down.

use super::super::state::{App, JOB_SORTS, View, sort_name};
use super::widgets::{Theme, bar, pct, record, selectable, window};
use crate::format::{ago, fit};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

pub fn jobs(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
    let sort = sort_name(&app.ui, View::Jobs, &JOB_SORTS);
    let wide = area.width >= 120;
    let list = app.jobs();
    let n = list.len();
    let (start, end, mut st) = window(app, n, area);
    let header =
        Row::new(vec!["JOB", "USER", "ACCOUNT", "INSTITUTE", "GPUS", "UTIL", "MEM GiB", "RUN", "FLAG"]).style(t.bold());
    let rows: Vec<Row> = list[start..end]
        .iter()
        .map(|j| {
            let flag = if j.idle_gpus > 0 { format!("{} IDLE", j.idle_gpus) } else { String::new() };
            Row::new(vec![
                Cell::from(j.id.clone()),
                Cell::from(fit(j.user.as_deref().unwrap_or("-"), if wide { 20 } else { 10 })),
                Cell::from(fit(j.account.as_deref().unwrap_or("-"), if wide { 16 } else { 0 })),
                Cell::from(fit(&j.institute, if wide { 16 } else { 11 })),
                Cell::from(j.gpu_count.to_string()),
                Cell::from(j.mean_util_pct.map(pct).unwrap_or_else(|| "-".into()))
                    .style(t.util(j.mean_util_pct.unwrap_or(0.0))),
                Cell::from(format!("{:.0}", j.mem_used_bytes as f64 / 1073741824.0)),
                Cell::from(j.run_time_s.map(|s| ago((s * 1000.0) as i64)).unwrap_or_else(|| "-".into())),
                Cell::from(flag).style(t.warn()),
            ])
        })
        .collect();
    drop(list);
    record(app, area, start);
    let title = format!(" {n} running jobs · sorted by {sort} (s) · / filter · Enter opens ");
    let widths = [
        Constraint::Length(9),
        Constraint::Length(if wide { 20 } else { 10 }),
        Constraint::Length(if wide { 16 } else { 0 }),
        Constraint::Length(if wide { 16 } else { 11 }),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
}

pub fn job_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, id: &str) {
    let Some(j) = app.data.jobs.iter().find(|j| j.id == id) else {
        f.render_widget(Paragraph::new(format!("job {id} has ended (Esc: back)")), area);
        return;
    };
    let [head, body] = Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
    let lines = vec![
        Line::styled(
            format!(
                " job {} · {} · account {} · {} · {} GPUs on {}",
                j.id,
                j.user.as_deref().unwrap_or("-"),
                j.account.as_deref().unwrap_or("-"),
                j.institute,
                j.gpu_count,
                j.nodes.join(", ")
            ),
            t.bold(),
        ),
        Line::from(format!(
            " utilisation now (mean of its GPUs) {} · {} allocated but idle · running {}",
            j.mean_util_pct.map(pct).unwrap_or_else(|| "-".into()),
            j.idle_gpus,
            j.run_time_s.map(|s| ago((s * 1000.0) as i64)).unwrap_or_else(|| "-".into())
        )),
        Line::styled(" Esc: back", t.dim()),
    ];
    f.render_widget(Paragraph::new(lines), head);
    let header = Row::new(vec!["NODE", "GPU", "UUID", "UTIL", "", "MEM GiB", ""]).style(t.bold());
    // A whole UUID (40 characters) when the terminal has room.
    let uuid_w = (area.width as usize).saturating_sub(14 + 4 + 5 + 10 + 8 + 5 + 7).clamp(8, 40);
    let rows: Vec<Row> = j
        .gpus
        .iter()
        .map(|g| {
            let u = g.util_gpu_pct.unwrap_or(0) as f64;
            Row::new(vec![
                Cell::from(g.node.clone()),
                Cell::from(g.index.to_string()),
                Cell::from(fit(&g.uuid, uuid_w)),
                Cell::from(format!("{u:.0}%")),
                Cell::from(bar(u / 100.0, 10)).style(t.util(u)),
                Cell::from(format!("{:.0}", g.mem_used_bytes.unwrap_or(0) as f64 / 1073741824.0)),
                Cell::from(if g.idle { "IDLE" } else { "" }).style(t.warn()),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(4),
                Constraint::Length(uuid_w as u16),
                Constraint::Length(5),
                Constraint::Length(10),
                Constraint::Length(8),
                Constraint::Length(5),
            ],
        )
        .header(header)
        .block(Block::default().borders(Borders::TOP).title(" GPUs of the job ")),
        body,
    );
}
