//! Snapshots of every view at 80×24 and 160×48, rendered from fixed state,
//! and the key handling.

use super::render::draw;
use super::state::{App, Command, Data, View, command_for};
use crate::accounting::Amounts;
use crate::api::findings::{Finding, FindingKind, Severity};
use crate::api::history::SeriesPoint;
use crate::config::{Config, EXAMPLE};
use crate::live::{Live, ViewPolicy, Viewer};
use crate::quota::{RunningJob, Use, UseRow, burn_down};
use crate::sim::{SimCluster, SimSpec, tenants_from};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const NOW: i64 = 1_795_000_000_000;

/// A fixed cluster: 12 simulated nodes after 20 reports each, one silent.
pub fn fixed_app(nodes: usize) -> App {
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let map = cfg.institute_map();
    let spec = SimSpec { nodes, gpus_per_node: 8, seed: 3, prefix: "gpu".into(), faults: true };
    let mut sim = SimCluster::new(&spec, tenants_from(&cfg), NOW - 200_000);
    let mut live = Live::default();
    for step in 1..=20 {
        let at = NOW - 200_000 + step * 10_000;
        for r in sim.reports(at) {
            live.update_from_agent(&r, at);
        }
    }
    let policy = ViewPolicy { stale_after_ms: 30_000, idle_threshold_pct: 5.0 };
    let cluster = live.cluster_view(&cfg.cluster, &map, policy, Viewer { institute: None }, NOW);
    let jobs = live.jobs_view(&map, policy, Viewer { institute: None }, NOW);
    let quotas = cfg
        .institutes
        .iter()
        .enumerate()
        .map(|(k, i)| {
            let rows: Vec<UseRow> = (0..24 * 30)
                .map(|h| UseRow {
                    hour: NOW / 1000 - 3600 * (h + 1),
                    account: i.accounts.first().cloned().unwrap_or_default(),
                    user: format!("user{}", h % 3),
                    job: format!("{}", 9000 + h / 48),
                    amounts: Amounts {
                        allocated_s: 3600.0 * (10 + 15 * k) as f64,
                        busy_s: 3600.0 * (6 + 5 * k) as f64,
                        ..Default::default()
                    },
                })
                .collect();
            let running: Vec<RunningJob> = jobs
                .iter()
                .filter(|j| j.institute == i.id)
                .map(|j| RunningJob { id: j.id.clone(), gpus: j.gpu_count as u32, remaining_s: None })
                .collect();
            let gpus = cluster.institutes.iter().find(|x| x.id == i.id).map(|x| x.gpus_in_use as u32).unwrap_or(0);
            burn_down(
                &i.id,
                i.display_name(),
                i.quota.as_ref(),
                NOW,
                &Use { rows: &rows, running: &running, gpus_in_use: gpus, data_since_ms: None },
            )
        })
        .collect();
    let series = |n: i64, step: i64| -> Vec<SeriesPoint> {
        (0..n)
            .map(|k| SeriesPoint {
                ts_ms: NOW - (n - k) * step,
                util_pct: Some(50.0 + 40.0 * ((k as f64) / 7.0).sin()),
                power_w: 60_000.0 + 20_000.0 * ((k as f64) / 11.0).cos(),
                allocated_gpus: 70.0 + (k % 20) as f64,
                gpus: 96,
            })
            .collect()
    };
    let mut app = App { url: "http://collector:9470".into(), ..Default::default() };
    app.ui.color = false;
    app.set_data(Data {
        cluster: Some(cluster),
        jobs,
        quotas,
        recent: series(240, 360_000),
        history: series(300, 288_000),
        findings: vec![],
        fetched_ms: NOW - 1_000,
    });
    app
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, app, NOW)).unwrap();
    term.backend().to_string()
}

fn views(app: &mut App) -> Vec<(&'static str, Vec<Command>)> {
    let _ = app;
    vec![
        ("overview", vec![Command::Goto(View::Overview)]),
        ("nodes", vec![Command::Goto(View::Nodes)]),
        ("node_detail", vec![Command::Goto(View::Nodes), Command::Down, Command::Enter]),
        ("jobs", vec![Command::Goto(View::Jobs)]),
        ("job_detail", vec![Command::Goto(View::Jobs), Command::Enter]),
        ("institutes", vec![Command::Goto(View::Institutes)]),
        ("institute_detail", vec![Command::Goto(View::Institutes), Command::Enter]),
        ("history", vec![Command::Goto(View::History)]),
        ("help", vec![Command::Goto(View::Overview), Command::Help]),
    ]
}

#[test]
fn snapshots_of_every_view() {
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut base = fixed_app(12);
        for (name, cmds) in views(&mut base) {
            let mut app = base.clone();
            for c in cmds {
                app.apply(c);
            }
            let screen = render(&mut app, w, h);
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen);
        }
    }
}

