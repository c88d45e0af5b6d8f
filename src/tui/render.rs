//! Drawing: one function per screen area, each reading the state only.

use super::state::{App, JOB_SORTS, KEYS, NODE_SORTS, View, WINDOWS, node_power, node_util};
use crate::cli::{fit, hours, thousands};
use crate::quota::State as QState;
use crate::server::live::{GpuView, NodeView};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, TableState};

/// Styles, or none of them when colour is off (`NO_COLOR`).
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    fn dim(&self) -> Style {
        if self.color { Style::default().fg(Color::DarkGray) } else { Style::default() }
    }
    fn util(&self, u: f64) -> Style {
        self.fg(match u {
            u if u < 25.0 => Color::Blue,
            u if u < 50.0 => Color::Cyan,
            u if u < 75.0 => Color::Green,
            _ => Color::LightGreen,
        })
    }
    fn bad(&self) -> Style {
        if self.color { Style::default().fg(Color::Red).add_modifier(Modifier::BOLD) } else { self.bold() }
    }
    fn warn(&self) -> Style {
        if self.color { Style::default().fg(Color::Magenta) } else { Style::default() }
    }
}

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
        View::Overview => overview(f, body, app, &t),
        View::Nodes => match app.ui.detail.clone() {
            Some(n) => node_detail(f, body, app, &t, &n),
            None => nodes(f, body, app, &t),
        },
        View::Jobs => match app.ui.detail.clone() {
            Some(j) => job_detail(f, body, app, &t, &j),
            None => jobs(f, body, app, &t),
        },
        View::Institutes => match app.ui.detail.clone() {
            Some(i) => institute_detail(f, body, app, &t, &i),
            None => institutes(f, body, app, &t),
        },
        View::History => history(f, body, app, &t),
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

pub fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86400),
    }
}

fn bar(frac: f64, width: usize) -> String {
    let frac = frac.clamp(0.0, 1.0);
    let full = (frac * width as f64).round() as usize;
    format!("{}{}", "█".repeat(full), "░".repeat(width - full))
}

// ---- overview ----

