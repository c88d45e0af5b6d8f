//! The Nodes view and a node's drill-down.

use super::super::filter::NodeState;
use super::super::state::{App, NODE_SORTS, View, node_power, node_sm, node_util, slice_size, sort_name};
use super::widgets::{Theme, bar, column_widths, kw, pct, record, selectable, whole_or_say, window};
use crate::api::cluster::{GpuView, NodeView};
use crate::format::{ago, fit};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

pub fn nodes(f: &mut Frame, area: Rect, app: &mut App, t: &Theme) {
    let sort = sort_name(&app.ui, View::Nodes, &NODE_SORTS);
    let list = app.nodes();
    let n = list.len();
    let (start, end, mut st) = window(app, n, area);
    let name_w = list.iter().map(|n| n.name.chars().count()).max().unwrap_or(4).clamp(4, 24) as u16;
    let name_w = if area.width < 100 { name_w.min(14) } else { name_w };
    let mut widths = [
        Constraint::Length(name_w),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(0),
        Constraint::Length(4),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Length(12),
        Constraint::Length(6),
    ];
    let others: u16 = name_w + 4 + 4 + 4 + 4 + 8 + 5 + 4 + 12 + 6 + 10;
    // The bar takes what is left, up to 20 cells; under 4 it is left out.
    let bar_w = area.width.saturating_sub(others).min(20);
    widths[3] = Constraint::Length(if bar_w >= 4 { bar_w } else { 0 });
    let bar_w = column_widths(area.width, &widths)[3] as usize;
    let header = Row::new(vec!["NODE", "GPUS", "UTIL", "", "SM", "MEM", "POWER", "TEMP", "JOBS", "STATE", "SEEN"])
        .style(t.bold());
    let rows: Vec<Row> = list[start..end]
        .iter()
        .map(|n| {
            let u = node_util(n);
            let mem: (u64, u64) = n.gpus.iter().fold((0, 0), |a, g| {
                (a.0 + g.gpu.mem_used_bytes.unwrap_or(0), a.1 + g.gpu.mem_total_bytes.unwrap_or(0))
            });
            let memp = if mem.1 > 0 { pct(mem.0 as f64 / mem.1 as f64 * 100.0) } else { "-".into() };
            let temp = n
                .gpus
                .iter()
                .filter_map(|g| g.gpu.temperature_c)
                .max()
                .map(|c| format!("{c}°C"))
                .unwrap_or_else(|| "-".into());
            let bad = n.gpus.iter().filter(|g| g.unhealthy).count();
            let idle = n.gpus.iter().filter(|g| g.idle_allocated).count();
            let (state, style) = match NodeState::of(n) {
                NodeState::Stale => ("STALE".to_string(), t.bad()),
                NodeState::Unhealthy => (format!("{bad} unhealthy"), t.bad()),
                NodeState::IdleAlloc => (format!("{idle} idle-alloc"), t.warn()),
                NodeState::Ok => ("ok".to_string(), Style::default()),
            };
            Row::new(vec![
                Cell::from(fit(&n.name, name_w as usize)),
                Cell::from(n.gpus.len().to_string()),
                Cell::from(format!("{:>4}", pct(u))),
                Cell::from(bar(u / 100.0, bar_w)).style(t.util(u)),
                Cell::from(node_sm(n).map(|v| format!("{:>4}", pct(v))).unwrap_or_else(|| "   -".into())),
                Cell::from(memp),
                Cell::from(kw(node_power(n))),
                Cell::from(temp),
                Cell::from(n.jobs.len().to_string()),
                Cell::from(state).style(style),
                Cell::from(ago((n.age_s * 1000.0) as i64)),
            ])
        })
        .collect();
    drop(list);
    record(app, area, start);
    let title = format!(
        " {n} nodes · now: UTIL=NVML, SM=GPM SM active · sorted by {sort} (s) · / filter, e.g. state:stale (?: more) \
         · Enter opens "
    );
    selectable(f, area, Table::new(rows, widths).header(header), &title, &mut st, t);
}

/// The longest user name on the node's GPUs (at least 4).
fn n_users_width(n: &NodeView) -> u16 {
    let users = n.gpus.iter().flat_map(held).filter_map(|a| a.user.as_ref());
    users.map(|u| u.chars().count()).max().unwrap_or(4).max(4) as u16
}

/// Who holds a GPU, or each of its MIG slices.
fn held(g: &GpuView) -> impl Iterator<Item = &crate::api::cluster::Allocation> {
    g.allocated_to.iter().chain(g.mig_allocated.iter().map(|h| &h.allocated_to))
}

