//! Dashboard rendering benchmark: the overview and nodes views for 10,000 GPUs
//! (1,250 nodes × 8), time per frame, and the bytes written to the terminal
//! per refresh at steady state.
//!
//!     cargo run --release --example tui_render

use jazari::config::{Config, EXAMPLE};
use jazari::live::{Live, ViewPolicy, Viewer};
use jazari::sim::{SimCluster, SimSpec, tenants_from};
use jazari::tui::render::draw;
use jazari::tui::state::{App, Command, Data, View};
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use std::io::Write;
use std::time::Instant;

/// Counts the bytes the backend writes.
struct Counter(std::rc::Rc<std::cell::Cell<u64>>);
impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.set(self.0.get() + b.len() as u64);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let nodes = 1250;
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let map = cfg.institute_map();
    let spec = SimSpec { nodes, gpus_per_node: 8, seed: 1, prefix: "gpu".into(), faults: true };
    let mut sim = SimCluster::new(&spec, tenants_from(&cfg), 0);
    let mut live = Live::default();
    let policy = ViewPolicy { stale_after_ms: 30_000, idle_threshold_pct: 5.0 };
    let mut step = 0;
    let mut data = |sim: &mut SimCluster, live: &mut Live| {
        step += 1;
        let at = step * 10_000;
        for r in sim.reports(at) {
            live.update_from_agent(&r, at);
        }
        Data {
            cluster: Some(live.cluster_view(&cfg.cluster, &map, policy, Viewer { institute: None }, at)),
            jobs: live.jobs_view(&map, policy, Viewer { institute: None }, at),
            quotas: vec![],
            recent: vec![],
            history: vec![],
            findings: vec![],
            fetched_ms: at,
            ..Default::default()
        }
    };
    let first = data(&mut sim, &mut live);
    let second = data(&mut sim, &mut live);
    let gpus: usize = first.cluster.as_ref().unwrap().nodes.iter().map(|n| n.gpus.len()).sum();
    println!("{nodes} nodes, {gpus} GPUs");
    for (w, h) in [(160u16, 48u16), (80, 24)] {
        for (name, view) in
            [("overview", View::Overview), ("nodes", View::Nodes), ("findings", View::Findings), ("users", View::Users)]
        {
            let mut app = App::default();
            app.set_data(first.clone());
            app.apply(Command::Goto(view));
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            let frames = 200;
            let t0 = Instant::now();
            for _ in 0..frames {
                term.draw(|f| draw(f, &mut app, 0)).unwrap();
            }
            let per = t0.elapsed().as_secs_f64() * 1000.0 / frames as f64;
            // Bytes to a real terminal: draw once, take in the next refresh, draw again.
            let bytes = std::rc::Rc::new(std::cell::Cell::new(0u64));
            let mut term = Terminal::with_options(
                CrosstermBackend::new(Counter(bytes.clone())),
                TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, w, h)) },
            )
            .unwrap();
            term.draw(|f| draw(f, &mut app, 0)).unwrap();
            let full = bytes.get();
            app.set_data(second.clone());
            term.draw(|f| draw(f, &mut app, 0)).unwrap();
            let refresh = bytes.get() - full;
            term.draw(|f| draw(f, &mut app, 0)).unwrap();
            let idle = bytes.get() - full - refresh;
            println!(
                "{name:<9} {w}x{h}: {per:.3} ms/frame · first frame {full} B · refresh with new data {refresh} B · redraw without change {idle} B"
            );
        }
    }
}
