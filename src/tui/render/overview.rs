//! The Overview: summary, institutes, the heatmap and the recent utilisation.

use super::super::state::{App, WINDOWS, node_util};
use super::chart::{chart, columns};
use super::widgets::{Theme, bar, kw, pct};
use crate::api::cluster::{GpuView, InstituteLive, NodeView};
use crate::api::findings::Severity;
use crate::format::{exact, fit, hours};
use crate::quota::State as QState;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

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
    let problems = problems_line(&c.nodes, area.width as usize, t);
    let sum_rows = 2 + u16::from(problems.is_some()) + u16::from(!app.data.findings.is_empty());
    let [sum, inst, heat, spark] = Layout::vertical([
        Constraint::Length(sum_rows),
        Constraint::Length(inst_rows),
        Constraint::Length(heat_rows),
        Constraint::Min(spark_rows),
    ])
    .areas(area);
    let util = s.mean_util_pct.map(pct).unwrap_or_else(|| "-".into());
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
            " nodes {}/{} reporting · jobs {} · power {} · utilisation now {util} (NVML: a kernel ran){}",
            s.nodes_reporting,
            s.nodes,
            s.jobs,
            kw(s.power_w),
            s.mean_sm_active_pct.map(|v| format!(" · SM active now {} (GPM)", pct(v))).unwrap_or_default()
        )),
    ];
    let mut lines = lines;
    lines.extend(problems);
    if let Some(first) = app.data.findings.first() {
        let critical = app.data.findings.iter().any(|f| f.severity == Severity::Critical);
        lines.push(Line::styled(
            fit(
                &format!(" ! {} findings (6 lists them): {}", app.data.findings.len(), first.message),
                area.width as usize,
            ),
            if critical { t.bad() } else { t.warn() },
        ));
    }
    f.render_widget(Paragraph::new(lines), sum);
    institutes_compact(f, inst, app, t);
    heatmap(f, heat, &c.nodes, t);
    if spark.height > 0 {
        let (label, window_ms) = WINDOWS[1];
        let title = format!(" cluster utilisation (NVML), last {label}, 0-100 % · now {util} · blank: no reports ");
        let block = Block::default().borders(Borders::TOP).title(title);
        let inner = block.inner(spark);
        f.render_widget(block, spark);
        let to = if app.data.fetched_ms > 0 { app.data.fetched_ms } else { c.generated_ms };
        let cols =
            columns(&app.data.recent, app.data.recent_bucket_ms, to, window_ms, inner.width as usize, |p| p.util_pct);
        chart(f, inner, &cols, 100.0, t.fg(Color::Green), window_ms, t);
    }
}

/// The nodes that are stale or have an unhealthy GPU, by name; none when all report and are healthy.
fn problems_line(nodes: &[NodeView], width: usize, t: &Theme) -> Option<Line<'static>> {
    let stale: Vec<&str> = nodes.iter().filter(|n| n.stale).map(|n| n.name.as_str()).collect();
    let unhealthy: Vec<String> = nodes
        .iter()
        .filter(|n| !n.stale)
        .filter_map(|n| {
            let bad: Vec<String> = n.gpus.iter().filter(|g| g.unhealthy).map(|g| g.gpu.index.to_string()).collect();
            (!bad.is_empty()).then(|| format!("{} (GPU {})", n.name, bad.join(",")))
        })
        .collect();
    if stale.is_empty() && unhealthy.is_empty() {
        return None;
    }
    let list = |what: &str, names: Vec<String>| -> String {
        let mut s = format!("{what} {}: ", names.len());
        let room = width / 2;
        for (i, n) in names.iter().enumerate() {
            if s.len() + n.len() > room && i > 0 {
                s.push_str(&format!("+{} more", names.len() - i));
                break;
            }
            s.push_str(n);
            if i + 1 < names.len() {
                s.push_str(", ");
            }
        }
        s
    };
    let mut parts = vec![];
    if !stale.is_empty() {
        parts.push(list("stale (not reporting)", stale.iter().map(|s| s.to_string()).collect()));
    }
    if !unhealthy.is_empty() {
        parts.push(list("unhealthy", unhealthy));
    }
    Some(Line::styled(fit(&format!(" ✗ {}", parts.join(" · ")), width), t.bad()))
}

