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