fn overview(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
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
    let live: std::collections::HashMap<&str, &crate::server::live::InstituteLive> = app
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
                    format!("{} {:>3.0}% of {}", bar(p / 100.0, gauge_w), p, thousands(g)),
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

// ---- nodes ----

/// A table with a selected row, under a titled top border.
fn selectable(f: &mut Frame, area: Rect, table: Table, title: &str, st: &mut TableState, t: &Theme) {
    let block = Block::default().borders(Borders::TOP).title(title.to_string());
    f.render_stateful_widget(table.block(block).row_highlight_style(t.selected()), area, st);
}

/// The rows worth building: a window of the table around the selection
/// (tables of thousands of nodes only build what shows).
fn window(app: &App, rows: usize, area: Rect) -> (usize, usize, TableState) {
    let page = area.height.saturating_sub(2).max(1) as usize;
    let sel = app.selected().min(rows.saturating_sub(1));
    let start = sel.saturating_sub(page.saturating_sub(1)).min(rows.saturating_sub(page));
    let end = (start + page).min(rows);
    let mut st = TableState::default();
    if rows > 0 {
        st.select(Some(sel - start));
    }
    (start, end, st)
}

fn nodes(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
    app.ui.page = area.height.saturating_sub(2) as usize;
    let sort = NODE_SORTS[app.ui.sort[1] % NODE_SORTS.len()];
    let list = app.nodes();
    let n = list.len();
    let (start, end, mut st) = window(app, n, area);
    let header =
        Row::new(vec!["NODE", "GPUS", "UTIL", "", "MEM", "POWER", "TEMP", "JOBS", "STATE", "SEEN"]).style(t.bold());
    let rows: Vec<Row> = list[start..end]
        .iter()
        .map(|n| {
            let u = node_util(n);
            let mem: (u64, u64) = n.gpus.iter().fold((0, 0), |a, g| {
                (a.0 + g.gpu.mem_used_bytes.unwrap_or(0), a.1 + g.gpu.mem_total_bytes.unwrap_or(0))
            });
            let memp = if mem.1 > 0 { format!("{:.0}%", mem.0 as f64 / mem.1 as f64 * 100.0) } else { "-".into() };
            let temp = n
                .gpus
                .iter()
                .filter_map(|g| g.gpu.temperature_c)
                .max()
                .map(|c| format!("{c}°C"))
                .unwrap_or_else(|| "-".into());
            let bad = n.gpus.iter().filter(|g| g.unhealthy).count();
            let idle = n.gpus.iter().filter(|g| g.idle_allocated).count();
            let (state, style) = if n.stale {
                ("STALE".to_string(), t.bad())
            } else if bad > 0 {
                (format!("{bad} unhealthy"), t.bad())
            } else if idle > 0 {
                (format!("{idle} idle-alloc"), t.warn())
            } else {
                ("ok".to_string(), Style::default())
            };
            Row::new(vec![
                Cell::from(fit(&n.name, 18)),
                Cell::from(n.gpus.len().to_string()),
                Cell::from(format!("{u:>3.0}%")),
                Cell::from(bar(u / 100.0, 10)).style(t.util(u)),
                Cell::from(memp),
                Cell::from(format!("{:.1} kW", node_power(n) / 1000.0)),
                Cell::from(temp),
                Cell::from(n.jobs.len().to_string()),
                Cell::from(state).style(style),
                Cell::from(ago((n.age_s * 1000.0) as i64)),
            ])
        })
        .collect();
    let title = format!(" {} nodes · sorted by {sort} (s) · / filter · Enter opens ", n);
    let widths = [
        Constraint::Length(18),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(13),
        Constraint::Length(6),
    ];
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
}

fn gpu_health(g: &GpuView, events: &[jazari_agent::wire::Event]) -> String {
    let mut parts = vec![];
    if g.gpu.health != jazari_agent::wire::Health::Ok {
        parts.push(format!("{:?}", g.gpu.health).to_uppercase());
    }
    let xids: Vec<String> = events
        .iter()
        .filter(|e| e.gpu_uuid == g.gpu.uuid)
        .filter_map(|e| match e.kind {
            jazari_agent::wire::EventKind::Xid { code } => Some(code.to_string()),
            _ => None,
        })
        .collect();
    if !xids.is_empty() {
        parts.push(format!("XID {}", xids.join(",")));
    }
    if let Some(e) = &g.gpu.ecc
        && e.volatile_uncorrected.unwrap_or(0) > 0
    {
        parts.push(format!("ECC {}", e.volatile_uncorrected.unwrap_or(0)));
    }
    if let Some(tr) = &g.gpu.throttle_reasons {
        let real: Vec<&String> = tr.iter().filter(|r| r.as_str() != "gpu_idle").collect();
        if !real.is_empty() {
            parts.push(format!("throttle {}", real.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")));
        }
    }
    if parts.is_empty() { "ok".into() } else { parts.join(" ") }
}

fn node_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, name: &str) {
    let Some(n) = app.data.cluster.as_ref().and_then(|c| c.nodes.iter().find(|n| n.name == name)) else {
        f.render_widget(Paragraph::new(format!("node {name} is gone (Esc: back)")), area);
        return;
    };
    let nprocs: usize = n.gpus.iter().map(|g| g.gpu.processes.len()).sum();
    let [head, gpus, procs] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(n.gpus.len() as u16 + 2), Constraint::Min(0)])
            .areas(area);
    let h = &n.host;
    let info = format!(
        " {} · {} · driver {} · CUDA {} · CPU {} · load {} · mem {}/{} GiB{}",
        n.name,
        if n.stale { "STALE" } else { "reporting" },
        h.driver_version.as_deref().unwrap_or("-"),
        h.cuda_version.as_deref().unwrap_or("-"),
        h.cpu_percent.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "-".into()),
        h.load.map(|l| format!("{:.1}", l[0])).unwrap_or_else(|| "-".into()),
        h.mem_used_bytes.unwrap_or(0) >> 30,
        h.mem_total_bytes.unwrap_or(0) >> 30,
        if n.events.is_empty() { String::new() } else { format!(" · {} events", n.events.len()) }
    );
    f.render_widget(Paragraph::new(vec![Line::styled(info, t.bold()), Line::styled(" Esc: back", t.dim())]), head);
    let header = Row::new(vec!["GPU", "UTIL", "", "MEM GiB", "TEMP", "POWER W", "HEALTH", "JOB", "USER", "INSTITUTE"])
        .style(t.bold());
    let rows: Vec<Row> = n
        .gpus
        .iter()
        .map(|g| {
            let u = g.gpu.util_gpu_pct.unwrap_or(0) as f64;
            let a = g.allocated_to.as_ref();
            let health = gpu_health(g, &n.events);
            let hs = if health == "ok" { Style::default() } else { t.bad() };
            Row::new(vec![
                Cell::from(g.gpu.index.to_string()),
                Cell::from(g.gpu.util_gpu_pct.map(|u| format!("{u:>3}%")).unwrap_or_else(|| "  -".into())),
                Cell::from(bar(u / 100.0, 8)).style(if g.idle_allocated { t.warn() } else { t.util(u) }),
                Cell::from(format!(
                    "{:.0}/{:.0}",
                    g.gpu.mem_used_bytes.unwrap_or(0) as f64 / 1073741824.0,
                    g.gpu.mem_total_bytes.unwrap_or(0) as f64 / 1073741824.0
                )),
                Cell::from(g.gpu.temperature_c.map(|c| format!("{c}°C")).unwrap_or_else(|| "-".into())),
                Cell::from(match (g.gpu.power_mw, g.gpu.power_limit_mw) {
                    (Some(p), Some(l)) => format!("{}/{}", p / 1000, l / 1000),
                    (Some(p), None) => format!("{}", p / 1000),
                    _ => "-".into(),
                }),
                Cell::from(health).style(hs),
                Cell::from(a.and_then(|a| a.job.clone()).unwrap_or_else(|| "-".into())),
                Cell::from(a.and_then(|a| a.user.clone()).unwrap_or_else(|| "-".into())),
                Cell::from(
                    a.map(|a| a.institute.clone())
                        .unwrap_or_else(|| if g.gpu.processes.is_empty() { "-".into() } else { "unscheduled".into() }),
                ),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(3),
                Constraint::Length(4),
                Constraint::Length(8),
                Constraint::Length(7),
                Constraint::Length(5),
                Constraint::Length(7),
                Constraint::Length(14),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Min(8),
            ],
        )
        .header(header)
        .block(Block::default().borders(Borders::TOP).title(format!(" {} GPUs ", n.gpus.len()))),
        gpus,
    );
    let header = Row::new(vec!["PID", "USER", "JOB", "GPU", "MEM GiB", "COMMAND"]).style(t.bold());
    let rows: Vec<Row> = n
        .gpus
        .iter()
        .flat_map(|g| g.gpu.processes.iter().map(move |p| (g.gpu.index, p)))
        .map(|(i, p)| {
            Row::new(vec![
                if p.pid == 0 { "-".to_string() } else { p.pid.to_string() },
                p.user.clone().or(p.uid.map(|u| format!("uid {u}"))).unwrap_or_else(|| "(other institute)".into()),
                p.job.clone().unwrap_or_else(|| "-".into()),
                i.to_string(),
                format!("{:.1}", p.gpu_mem_bytes.unwrap_or(0) as f64 / 1073741824.0),
                p.command.clone().unwrap_or_default(),
            ])
        })
        .collect();
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(18),
                Constraint::Length(10),
                Constraint::Length(4),
                Constraint::Length(8),
                Constraint::Min(8),
            ],
        )
        .header(header)
        .block(Block::default().borders(Borders::TOP).title(format!(" {nprocs} processes "))),
        procs,
    );
}

