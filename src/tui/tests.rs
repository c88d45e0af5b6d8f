//! Snapshots of every view at 80×24 and 160×48, rendered from fixed state,
//! and the key handling.

use super::filter::NodeState;
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
        for mut r in sim.reports(at) {
            dress(&mut r);
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
                        // GPM measured for all institutes but the last (its SM is "-").
                        gpm_s: if k == 3 { 0.0 } else { 3600.0 * (8 + 12 * k) as f64 },
                        sm_active_s: if k == 3 { 0.0 } else { 3600.0 * (2 + 3 * k) as f64 },
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
    // Series with a gap (an outage) between 40 % and 55 % of the window.
    let series = |n: i64, step: i64| -> Vec<SeriesPoint> {
        (0..n)
            .filter(|k| !(n * 40 / 100..n * 55 / 100).contains(k))
            .map(|k| SeriesPoint {
                ts_ms: NOW - (n - k) * step,
                util_pct: Some(50.0 + 40.0 * ((k as f64) / 7.0).sin()),
                power_w: 60_000.0 + 20_000.0 * ((k as f64) / 11.0).cos(),
                allocated_gpus: 70.0 + (k % 20) as f64,
                gpus: 96,
            })
            .collect()
    };
    let mut quotas: Vec<crate::api::quota::BurnDown> = quotas;
    // One institute over its cap of GPUs at once.
    if let Some(q) = quotas.iter_mut().find(|q| q.gpus_in_use > 1) {
        q.max_gpus = Some(q.gpus_in_use - 1);
        q.state = crate::quota::State::Warning;
        q.reasons.insert(0, format!("{} GPUs in use, over the cap of {}", q.gpus_in_use, q.gpus_in_use - 1));
    }
    let findings = findings_of(&cluster, &jobs);
    let usage = users_usage(&jobs);
    let mut app = App { url: "http://collector:9470".into(), ..Default::default() };
    app.ui.color = false;
    app.set_data(Data {
        jobs_changed: None,
        jobs_ms: NOW,
        cluster: Some(cluster),
        jobs,
        quotas,
        recent: series(240, 360_000),
        recent_bucket_ms: 360_000,
        history: series(300, 288_000),
        history_bucket_ms: 288_000,
        findings,
        usage,
        usage_from_ms: Some(NOW - 20 * 86_400_000),
        usage_label: "2026-11".into(),
        fetched_ms: NOW - 1_000,
        jobs_brief: false,
        focus_node: None,
        focus_jobs: vec![],
    });
    app
}

