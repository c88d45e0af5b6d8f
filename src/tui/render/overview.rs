//! The Overview: summary, institutes, the heatmap and the recent utilisation.

use super::super::state::{App, WINDOWS, node_util};
use super::widgets::{Theme, bar};
use crate::api::cluster::{GpuView, InstituteLive, NodeView};
use crate::format::{exact, fit, hours};
use crate::quota::State as QState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};

pub fn overview(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let Some(c) = &app.data.cluster else {
        f.render_widget(Paragraph::new("waiting for the collector…"), area);
        return;
    };
    let s = &c.summary;
    let inst_rows = (app.data.quotas.len().max(c.institutes.len()) as u16 + 1).min(area.height / 3).max(2);
    let rest = area.height.saturating_sub(3 + inst_rows);
    let spark_rows = if rest >= 10 { (rest / 3).clamp(3, 8) } else { 0 };
    let heat_rows = heatmap_rows(&c.nodes, area.width).min(rest.saturating_sub(spark_rows)).max(2);
    let sum_rows = if app.data.findings.is_empty() { 2 } else { 3 };
    let [sum, inst, heat, spark] = Layout::vertical([
        Constraint::Length(sum_rows),
        Constraint::Length(inst_rows),
        Constraint::Length(heat_rows),
        Constraint::Min(spark_rows),
    ])
    .areas(area);
    let util = s.mean_util_pct.map(|u| format!("{u:.0}%")).unwrap_or_else(|| "-".into());
    let lines = vec![
        Line::from(vec![
            Span::styled(format!(" GPUs {} ", s.gpus), t.bold()),
            Span::raw(format!("allocated {} · busy {} · ", s.gpus_allocated, s.gpus_busy)),
            Span::styled(
                format!("idle-allocated {}", s.gpus_idle_allocated),
                if s.gpus_idle_allocated > 0 { t.warn() } else { Style::default() },
            ),
            Span::raw(" · "),
            Span::styled(
                format!("unhealthy {}", s.gpus_unhealthy),
                if s.gpus_unhealthy > 0 { t.bad() } else { Style::default() },
            ),
        ]),
        Line::from(format!(
            " nodes {}/{} reporting · jobs {} · power {:.1} kW · util {util} (NVML: a kernel ran)",
            s.nodes_reporting,
            s.nodes,
            s.jobs,
            s.power_w / 1000.0
        )),
    ];
    let mut lines = lines;
    if let Some(first) = app.data.findings.first() {
        lines.push(Line::styled(
            format!(" ! {} scheduler/agent findings: {}", app.data.findings.len(), first.message),
            t.warn(),
        ));
    }
    f.render_widget(Paragraph::new(lines), sum);
    institutes_compact(f, inst, app, t);
    heatmap(f, heat, &c.nodes, t);
    if spark.height > 0 {
        let data: Vec<u64> = app.data.recent.iter().map(|p| p.util_pct.unwrap_or(0.0).round() as u64).collect();
        let title = format!(" cluster utilisation, last {} (0-100 %) ", WINDOWS[1].0);
        let start = data.len().saturating_sub(spark.width.saturating_sub(2) as usize);
        f.render_widget(
            Sparkline::default()
                .block(Block::default().borders(Borders::TOP).title(title))
                .data(&data[start..])
                .max(100)
                .style(t.fg(Color::Green)),
            spark,
        );
    }
}

