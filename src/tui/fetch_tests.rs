//! What the fetcher and the draw loop do with answers `?since=`.

use super::state::Data;
use crate::config::{Config, EXAMPLE};
use crate::live::{Live, ViewPolicy, Viewer};
use crate::sim::{SimCluster, SimSpec, tenants_from};

const NOW: i64 = 1_795_000_000_000;

/// What the fetcher and the draw loop do with answers `?since=`: two deltas
/// made one before the draw loop took the first, then taken over the whole
/// view it held, give what asking for everything gives.
#[test]
fn deltas_taken_in_late_and_together_give_the_whole_view() {
    use super::fetch::absorb;
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let map = cfg.institute_map();
    let policy = ViewPolicy { stale_after_ms: 30_000, idle_threshold_pct: 5.0 };
    let spec = SimSpec { nodes: 10, gpus_per_node: 8, seed: 9, prefix: "gpu".into(), faults: true };
    let mut sim = SimCluster::new(&spec, tenants_from(&cfg), NOW);
    let mut live = Live { epoch: "e".into(), ..Default::default() };
    let all = Viewer { institute: None };
    let answer = |live: &Live, since: Option<(&str, &str)>, at: i64| {
        let c = live.cluster_view_since("c", &map, policy, all, since.map(|s| s.0), at);
        let j = live.jobs_since(&map, policy, all, since.map(|s| s.1), at);
        Data { cluster: Some(c), jobs: j.jobs, jobs_changed: j.changed, jobs_ms: j.generated_ms, ..Default::default() }
    };
    let versions = |d: &Data, live: &Live, at: i64| {
        (d.cluster.as_ref().unwrap().version.clone().unwrap(), live.version(at).token())
    };
    let mut at = NOW;
    let mut held = Data::default();
    let mut v: Option<(String, String)> = None;
    for round in 0..30 {
        // Half the nodes report each round; node k is quiet for a while (stale, then back).
        at += 7_000;
        for n in 0..sim.len() {
            if (n + round) % 2 == 0
                && !(round / 8 == n % 4 && n < 4)
                && let Some(r) = sim.report_for(n, at)
            {
                live.update_from_agent(&r, at);
            }
        }
        let first = answer(&live, v.as_ref().map(|(a, b)| (a.as_str(), b.as_str())), at);
        let mut pending = first;
        let mut next_v = versions(&pending, &live, at);
        if round % 3 == 0 {
            // The draw loop was slow: a second answer lands on the first before it is taken.
            at += 3_000;
            if let Some(r) = sim.report_for(round % sim.len(), at) {
                live.update_from_agent(&r, at);
            }
            let second = answer(&live, Some((&next_v.0, &next_v.1)), at);
            next_v = versions(&second, &live, at);
            absorb(&mut pending, second);
        }
        absorb(&mut held, pending);
        v = Some(next_v);
        let whole = answer(&live, None, at);
        let json = |x: &serde_json::Value| {
            let mut x = x.clone();
            x.as_object_mut().unwrap().remove("version");
            x
        };
        let (h, w) = (held.cluster.as_ref().unwrap(), whole.cluster.as_ref().unwrap());
        assert!(!h.delta, "round {round}: the held view is whole");
        assert_eq!(json(&serde_json::to_value(h).unwrap()), json(&serde_json::to_value(w).unwrap()), "round {round}");
        assert_eq!(
            serde_json::to_value(&held.jobs).unwrap(),
            serde_json::to_value(&whole.jobs).unwrap(),
            "round {round}"
        );
        assert_eq!(held.jobs_changed, None);
    }
}

/// `?brief=true` keeps all a list shows: every list view draws from brief
/// data exactly as from the whole; a drill-down says it is fetching until
/// its node or job comes whole, then draws as from the whole view.
#[test]
fn brief_lists_draw_as_whole_ones_and_drill_downs_wait_for_the_whole() {
    use super::focus::Focus;
    use super::tests::{fixed_app, render, views};
    let whole = fixed_app(12);
    let mut brief = whole.clone();
    let mut d = brief.data.clone();
    let c = d.cluster.as_mut().unwrap();
    c.nodes.iter_mut().for_each(crate::api::brief::node);
    c.brief = true;
    d.jobs.iter_mut().for_each(crate::api::brief::job);
    d.jobs_brief = true;
    let size = |x: &Data| serde_json::to_vec(&(&x.cluster, &x.jobs)).unwrap().len();
    assert!(size(&d) * 2 < size(&whole.data), "brief is smaller: {} of {}", size(&d), size(&whole.data));
    brief.set_data(d);
    let mut drills = 0;
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        for (name, cmds) in views(&mut whole.clone()) {
            let (mut a, mut b) = (whole.clone(), brief.clone());
            for c in &cmds {
                a.apply(*c);
                b.apply(*c);
            }
            let Some(focus) = b.focus() else {
                assert_eq!(render(&mut b, w, h), render(&mut a, w, h), "{name} {w}x{h}");
                continue;
            };
            drills += 1;
            assert!(render(&mut b, w, h).contains("fetching it whole"), "{name} {w}x{h}");
            let mut d = b.data.clone();
            match &focus {
                Focus::Node(n) => {
                    d.focus_node = whole.data.cluster.as_ref().unwrap().nodes.iter().find(|x| &x.name == n).cloned();
                    assert!(d.focus_node.is_some());
                }
                Focus::Job(id) => d.focus_jobs = whole.data.jobs.iter().filter(|j| &j.id == id).cloned().collect(),
            }
            b.set_data(d);
            assert_eq!(render(&mut b, w, h), render(&mut a, w, h), "{name} {w}x{h}, whole");
        }
    }
    assert_eq!(drills, 4, "a node's and a job's drill-down at each size");
}

/// The History view's series is fetched only while it is shown: an answer
/// without one keeps the series held; the focus of one cluster of several
/// is its names without the cluster's prefix.
#[test]
fn an_answer_without_the_history_keeps_the_held_one_and_focus_is_per_cluster() {
    use super::fetch::absorb;
    use super::focus::Focus;
    let point = crate::api::history::SeriesPoint {
        ts_ms: NOW,
        util_pct: Some(50.0),
        power_w: 1.0,
        allocated_gpus: 2.0,
        gpus: 8,
    };
    let mut held = Data { history: vec![point.clone()], history_bucket_ms: 60_000, ..Default::default() };
    absorb(&mut held, Data { fetched_ms: NOW, ..Default::default() });
    assert_eq!((held.history.len(), held.history_bucket_ms, held.fetched_ms), (1, 60_000, NOW));
    absorb(&mut held, Data { history: vec![point.clone(), point], history_bucket_ms: 30_000, ..Default::default() });
    assert_eq!((held.history.len(), held.history_bucket_ms), (2, 30_000));
    let f = Focus::Node("east/gpu0001".into());
    assert_eq!(f.within("east"), Some(Focus::Node("gpu0001".into())));
    assert_eq!(f.within("eas"), None);
    assert_eq!(Focus::Job("west/4711".into()).within("west"), Some(Focus::Job("4711".into())));
}