/// What the simulator leaves out: GPM activity on the Hopper nodes (every
/// node but each third, as if those had older GPUs: their SM column is "-"),
/// and a GPU in MIG mode on gpu0001 (GPU 0, job 100001's) and gpu0002 (GPU 7):
/// its job's processes on a 3g slice, a notebook outside any job on a 1g slice,
/// a 2g and a 1g slice free.
fn dress(r: &mut jazari_wire::Report) {
    use jazari_wire::{Gpm, MigDevice, Process};
    let k: u32 = r.node.trim_start_matches("gpu").parse().unwrap_or(0);
    if k.is_multiple_of(3) {
        return;
    }
    let gpm = |sm: f64, tensor: f64| {
        Some(Gpm { sm_active_pct: Some(sm), tensor_active_pct: Some(tensor), ..Default::default() })
    };
    for g in &mut r.gpus {
        let u = g.util_gpu_pct.unwrap_or(0) as f64;
        let tensor = if !g.processes.is_empty() && g.index % 2 == 0 { (u * 0.3).round() } else { 0.0 };
        g.gpm = gpm((u * 0.55).round(), tensor);
    }
    let at = match k {
        1 => 0,
        2 => 7,
        _ => return,
    };
    let Some(g) = r.gpus.iter_mut().find(|g| g.index == at) else { return };
    let gib = 1u64 << 30;
    let mut job: Vec<Process> = std::mem::take(&mut g.processes);
    for p in &mut job {
        p.gpu_mem_bytes = p.gpu_mem_bytes.map(|b| b.min(40 * gib));
    }
    let stray = Process {
        pid: 20_000 + k,
        uid: Some(1500),
        user: Some("erin".into()),
        command: Some("jupyter".into()),
        gpu_mem_bytes: Some(3 * gib),
        ..Default::default()
    };
    let slice = |n: u32, gi: u32, c: u32, m: u32, mem_gib: u64, procs: Vec<Process>, sm: f64, tensor: f64| MigDevice {
        uuid: format!("MIG-{k:08x}-{at:04x}-5000-8000-{n:012x}"),
        gpu_instance_id: Some(gi),
        compute_instance_id: Some(0),
        slices_compute: Some(c),
        slices_memory: Some(m),
        mem_used_bytes: Some(procs.iter().filter_map(|p| p.gpu_mem_bytes).sum()),
        mem_total_bytes: Some(mem_gib * gib),
        processes: procs,
        gpm: gpm(sm, tensor),
    };
    g.mig_devices = vec![
        slice(1, 1, 3, 4, 65, job.clone(), 48.0, 21.0),
        slice(2, 2, 2, 2, 32, vec![], 0.0, 0.0),
        slice(3, 9, 1, 1, 16, vec![stray.clone()], 9.0, 0.0),
        slice(4, 10, 1, 1, 16, vec![], 0.0, 0.0),
    ];
    g.processes = job.into_iter().chain([stray]).collect();
    g.mem_used_bytes = Some(g.mig_devices.iter().filter_map(|s| s.mem_used_bytes).sum());
    g.mig_enabled = Some(true);
    g.util_gpu_pct = None;
    g.gpm = None;
}

/// What the collector's rules would raise on the fixed cluster: the silent
/// node, the GPU with XIDs, the idle-allocated jobs.
fn findings_of(cluster: &crate::api::cluster::ClusterView, jobs: &[crate::api::cluster::JobView]) -> Vec<Finding> {
    let mut v = vec![];
    let f = |kind, severity, node: &str, gpu: Option<String>, job: Option<&str>, message: String, age: i64| Finding {
        id: format!("{kind:?}/{node}"),
        kind,
        severity,
        node: Some(node.into()),
        gpu,
        job: job.map(Into::into),
        institute: None,
        message,
        first_seen_ms: NOW - age,
        last_seen_ms: NOW - 10_000,
        cleared_ms: None,
    };
    for n in &cluster.nodes {
        if n.stale {
            let m = format!("{} has not reported for {} s", n.name, n.age_s as i64);
            v.push(f(FindingKind::NodeStale, Severity::Critical, &n.name, None, None, m, 90_000));
        }
        for g in n.gpus.iter().filter(|g| g.unhealthy) {
            let m = format!("XID 79 on GPU {} of {}: the GPU fell off the bus", g.gpu.index, n.name);
            v.push(f(FindingKind::Xid, Severity::Critical, &n.name, g.gpu.uuid.clone(), None, m, 150_000));
        }
    }
    for j in jobs.iter().filter(|j| j.idle_gpus > 0).take(3) {
        let node = j.nodes.first().cloned().unwrap_or_default();
        let m = format!("job {} holds {} GPUs at 0 % on {node}", j.id, j.idle_gpus);
        let mut x = f(FindingKind::IdleAllocated, Severity::Warning, &node, None, Some(&j.id), m, 1_800_000);
        x.institute = Some(j.institute.clone());
        v.push(x);
    }
    v
}