fn institutes_compact(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let live: std::collections::HashMap<&str, &InstituteLive> = app
        .data
        .cluster
        .as_ref()
        .map(|c| c.institutes.iter().map(|i| (i.id.as_str(), i)).collect())
        .unwrap_or_default();
    let name_w: u16 = if area.width >= 120 { 34 } else { 0 };
    let gauge_w = (area.width as usize).saturating_sub(46 + name_w as usize).clamp(6, 30);
    let header = Row::new(vec!["INSTITUTE", "NAME", "GPUS", "GPU-HOURS THIS PERIOD", "EFFIC."]).style(t.bold());
    let rows: Vec<Row> = app
        .data
        .quotas
        .iter()
        .map(|q| {
            let gpus = match q.max_gpus {
                Some(cap) => format!("{}/{cap}", q.gpus_in_use),
                None => q.gpus_in_use.to_string(),
            };
            let (gauge, style) = match (q.used_pct, q.granted_gpu_hours) {
                (Some(p), Some(g)) => (
                    format!("{} {:>3.0}% of {}", bar(p / 100.0, gauge_w), p, exact(g)),
                    match q.state {
                        QState::Exceeded => t.bad(),
                        QState::Warning => t.warn(),
                        _ => t.fg(Color::Green),
                    },
                ),
                _ => (format!("{} used, no quota", hours(q.used_gpu_hours)), t.dim()),
            };
            let eff = live
                .get(q.institute.as_str())
                .and_then(|i| i.mean_util_pct)
                .or(q.efficiency_pct)
                .map(|e| format!("{e:.0}%"))
                .unwrap_or_else(|| "-".into());
            Row::new(vec![
                Cell::from(fit(&q.institute, 14)),
                Cell::from(fit(&q.name, name_w as usize)),
                Cell::from(gpus),
                Cell::from(gauge).style(style),
                Cell::from(eff),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(name_w),
                Constraint::Length(7),
                Constraint::Min(20),
                Constraint::Length(6),
            ],
        )
        .header(header),
        area,
    );
}

/// Rows the heatmap wants at this width (title included), one cell per GPU.
fn heatmap_rows(nodes: &[NodeView], width: u16) -> u16 {
    let gpus_per = nodes.iter().map(|n| n.gpus.len()).max().unwrap_or(1).max(1);
    let per_row = (width.saturating_sub(1) as usize / (gpus_per + 1)).max(1);
    (nodes.len().div_ceil(per_row) + 1) as u16
}

/// One cell per GPU (nodes separated by a space) when they fit, else one cell per node.
fn heatmap(f: &mut Frame, area: Rect, nodes: &[NodeView], t: &Theme) {
    if area.height < 2 {
        return;
    }
    let inner_w = area.width.saturating_sub(1) as usize;
    let rows_avail = area.height.saturating_sub(1) as usize;
    let gpus_per = nodes.iter().map(|n| n.gpus.len()).max().unwrap_or(1).max(1);
    let per_gpu = {
        let per_row = (inner_w / (gpus_per + 1)).max(1);
        nodes.len().div_ceil(per_row) <= rows_avail
    };
    let mut lines: Vec<Line> = vec![];
    let title = if per_gpu {
        " heatmap: a cell per GPU · ▁▃▅█ utilisation · ○ allocated but idle · · free · ✗ unhealthy · ? stale"
    } else {
        " heatmap: a cell per node (mean) · ○ has idle-allocated GPUs · ✗ has an unhealthy GPU · ? stale"
    };
    lines.push(Line::from(Span::styled(fit(title, area.width as usize), t.dim())));
    let mut spans: Vec<Span> = vec![Span::raw(" ")];
    let mut col = 1;
    let mut shown = 0;
    for n in nodes {
        let cells: Vec<Span> =
            if per_gpu { n.gpus.iter().map(|g| gpu_cell(g, n.stale, t)).collect() } else { vec![node_cell(n, t)] };
        let need = cells.len() + usize::from(per_gpu);
        if col + need > inner_w + 1 {
            lines.push(Line::from(std::mem::take(&mut spans)));
            spans.push(Span::raw(" "));
            col = 1;
            if lines.len() > rows_avail {
                break;
            }
        }
        spans.extend(cells);
        if per_gpu {
            spans.push(Span::raw(" "));
        }
        col += need;
        shown += 1;
    }
    if !spans.is_empty() && lines.len() <= rows_avail {
        lines.push(Line::from(spans));
    }
    if shown < nodes.len() && !lines.is_empty() {
        let last = lines.len() - 1;
        lines[last] = Line::from(Span::styled(
            format!(" … {} more nodes: enlarge the window or see Nodes (2)", nodes.len() - shown),
            t.dim(),
        ));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn level(u: f64) -> &'static str {
    match u {
        u if u < 12.5 => "▁",
        u if u < 37.5 => "▃",
        u if u < 62.5 => "▅",
        u if u < 87.5 => "▇",
        _ => "█",
    }
}

fn gpu_cell(g: &GpuView, stale: bool, t: &Theme) -> Span<'static> {
    if stale {
        return Span::styled("?", t.dim());
    }
    if g.unhealthy {
        return Span::styled("✗", t.bad());
    }
    if g.idle_allocated {
        return Span::styled("○", t.warn());
    }
    let u = g.gpu.util_gpu_pct.unwrap_or(0) as f64;
    if g.allocated_to.is_none() && g.gpu.processes.is_empty() && u < 1.0 {
        return Span::styled("·", t.dim());
    }
    Span::styled(level(u), t.util(u))
}

fn node_cell(n: &NodeView, t: &Theme) -> Span<'static> {
    if n.stale {
        return Span::styled("?", t.dim());
    }
    if n.gpus.iter().any(|g| g.unhealthy) {
        return Span::styled("✗", t.bad());
    }
    if n.gpus.iter().any(|g| g.idle_allocated) {
        return Span::styled("○", t.warn());
    }
    let u = node_util(n);
    Span::styled(level(u), t.util(u))
}