// ---- jobs ----

fn jobs(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
    app.ui.page = area.height.saturating_sub(2) as usize;
    let sort = JOB_SORTS[app.ui.sort[2] % JOB_SORTS.len()];
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
                Cell::from(j.user.clone().unwrap_or_else(|| "-".into())),
                Cell::from(j.account.clone().unwrap_or_else(|| "-".into())),
                Cell::from(j.institute.clone()),
                Cell::from(j.gpu_count.to_string()),
                Cell::from(j.mean_util_pct.map(|u| format!("{u:.0}%")).unwrap_or_else(|| "-".into()))
                    .style(t.util(j.mean_util_pct.unwrap_or(0.0))),
                Cell::from(format!("{:.0}", j.mem_used_bytes as f64 / 1073741824.0)),
                Cell::from(j.run_time_s.map(|s| ago((s * 1000.0) as i64)).unwrap_or_else(|| "-".into())),
                Cell::from(flag).style(t.warn()),
            ])
        })
        .collect();
    let title = format!(" {n} running jobs · sorted by {sort} (s) · / filter · Enter opens ");
    let widths = [
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(11),
        Constraint::Length(12),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
}

fn job_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, id: &str) {
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
            " mean utilisation {} · {} allocated but idle · running {}",
            j.mean_util_pct.map(|u| format!("{u:.0}%")).unwrap_or_else(|| "-".into()),
            j.idle_gpus,
            j.run_time_s.map(|s| ago((s * 1000.0) as i64)).unwrap_or_else(|| "-".into())
        )),
        Line::styled(" Esc: back", t.dim()),
    ];
    f.render_widget(Paragraph::new(lines), head);
    let header = Row::new(vec!["NODE", "GPU", "UUID", "UTIL", "", "MEM GiB", ""]).style(t.bold());
    let rows: Vec<Row> = j
        .gpus
        .iter()
        .map(|g| {
            let u = g.util_gpu_pct.unwrap_or(0) as f64;
            Row::new(vec![
                Cell::from(g.node.clone()),
                Cell::from(g.index.to_string()),
                Cell::from(fit(&g.uuid, 20)),
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
                Constraint::Length(20),
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

// ---- institutes ----

fn institutes(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
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
                Cell::from(q.granted_gpu_hours.map(thousands).unwrap_or_else(|| "-".into())),
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

fn institute_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, id: &str) {
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
            q.granted_gpu_hours.map(thousands).unwrap_or_else(|| "-".into()),
            hours(q.used_gpu_hours),
            hours(q.settled_gpu_hours),
            hours(q.in_flight_gpu_hours),
            committed
        )),
        Line::from(format!(
            " burn {}/day · projected {} · runs out {} · efficiency {}",
            hours(q.burn_rate_gpu_hours_per_day),
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

// ---- history ----

fn history(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let (label, _) = WINDOWS[app.ui.window];
    let pts = &app.data.history;
    let [a, b, c] =
        Layout::vertical([Constraint::Ratio(1, 3), Constraint::Ratio(1, 3), Constraint::Ratio(1, 3)]).areas(area);
    let width = area.width.saturating_sub(2) as usize;
    let take = |v: Vec<u64>| -> Vec<u64> { v[v.len().saturating_sub(width)..].to_vec() };
    let util = take(pts.iter().map(|p| p.util_pct.unwrap_or(0.0).round() as u64).collect());
    let power = take(pts.iter().map(|p| p.power_w.round() as u64).collect());
    let alloc = take(pts.iter().map(|p| p.allocated_gpus.round() as u64).collect());
    let gpus = pts.iter().map(|p| p.gpus).max().unwrap_or(0);
    let last = |v: &Vec<u64>| v.last().copied().unwrap_or(0);
    let title = |what: String| Block::default().borders(Borders::TOP).title(what);
    f.render_widget(
        Sparkline::default()
            .block(title(format!(
                " utilisation, last {label} (w: 1h/24h/7d) · now {}% · NVML GPU utilisation ",
                last(&util)
            )))
            .data(&util)
            .max(100)
            .style(t.fg(Color::Green)),
        a,
    );
    let pmax = power.iter().copied().max().unwrap_or(1).max(1);
    f.render_widget(
        Sparkline::default()
            .block(title(format!(
                " power, last {label} · now {:.1} kW · peak {:.1} kW ",
                last(&power) as f64 / 1000.0,
                pmax as f64 / 1000.0
            )))
            .data(&power)
            .max(pmax)
            .style(t.fg(Color::Yellow)),
        b,
    );
    f.render_widget(
        Sparkline::default()
            .block(title(format!(" allocated GPUs, last {label} · now {} of {gpus} ", last(&alloc))))
            .data(&alloc)
            .max(gpus.max(1))
            .style(t.fg(Color::Cyan)),
        c,
    );
    if pts.is_empty() {
        f.render_widget(
            Paragraph::new(" no history yet for this window").style(t.dim()),
            Rect { height: 1, y: a.y + 1, ..a },
        );
    }
}
