//! The Jobs view and a job's drill-down.

use super::super::state::{App, JOB_SORTS, View, slice_size, sort_name};
use super::widgets::{Theme, bar, pct, record, selectable, whole_or_say, window};
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
    let header = Row::new(vec!["JOB", "USER", "ACCOUNT", "INSTITUTE", "GPUS", "UTIL", "SM", "MEM GiB", "RUN", "FLAG"])
        .style(t.bold());
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
                Cell::from(j.mean_sm_active_pct.map(pct).unwrap_or_else(|| "-".into())),
                Cell::from(format!("{:.0}", j.mem_used_bytes as f64 / 1073741824.0)),
                Cell::from(j.run_time_s.map(|s| ago((s * 1000.0) as i64)).unwrap_or_else(|| "-".into())),
                Cell::from(flag).style(t.warn()),
            ])
        })
        .collect();
    drop(list);
    record(app, area, start);
    let title = format!(
        " {n} running jobs · now: UTIL=NVML, SM=GPM SM active · sorted by {sort} (s) · / filter · Enter opens "
    );
    let widths = [
        Constraint::Length(9),
        Constraint::Length(if wide { 20 } else { 10 }),
        Constraint::Length(if wide { 16 } else { 0 }),
        Constraint::Length(if wide { 16 } else { 11 }),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
}

pub fn job_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, id: &str) {
    let Some(j) = whole_or_say(f, area, app.job_whole(id), &format!("job {id}"), "has ended") else { return };
    let [head, body] = Layout::vertical([Constraint::Length(3), Constraint::Min(0)]).areas(area);
    let slices = j.gpus.iter().filter(|g| g.mig.is_some()).count();
    let held = match (j.gpu_count - slices, slices) {
        (g, 0) => format!("{g} GPUs"),
        (0, s) => format!("{s} MIG slice{}", if s == 1 { "" } else { "s" }),
        (g, s) => format!("{g} GPUs and {s} MIG slice{}", if s == 1 { "" } else { "s" }),
    };
    let lines = vec![
        Line::styled(
            format!(
                " job {} · {} · account {} · {} · {held} on {}",
                j.id,
                j.user.as_deref().unwrap_or("-"),
                j.account.as_deref().unwrap_or("-"),
                j.institute,
                j.nodes.join(", ")
            ),
            t.bold(),
        ),
        Line::from(format!(
            " now, mean of its GPUs: utilisation {} (NVML: a kernel ran) · SM active {} (GPM) · {} allocated but idle · \
             running {}",
            j.mean_util_pct.map(pct).unwrap_or_else(|| "-".into()),
            j.mean_sm_active_pct.map(pct).unwrap_or_else(|| "-".into()),
            j.idle_gpus,
            j.run_time_s.map(|s| ago((s * 1000.0) as i64)).unwrap_or_else(|| "-".into())
        )),
        Line::styled(" Esc: back", t.dim()),
    ];
    f.render_widget(Paragraph::new(lines), head);
    let slice_w: u16 = if slices > 0 { 6 } else { 0 };
    let header =
        Row::new(vec!["NODE", "GPU", "SLICE", "UUID", "UTIL", "", "SM", "TENSOR", "MEM GiB", ""]).style(t.bold());
    // A whole UUID (40 characters) when the terminal has room.
    let uuid_w =
        (area.width as usize).saturating_sub(14 + 4 + 5 + 10 + 4 + 6 + 8 + 5 + 9 + slice_w as usize).clamp(8, 40);
    let rows: Vec<Row> = j
        .gpus
        .iter()
        .map(|g| {
            let u = g.util_gpu_pct.unwrap_or(0) as f64;
            let opt = |v: Option<f64>| v.map(pct).unwrap_or_else(|| "-".into());
            let mem = match g.mig.as_ref().and_then(|m| m.mem_total_bytes) {
                Some(total) => format!(
                    "{:.0}/{:.0}",
                    g.mem_used_bytes.unwrap_or(0) as f64 / 1073741824.0,
                    total as f64 / 1073741824.0
                ),
                None => format!("{:.0}", g.mem_used_bytes.unwrap_or(0) as f64 / 1073741824.0),
            };
            Row::new(vec![
                Cell::from(g.node.clone()),
                Cell::from(g.index.to_string()),
                Cell::from(g.mig.as_ref().map(|m| slice_size(m.slices_compute, m.slices_memory)).unwrap_or_default()),
                Cell::from(fit(&g.uuid, uuid_w)),
                Cell::from(g.util_gpu_pct.map(|u| format!("{u}%")).unwrap_or_else(|| "-".into())),
                if g.util_gpu_pct.is_some() { Cell::from(bar(u / 100.0, 10)).style(t.util(u)) } else { Cell::from("") },
                Cell::from(opt(g.sm_active_pct)),
                Cell::from(opt(g.tensor_active_pct)),
                Cell::from(mem),
                Cell::from(if g.idle { "IDLE" } else { "" }).style(t.warn()),
            ])
        })
        .collect();
    let title = if slices > 0 {
        " GPUs and MIG slices of the job · now: UTIL=NVML, SM and TENSOR active=GPM · SLICE: compute slices of 7 \
         (g), memory slices of 8 (m) "
    } else {
        " GPUs of the job · now: UTIL=NVML, SM and TENSOR active=GPM "
    };
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(4),
                Constraint::Length(slice_w),
                Constraint::Length(uuid_w as u16),
                Constraint::Length(5),
                Constraint::Length(10),
                Constraint::Length(4),
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Length(5),
            ],
        )
        .header(header)
        .block(Block::default().borders(Borders::TOP).title(title)),
        body,
    );
}