/// The ledger's sums per user this period.
fn users_usage(jobs: &[crate::api::cluster::JobView]) -> Vec<crate::api::usage::UsageRow> {
    use crate::api::usage::{GroupKey, UsageAmounts, UsageRow};
    let mut users: Vec<String> = jobs.iter().filter_map(|j| j.user.clone()).collect();
    users.sort();
    users.dedup();
    users.push("zeno".into());
    users
        .iter()
        .enumerate()
        .map(|(k, u)| UsageRow {
            key: GroupKey::User(Some(u.clone())),
            amounts: UsageAmounts {
                allocated_gpu_seconds: 3600.0 * (40.0 + 25.0 * k as f64),
                busy_gpu_seconds: 3600.0 * (20.0 + 10.0 * k as f64),
                idle_allocated_gpu_seconds: 3600.0 * (2.0 * k as f64),
                // GPM measured for all but every third user (their SM column is "-").
                gpm_measured_gpu_seconds: if k % 3 == 2 { 0.0 } else { 3600.0 * (30.0 + 20.0 * k as f64) },
                sm_active_gpu_seconds: if k % 3 == 2 { 0.0 } else { 3600.0 * (9.0 + 5.0 * k as f64) },
                ..Default::default()
            },
        })
        .collect()
}

pub(super) fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, app, NOW)).unwrap();
    term.backend().to_string()
}