fn institutes_compact(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let live: std::collections::HashMap<&str, &InstituteLive> = app
        .data
        .cluster
        .as_ref()
        .map(|c| c.institutes.iter().map(|i| (i.id.as_str(), i)).collect())
        .unwrap_or_default();
    let name_w: u16 = if area.width >= 120 { 34 } else { 0 };
    // The gauge's bar gets what the other columns leave (its text takes 17 more cells).
    let others = 14 + name_w as usize + 12 + 18 + 8 + 7 + if area.width >= 120 { 12 + 10 } else { 0 } + 6;
    let gauge_w = (area.width as usize).saturating_sub(others).min(30);
    let wide = area.width >= 120;
    let header = Row::new(vec![
        "INSTITUTE",
        "NAME",
        "GPUS",
        "GPU-HOURS THIS PERIOD",
        "UTIL NOW",
        "SM NOW",
        if wide { "PERIOD EFF." } else { "" },
        if wide { "PERIOD SM" } else { "" },
    ])
    .style(t.bold());
    let rows: Vec<Row> = app
        .data
        .quotas
        .iter()
        .map(|q| {
            let gpus = match q.max_gpus {
                Some(cap) => format!("{}/{cap}", q.gpus_in_use),
                None => q.gpus_in_use.to_string(),
            };
            let over_cap = q.max_gpus.is_some_and(|c| q.gpus_in_use > c);
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
            let now = live.get(q.institute.as_str()).and_then(|i| i.mean_util_pct).map(pct);
            let sm_now = live.get(q.institute.as_str()).and_then(|i| i.mean_sm_active_pct).map(pct);
            let eff = q.efficiency_pct.map(pct);
            let sm = match (q.gpm_measured_gpu_hours, q.sm_active_gpu_hours) {
                (Some(m), Some(s)) if m > 0.0 => Some(pct(s / m * 100.0)),
                _ => None,
            };
            Row::new(vec![
                Cell::from(fit(&q.institute, 14)),
                Cell::from(fit(&q.name, name_w as usize)),
                Cell::from(if over_cap { format!("{gpus} cap!") } else { gpus }).style(if over_cap {
                    t.warn()
                } else {
                    Style::default()
                }),
                Cell::from(gauge).style(style),
                Cell::from(now.unwrap_or_else(|| "-".into())),
                Cell::from(sm_now.unwrap_or_else(|| "-".into())),
                Cell::from(eff.unwrap_or_else(|| "-".into())),
                Cell::from(sm.unwrap_or_else(|| "-".into())),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(name_w),
                Constraint::Length(12),
                Constraint::Length(gauge_w as u16 + 18),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(if wide { 11 } else { 0 }),
                Constraint::Length(if wide { 9 } else { 0 }),
            ],
        )
        .header(header),
        area,
    );
}

/// Rows the heatmap wants at this width (title included), one cell per GPU.
fn heatmap_rows(nodes: &[NodeView], width: u16) -> u16 {
    let gpus_per = nodes.iter().map(|n| n.gpus.len()).max().unwrap_or(1).max(1);
    let cells = (width.saturating_sub(1) as usize).saturating_sub(label_width(nodes, width));
    let per_row = (cells / (gpus_per + 1)).max(1);
    (nodes.len().div_ceil(per_row) + 1) as u16
}

/// Width of the label naming each heatmap row's first node (with its space), or 0
/// where the window is too narrow to spare it.
fn label_width(nodes: &[NodeView], width: u16) -> usize {
    let longest = nodes.iter().map(|n| n.name.chars().count()).max().unwrap_or(0);
    if width < 60 || longest == 0 { 0 } else { longest.min(12) + 1 }
}

/// One cell per GPU (nodes separated by a space) when they fit, else one cell per node.
fn heatmap(f: &mut Frame, area: Rect, nodes: &[NodeView], t: &Theme) {
    if area.height < 2 {
        return;
    }
    let label_w = label_width(nodes, area.width);
    let inner_w = (area.width.saturating_sub(1) as usize).saturating_sub(label_w);
    let rows_avail = area.height.saturating_sub(1) as usize;
    let gpus_per = nodes.iter().map(|n| n.gpus.len()).max().unwrap_or(1).max(1);
    let per_gpu = {
        let per_row = (inner_w / (gpus_per + 1)).max(1);
        nodes.len().div_ceil(per_row) <= rows_avail
    };
    let mut lines: Vec<Line> = vec![];
    let title = if per_gpu {
        " heatmap: a cell per GPU · ▁▃▅█ utilisation · ○ allocated but idle · · free · ✗ unhealthy · ? stale · \
         ▦ MIG (no NVML utilisation; see the node)"
    } else {
        " heatmap: a cell per node (mean) · ○ has idle-allocated GPUs · ✗ has an unhealthy GPU · ? stale"
    };
    lines.push(Line::from(Span::styled(fit(title, area.width as usize), t.dim())));
    let mut spans: Vec<Span> = vec![];
    let mut col = 1;
    let mut shown = 0;
    for n in nodes {
        let cells: Vec<Span> =
            if per_gpu { n.gpus.iter().map(|g| gpu_cell(g, n.stale, t)).collect() } else { vec![node_cell(n, t)] };
        let need = cells.len() + usize::from(per_gpu);
        if !spans.is_empty() && col + need > inner_w + 1 {
            lines.push(Line::from(std::mem::take(&mut spans)));
            col = 1;
            if lines.len() > rows_avail {
                break;
            }
        }
        if spans.is_empty() {
            // Each row starts with the name of its first node, where the width allows.
            spans.push(Span::raw(" "));
            if label_w > 0 {
                spans.push(Span::styled(format!("{:<w$}", fit(&n.name, label_w - 1), w = label_w), t.dim()));
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
    if !g.gpu.mig_devices.is_empty() {
        // No NVML utilisation per GPU in MIG mode: its slices are in the node's drill-down.
        if !g.mig_allocated.is_empty() && g.mig_allocated.iter().all(|h| h.idle_allocated) {
            return Span::styled("○", t.warn());
        }
        return Span::styled("▦", t.dim());
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