#[test]
fn no_panic_down_to_tiny_terminals() {
    let mut base = fixed_app(12);
    for (_, cmds) in views(&mut base) {
        let mut app = base.clone();
        for c in cmds {
            app.apply(c);
        }
        for (w, h) in [(20, 5), (1, 1), (21, 6), (40, 10), (80, 8), (300, 100)] {
            render(&mut app, w, h);
        }
    }
}

#[test]
fn unreachable_collector_shows_a_banner_with_the_data_age() {
    let mut app = fixed_app(4);
    app.link.error = Some(("connection refused".into(), NOW - 30_000));
    app.link.retry_ms = Some(NOW + 4_000);
    let s = render(&mut app, 100, 24);
    assert!(s.contains("collector unreachable (connection refused)"), "{s}");
    assert!(s.contains("data 1 s old") && s.contains("retrying in 4 s"), "{s}");
}

#[test]
fn keys_map_to_commands() {
    assert_eq!(command_for("Tab", false), Some(Command::NextView));
    assert_eq!(command_for("Tab", true), Some(Command::PrevView));
    assert_eq!(command_for("3", false), Some(Command::Goto(View::Jobs)));
    assert_eq!(command_for("j", false), Some(Command::Down));
    assert_eq!(command_for("q", false), Some(Command::Quit));
    assert_eq!(command_for("x", false), None);
    // Every command of the key table is reachable from some key.
    for (keys, _, cmd) in super::state::KEYS {
        let first = keys.split_whitespace().next().unwrap();
        let code = match first {
            "↑" => "Up",
            "↓" => "Down",
            "Shift-Tab" => "BackTab",
            "PgUp" => "PageUp",
            k => k,
        };
        assert_eq!(command_for(code, false), Some(*cmd), "{keys}");
    }
}

#[test]
fn navigation_filter_sort_and_drill_down() {
    let mut app = fixed_app(12);
    app.apply(Command::NextView);
    assert_eq!(app.ui.view, View::Nodes);
    app.apply(Command::PrevView);
    app.apply(Command::PrevView);
    assert_eq!(app.ui.view, View::History);
    app.apply(Command::Goto(View::Nodes));
    app.apply(Command::Bottom);
    assert_eq!(app.selected(), 11);
    app.apply(Command::Down);
    assert_eq!(app.selected(), 11, "stays on the last row");
    app.apply(Command::Top);
    app.apply(Command::Enter);
    assert_eq!(app.ui.detail.as_deref(), Some("gpu0001"));
    app.apply(Command::Back);
    assert_eq!(app.ui.detail, None);
    // Filter narrows the rows and resets the selection.
    app.apply(Command::Filter);
    for c in ["g", "p", "u", "0", "0", "1", "2"] {
        app.filter_key(c);
    }
    app.filter_key("Enter");
    assert!(!app.ui.filtering);
    let names: Vec<String> = app.nodes().iter().map(|n| n.name.clone()).collect();
    assert_eq!(names, ["gpu0012"]);
    app.apply(Command::Back);
    assert_eq!(app.nodes().len(), 12);
    // Sort by utilisation: descending.
    app.apply(Command::Sort);
    let utils: Vec<f64> = app.nodes().iter().map(|n| super::state::node_util(n)).collect();
    assert!(utils.windows(2).all(|w| w[0] >= w[1]), "{utils:?}");
    // Pause, window, help, quit.
    app.apply(Command::Pause);
    assert!(app.ui.paused);
    app.apply(Command::Window);
    assert_eq!(app.ui.window, 2);
    app.apply(Command::Help);
    assert!(app.ui.help);
    app.apply(Command::Down);
    assert!(!app.ui.help, "any key closes the help");
    app.apply(Command::Quit);
    assert!(app.ui.quit);
}

#[test]
fn findings_and_queue_pressure_are_on_screen() {
    let mut app = fixed_app(4);
    app.data.findings.push(Finding {
        id: "wrong_gpu/gpu0001/GPU-x/12".into(),
        kind: FindingKind::WrongGpu,
        severity: Severity::Warning,
        node: Some("gpu0001".into()),
        gpu: Some("GPU-x".into()),
        job: Some("12".into()),
        institute: None,
        message: "process 7 of job 12 runs on GPU 1 of gpu0001, which Slurm gave to job 10".into(),
        first_seen_ms: 0,
        last_seen_ms: 0,
        cleared_ms: None,
    });
    app.data.quotas[0].queued_gpus = Some(6);
    let s = render(&mut app, 120, 30);
    assert!(s.contains("1 scheduler/agent findings: process 7 of job 12"), "{s}");
    app.apply(Command::Goto(View::Institutes));
    let s = render(&mut app, 120, 30);
    assert!(s.contains("+6"), "{s}");
}

#[test]
fn idle_allocated_gpus_are_flagged_in_jobs() {
    let mut app = fixed_app(12);
    app.apply(Command::Goto(View::Jobs));
    let s = render(&mut app, 160, 48);
    assert!(app.data.jobs.iter().any(|j| j.idle_gpus > 0));
    assert!(s.contains("IDLE"), "{s}");
}