pub(super) fn views(app: &mut App) -> Vec<(&'static str, Vec<Command>)> {
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
        ("history_1h", vec![Command::Goto(View::History), Command::Window, Command::Window]),
        ("findings", vec![Command::Goto(View::Findings)]),
        ("users", vec![Command::Goto(View::Users)]),
        ("nodes_by_state", vec![Command::Goto(View::Nodes), Command::Sort]),
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
    assert_eq!(app.ui.view, View::Users);
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
    // Sort by state (worst first), then by utilisation: descending.
    app.apply(Command::Sort);
    let states: Vec<NodeState> = app.nodes().iter().map(|n| NodeState::of(n)).collect();
    assert!(states.windows(2).all(|w| w[0] <= w[1]), "{states:?}");
    assert_eq!(states[0], NodeState::Stale);
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
    app.data.findings = vec![Finding {
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
    }];
    app.data.quotas[0].queued_gpus = Some(6);
    let s = render(&mut app, 120, 30);
    assert!(s.contains("! 1 findings (6 lists them): process 7 of job 12"), "{s}");
    assert!(s.contains("! 1 findings (6)"), "the count in the header: {s}");
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

/// The cell run of a bar (█ and ░) on the line that holds `name`.
fn bar_on_line(screen: &str, name: &str) -> Option<(usize, usize)> {
    let line = screen.lines().find(|l| l.contains(name))?;
    let full = line.chars().filter(|c| *c == '█').count();
    let empty = line.chars().filter(|c| *c == '░').count();
    (full + empty > 0).then_some((full, empty))
}

#[test]
fn bars_fill_their_share_at_every_width() {
    let mut app = fixed_app(12);
    app.apply(Command::Goto(View::Nodes));
    let node = app.nodes().iter().find(|n| !n.stale).map(|n| (n.name.clone(), super::state::node_util(n))).unwrap();
    let mut drawn = 0;
    for w in 20..=200u16 {
        let s = render(&mut app, w, 30);
        let Some((full, empty)) = bar_on_line(&s, &node.0) else { continue };
        drawn += 1;
        let cells = full + empty;
        let want = (node.1 / 100.0 * cells as f64).round() as usize;
        assert_eq!(full, want, "at {w} columns: {full} of {cells} cells for {:.1} %", node.1);
    }
    assert!(drawn > 120, "the bar shows from 80 columns on ({drawn})");
    // The bar itself.
    for width in 0..40 {
        for pct in [0.0, 0.25, 0.5, 0.98, 1.0] {
            let b = super::render::bar_for_tests(pct, width);
            assert_eq!(b.chars().count(), width);
            assert_eq!(b.chars().filter(|c| *c == '█').count(), (pct * width as f64).round() as usize);
        }
    }
}

#[test]
fn the_key_hint_stays_at_80_columns() {
    let mut app = fixed_app(12);
    for v in View::ALL {
        app.apply(Command::Goto(v));
        let s = render(&mut app, 80, 24);
        let head = s.lines().next().unwrap();
        assert!(head.contains("?:keys"), "{head}");
        assert!(head.contains("6:Find") && head.contains("7:Users"), "{head}");
    }
}

#[test]
fn no_scheduler_words_without_scheduler_findings() {
    let mut app = fixed_app(12);
    assert!(app.data.findings.iter().all(|f| !f.kind.needs_scheduler()));
    for (w, h) in [(80, 24), (160, 48)] {
        let s = render(&mut app, w, h);
        assert!(!s.contains("scheduler/agent") && !s.contains("Slurm allocated"), "{s}");
    }
}

#[test]
fn the_filter_takes_field_prefixes_and_bare_words_match_names() {
    let mut app = fixed_app(12);
    app.apply(Command::Goto(View::Nodes));
    let filtered = |app: &mut App, f: &str| -> Vec<String> {
        app.ui.filter = f.into();
        app.nodes().iter().map(|n| n.name.clone()).collect()
    };
    assert_eq!(filtered(&mut app, "state:stale"), ["gpu0012"]);
    assert_eq!(filtered(&mut app, "state:unhealthy"), ["gpu0002"]);
    assert!(filtered(&mut app, "state:ok").iter().all(|n| n != "gpu0012" && n != "gpu0002"));
    assert!(filtered(&mut app, "state:down").is_empty(), "an unknown state matches nothing");
    let job = app.data.jobs.iter().find(|j| j.nodes.len() == 1).unwrap().clone();
    assert_eq!(filtered(&mut app, &format!("job:{}", job.id)), job.nodes);
    // A bare word is a node name only: a job id does not match it.
    assert!(filtered(&mut app, &job.id).is_empty());
    let user = job.user.clone().unwrap();
    assert!(filtered(&mut app, &format!("user:{user}")).contains(&job.nodes[0]));
    assert!(filtered(&mut app, &format!("institute:{} gpu", job.institute)).contains(&job.nodes[0]));
    // The help names the prefixes.
    app.ui.filter.clear();
    app.apply(Command::Help);
    let s = render(&mut app, 80, 24);
    assert!(s.contains("state:stale|unhealthy|idle-alloc|ok") && s.contains("user:NAME"), "{s}");
}

#[test]
fn findings_list_sort_and_open_their_subject() {
    let mut app = fixed_app(12);
    app.apply(Command::Goto(View::Findings));
    let s = render(&mut app, 160, 48);
    assert!(s.contains("node_stale") && s.contains("gpu0012") && s.contains("CRITICAL"), "{s}");
    assert!(s.contains("gpu0002 GPU 3"), "the GPU by its index: {s}");
    // Critical first; Enter on the stale node opens the node.
    assert_eq!(app.findings()[0].severity, Severity::Critical);
    let stale = app.findings().iter().position(|f| f.kind == FindingKind::NodeStale).unwrap();
    for _ in 0..stale {
        app.apply(Command::Down);
    }
    app.apply(Command::Enter);
    assert_eq!((app.ui.view, app.ui.detail.as_deref()), (View::Nodes, Some("gpu0012")));
    // An idle-allocated job opens the job.
    app.apply(Command::Goto(View::Findings));
    app.apply(Command::Bottom);
    let job = app.findings().last().unwrap().job.clone();
    app.apply(Command::Enter);
    assert_eq!((app.ui.view, app.ui.detail.clone()), (View::Jobs, job));
    // Sorts: by last seen, then by first seen (newest first).
    app.apply(Command::Goto(View::Findings));
    for _ in 0..4 {
        app.apply(Command::Sort);
    }
    let first: Vec<i64> = app.findings().iter().map(|f| f.first_seen_ms).collect();
    assert!(first.windows(2).all(|w| w[0] >= w[1]), "{first:?}");
}

#[test]
fn users_hold_gpus_now_and_hours_this_period() {
    let mut app = fixed_app(12);
    let users = app.users();
    let held: usize = users.iter().map(|u| u.gpus_now).sum();
    assert_eq!(held, app.data.jobs.iter().map(|j| j.gpu_count).sum::<usize>());
    let zeno = users.iter().find(|u| u.user == "zeno").expect("a user with hours and no job");
    assert_eq!((zeno.gpus_now, zeno.jobs_now), (0, 0));
    assert!(users.windows(2).all(|w| w[0].gpus_now >= w[1].gpus_now), "sorted by GPUs held");
    app.apply(Command::Goto(View::Users));
    let s = render(&mut app, 80, 24);
    assert!(s.contains("users") && s.contains("GPU-hours in 2026-11"), "{s}");
    let first = app.users()[0].user.clone();
    app.apply(Command::Enter);
    assert_eq!(app.ui.view, View::Jobs);
    assert!(app.jobs().iter().all(|j| j.user.as_deref() == Some(first.as_str())));
}

#[test]
fn the_projection_names_the_window_it_uses() {
    let mut app = fixed_app(4);
    for q in &mut app.data.quotas {
        q.burn_window_s = 2.0 * 86_400.0;
    }
    app.apply(Command::Goto(View::Institutes));
    let s = render(&mut app, 160, 48);
    assert!(s.contains("over the last 2 days"), "{s}");
    app.apply(Command::Enter);
    let s = render(&mut app, 160, 48);
    assert!(s.contains("burn") && s.contains("over the last 2 days"), "{s}");
}

#[test]
fn no_negative_zero_and_every_percentage_is_named() {
    let mut app = fixed_app(12);
    if let Some(c) = app.data.cluster.as_mut() {
        c.summary.power_w = -0.01;
    }
    let s = render(&mut app, 160, 48);
    assert!(!s.contains("-0.0") && !s.contains("-0%"), "{s}");
    assert!(s.contains("UTIL NOW") && s.contains("PERIOD EFF.") && s.contains("utilisation now"), "{s}");
}

#[test]
fn clicks_switch_views_and_select_rows() {
    let mut app = fixed_app(12);
    render(&mut app, 160, 48);
    let (x, _, _) = *app.ui.tabs.iter().find(|t| t.2 == View::Nodes).unwrap();
    app.click(x + 1, 0);
    assert_eq!(app.ui.view, View::Nodes);
    render(&mut app, 160, 48);
    let top = app.ui.table_y.unwrap();
    app.click(10, top + 3);
    assert_eq!(app.selected(), 3);
    let name = app.nodes()[3].name.clone();
    app.click(10, top + 3);
    assert_eq!(app.ui.detail, Some(name), "a click on the selected row opens it");
}

#[test]
fn the_overview_names_stale_and_unhealthy_nodes() {
    let mut app = fixed_app(12);
    let s = render(&mut app, 160, 48);
    assert!(s.contains("stale (not reporting) 1: gpu0012"), "{s}");
    assert!(s.contains("unhealthy 1: gpu0002 (GPU 3)"), "{s}");
}

/// Three collectors: two clusters that answered (both with a `gpu0001` and
/// the same job ids) and one that never did.
fn network_app() -> App {
    use super::network::{Part, merge, statuses};
    use super::state::Link;
    let part = |nodes: usize, name: &str| {
        let mut d = fixed_app(nodes).data;
        d.cluster.as_mut().unwrap().cluster = name.into();
        Part { label: name.into(), url: format!("https://{name}:9470"), data: Some(d), link: Link::default() }
    };
    let north = Part {
        label: "north".into(),
        url: "https://north:9470".into(),
        data: None,
        link: Link { error: Some(("connection refused".into(), NOW - 30_000)), retry_ms: Some(NOW + 4_000) },
    };
    let parts = vec![part(4, "east"), part(3, "west"), north];
    let mut app = App { url: "3 collectors".into(), ..Default::default() };
    app.ui.color = false;
    app.set_data(merge(&parts));
    app.clusters = statuses(&parts);
    app
}

#[test]
fn several_clusters_show_the_network_each_cluster_and_the_one_that_is_away() {
    let mut app = network_app();
    let (east, west) = (fixed_app(4).data, fixed_app(3).data);
    let gpus = |d: &Data| d.cluster.as_ref().unwrap().summary.gpus;
    assert_eq!(app.data.cluster.as_ref().unwrap().summary.gpus, gpus(&east) + gpus(&west));
    let s = render(&mut app, 160, 48);
    let head: Vec<&str> = s.lines().take(3).collect();
    let head = head.join("\n");
    assert!(head.contains("Jazari network"), "{head}");
    assert!(head.contains(&format!("network of 3 (2 answering): {} GPUs", gpus(&east) + gpus(&west))), "{head}");
    assert!(
        head.contains(&format!("east {} GPUs", gpus(&east))) && head.contains(&format!("west {} GPUs", gpus(&west)))
    );
    assert!(head.contains("north unreachable (connection refused) · no data · retry in 4 s"), "{head}");
    insta::assert_snapshot!("network_overview_160x48", s);
    // Nodes of both clusters, each under its cluster's name; the filter takes `cluster:`.
    app.apply(Command::Goto(View::Nodes));
    let s = render(&mut app, 160, 48);
    assert!(s.contains("east/gpu0001") && s.contains("west/gpu0001"), "{s}");
    assert_eq!(app.nodes().len(), 7);
    app.ui.filter = "cluster:wes".into();
    assert!(app.nodes().iter().all(|n| n.name.starts_with("west/")) && app.nodes().len() == 3);
    app.ui.filter = "cluster:west gpu0001".into();
    assert_eq!(app.nodes().len(), 1);
    app.apply(Command::Enter);
    let s = render(&mut app, 160, 48);
    assert!(s.contains("west/gpu0001 · reporting"), "{s}");
    // Jobs keep their ids within their cluster; findings come from both.
    let job = east.jobs[0].id.clone();
    assert!(app.job(&format!("east/{job}")).is_some() && app.job(&format!("west/{job}")).is_some());
    for c in ["east/", "west/"] {
        assert!(app.data.findings.iter().any(|f| f.id.starts_with(c)), "{c}");
    }
    app.apply(Command::Goto(View::Findings));
    app.ui.filter = "cluster:east".into();
    assert!(!app.findings().is_empty() && app.findings().iter().all(|f| f.message.starts_with("east: ")));
    // At 80 columns the clusters wrap and the views still draw.
    app.ui.filter.clear();
    app.apply(Command::Goto(View::Nodes));
    let s = render(&mut app, 80, 24);
    assert!(s.contains("north unreachable") && s.contains("east/gpu0001"), "{s}");
    insta::assert_snapshot!("network_nodes_80x24", s);
    for (w, h) in [(20, 5), (40, 10), (80, 8), (300, 100)] {
        render(&mut app, w, h);
    }
}

#[test]
fn series_of_clusters_add_up_bucket_by_bucket() {
    use super::network::merge_series;
    let p = |ts_ms: i64, util: f64, gpus: u64| SeriesPoint {
        ts_ms,
        util_pct: Some(util),
        power_w: 100.0,
        allocated_gpus: gpus as f64 / 2.0,
        gpus,
    };
    let a = [p(0, 50.0, 8), p(60_000, 50.0, 8)];
    // A finer series: its two points in one bucket count once, averaged.
    let b = [p(0, 100.0, 24), p(30_000, 100.0, 24), p(60_000, 100.0, 24)];
    let (points, bucket) = merge_series(&[(&a, 60_000), (&b, 30_000)]);
    assert_eq!(bucket, 60_000);
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].gpus, 32);
    assert_eq!(points[0].power_w, 200.0);
    assert_eq!(points[0].util_pct, Some(87.5));
}