fn gpu_health(g: &GpuView, events: &[jazari_wire::Event]) -> String {
    let mut parts = vec![];
    if g.gpu.health != jazari_wire::Health::Ok {
        parts.push(format!("{:?}", g.gpu.health).to_uppercase());
    }
    // Each XID code once, with how often it came when more than once.
    let mut xids: Vec<(u64, usize)> = vec![];
    for e in events.iter().filter(|e| e.gpu_uuid == g.gpu.uuid) {
        if let jazari_wire::EventKind::Xid { code } = e.kind {
            match xids.iter_mut().find(|x| x.0 == code) {
                Some(x) => x.1 += 1,
                None => xids.push((code, 1)),
            }
        }
    }
    if !xids.is_empty() {
        let each: Vec<String> =
            xids.iter().map(|(c, k)| if *k > 1 { format!("{c}×{k}") } else { c.to_string() }).collect();
        parts.push(format!("XID {}", each.join(",")));
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

pub fn node_detail(f: &mut Frame, area: Rect, app: &App, t: &Theme, name: &str) {
    let Some(n) = whole_or_say(f, area, app.node_whole(name), &format!("node {name}"), "is gone") else { return };
    // GPU, UTIL, bar, SM, MEM, TEMP, POWER, HEALTH, JOB, USER, INSTITUTE: the bar
    // and the health get what the terminal gives beyond the others. A GPU in MIG
    // mode is followed by a row per slice (its size, UUID, SM active, memory, holder).
    let longest = n_users_width(n);
    let user_w: u16 = if area.width >= 120 { longest.min(20) } else { longest.min(10) };
    let fixed = 3 + 4 + 4 + 7 + 5 + 7 + 8 + user_w + 12 + 10;
    let spare = area.width.saturating_sub(fixed);
    let bar_w = if spare >= 24 { (spare / 3).min(12) } else { 0 };
    let widths = [
        Constraint::Length(3),
        Constraint::Length(4),
        Constraint::Length(bar_w),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(spare.saturating_sub(bar_w + 1).max(6)),
        Constraint::Length(8),
        Constraint::Length(user_w),
        Constraint::Length(12),
    ];
    let cols = column_widths(area.width, &widths);
    let (bar_w, health_w) = (cols[2] as usize, cols[7] as usize);
    let slices: usize = n.gpus.iter().map(|g| g.gpu.mig_devices.len()).sum();
    let procs_of = |g: &GpuView| -> Vec<(String, jazari_wire::Process)> {
        if g.gpu.mig_devices.is_empty() {
            return g.gpu.processes.iter().map(|p| (g.gpu.index.to_string(), p.clone())).collect();
        }
        let at =
            |s: &jazari_wire::MigDevice| format!("{} {}", g.gpu.index, slice_size(s.slices_compute, s.slices_memory));
        g.gpu.mig_devices.iter().flat_map(|s| s.processes.iter().map(move |p| (at(s), p.clone()))).collect()
    };
    let procs_all: Vec<(String, jazari_wire::Process)> = n.gpus.iter().flat_map(procs_of).collect();
    let [head, gpus, procs] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length((n.gpus.len() + slices) as u16 + 2),
        Constraint::Min(0),
    ])
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
    let header =
        Row::new(vec!["GPU", "UTIL", "", "SM", "MEM GiB", "TEMP", "POWER W", "HEALTH", "JOB", "USER", "INSTITUTE"])
            .style(t.bold());
    let gib = |used: Option<u64>, total: Option<u64>| {
        format!("{:.0}/{:.0}", used.unwrap_or(0) as f64 / 1073741824.0, total.unwrap_or(0) as f64 / 1073741824.0)
    };
    let sm_cell = |v: Option<f64>| Cell::from(v.map(|v| format!("{:>3.0}%", v)).unwrap_or_else(|| "  -".into()));
    let mut rows: Vec<Row> = vec![];
    for g in &n.gpus {
        let u = g.gpu.util_gpu_pct.unwrap_or(0) as f64;
        let a = g.allocated_to.as_ref();
        let health = gpu_health(g, &n.events);
        let hs = if health == "ok" { Style::default() } else { t.bad() };
        let health = fit(&health, health_w);
        let mig = !g.gpu.mig_devices.is_empty();
        let (job, user, inst) = match a {
            Some(a) => (
                a.job.clone().unwrap_or_else(|| "-".into()),
                a.user.clone().unwrap_or_else(|| "-".into()),
                a.institute.clone(),
            ),
            None if mig => ("-".into(), "-".into(), format!("{} slices", g.gpu.mig_devices.len())),
            None if g.gpu.processes.is_empty() => ("-".into(), "-".into(), "-".into()),
            None => ("-".into(), "-".into(), "unscheduled".into()),
        };
        rows.push(Row::new(vec![
            Cell::from(g.gpu.index.to_string()),
            Cell::from(g.gpu.util_gpu_pct.map(|u| format!("{u:>3}%")).unwrap_or_else(|| "  -".into())),
            if mig {
                Cell::from(fit("MIG mode", bar_w))
            } else {
                Cell::from(bar(u / 100.0, bar_w)).style(if g.idle_allocated { t.warn() } else { t.util(u) })
            },
            sm_cell(g.gpu.gpm.as_ref().and_then(|m| m.sm_active_pct)),
            Cell::from(gib(g.gpu.mem_used_bytes, g.gpu.mem_total_bytes)),
            Cell::from(g.gpu.temperature_c.map(|c| format!("{c}°C")).unwrap_or_else(|| "-".into())),
            Cell::from(match (g.gpu.power_mw, g.gpu.power_limit_mw) {
                (Some(p), Some(l)) => format!("{}/{}", p / 1000, l / 1000),
                (Some(p), None) => format!("{}", p / 1000),
                _ => "-".into(),
            }),
            Cell::from(health).style(hs),
            Cell::from(job),
            Cell::from(fit(&user, user_w as usize)),
            Cell::from(inst),
        ]));
        for s in &g.gpu.mig_devices {
            let held = g.mig_allocated.iter().find(|h| h.uuid == s.uuid);
            let a = held.map(|h| &h.allocated_to);
            let size = slice_size(s.slices_compute, s.slices_memory);
            // The size in the bar's cell where there is one, else before the UUID.
            let (size_cell, uuid) = if bar_w >= size.len() + 2 {
                (format!("└ {size}"), s.uuid.clone())
            } else {
                (String::new(), format!("{size} {}", s.uuid))
            };
            let inst = match a {
                Some(a) => a.institute.clone(),
                None if s.processes.is_empty() => "-".into(),
                None => "unscheduled".into(),
            };
            let idle = held.is_some_and(|h| h.idle_allocated);
            rows.push(Row::new(vec![
                Cell::from(if bar_w >= size.len() + 2 { "" } else { "└" }),
                Cell::from(""),
                Cell::from(size_cell),
                sm_cell(s.gpm.as_ref().and_then(|m| m.sm_active_pct)).style(if idle {
                    t.warn()
                } else {
                    Style::default()
                }),
                Cell::from(gib(s.mem_used_bytes, s.mem_total_bytes)),
                Cell::from(""),
                Cell::from(""),
                Cell::from(fit(&uuid, health_w)).style(t.dim()),
                Cell::from(a.and_then(|a| a.job.clone()).unwrap_or_else(|| "-".into())),
                Cell::from(fit(&a.and_then(|a| a.user.clone()).unwrap_or_else(|| "-".into()), user_w as usize)),
                Cell::from(inst),
            ]));
        }
    }
    let title = if slices > 0 {
        format!(
            " {} GPUs, {slices} MIG slices · now: UTIL=NVML, SM=GPM SM active · slice size: compute slices of 7 \
             (g), memory slices of 8 (m) ",
            n.gpus.len()
        )
    } else {
        format!(" {} GPUs · now: UTIL=NVML, SM=GPM SM active ", n.gpus.len())
    };
    f.render_widget(
        Table::new(rows, widths).header(header).block(Block::default().borders(Borders::TOP).title(title)),
        gpus,
    );
    let gpu_w: u16 = if slices > 0 { 8 } else { 4 };
    let header = Row::new(vec!["PID", "USER", "JOB", "GPU", "MEM GiB", "COMMAND"]).style(t.bold());
    let rows: Vec<Row> = procs_all
        .iter()
        .map(|(at, p)| {
            Row::new(vec![
                if p.pid == 0 { "-".to_string() } else { p.pid.to_string() },
                p.user.clone().or(p.uid.map(|u| format!("uid {u}"))).unwrap_or_else(|| "(other institute)".into()),
                p.job.clone().unwrap_or_else(|| "-".into()),
                at.clone(),
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
                Constraint::Length(gpu_w),
                Constraint::Length(8),
                Constraint::Min(8),
            ],
        )
        .header(header)
        .block(Block::default().borders(Borders::TOP).title(format!(" {} processes ", procs_all.len()))),
        procs,
    );
}
