//! A reader that asks `?since=` and keeps what it holds of everything the
//! answer leaves out must hold exactly what a reader that asks for
//! everything gets, whatever comes in between: reports of some nodes, silent
//! nodes turning stale and coming back, jobs ending, starting and leaving a
//! node, backfilled batches, pruning, institute tokens.

use super::*;
use crate::accounting::Allocations;
use crate::config::{Config, EXAMPLE};
use crate::live::Seen;

const START: i64 = 1_795_000_000_000;

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(v).unwrap();
    if let Some(o) = v.as_object_mut() {
        o.remove("version");
    }
    v
}

/// The example configuration, its institutes and the views' settings.
fn setup() -> (Config, InstituteMap, ViewPolicy) {
    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let map = cfg.institute_map();
    (cfg, map, ViewPolicy { stale_after_ms: 30_000, idle_threshold_pct: 5.0 })
}

/// One reader: the data it holds and the versions it last saw.
struct Reader<'a> {
    viewer: Viewer<'a>,
    nodes: Vec<NodeView>,
    jobs: Vec<JobView>,
    cluster_version: Option<String>,
    jobs_version: Option<String>,
    /// Nodes and jobs held that answers left out.
    left_out: usize,
}

impl<'a> Reader<'a> {
    fn new(viewer: Viewer<'a>) -> Self {
        Reader { viewer, nodes: vec![], jobs: vec![], cluster_version: None, jobs_version: None, left_out: 0 }
    }

    /// Asks since its versions, keeps what it holds of the rest, and checks
    /// against asking for everything.
    fn refresh(&mut self, live: &Live, map: &InstituteMap, policy: ViewPolicy, now: i64, step: usize) {
        let c = live.cluster_view_since("c", map, policy, self.viewer, self.cluster_version.as_deref(), now);
        let j = live.jobs_since(map, policy, self.viewer, self.jobs_version.as_deref(), now);
        let (nodes_sent, jobs_sent) = (c.nodes.len(), j.jobs.len());
        self.nodes = merge_nodes(std::mem::take(&mut self.nodes), c.nodes, c.delta, c.generated_ms);
        self.jobs = merge_jobs(std::mem::take(&mut self.jobs), j.jobs, j.changed.as_deref(), j.generated_ms);
        self.left_out += self.nodes.len() - nodes_sent + self.jobs.len().saturating_sub(jobs_sent);
        self.cluster_version = c.version;
        self.jobs_version = j.version;
        let full = live.cluster_view("c", map, policy, self.viewer, now);
        assert_eq!(json(&self.nodes), json(&full.nodes), "nodes differ at step {step}");
        assert_eq!(
            json(&self.jobs),
            json(&live.jobs_view(map, policy, self.viewer, now)),
            "jobs differ at step {step}"
        );
    }
}

/// A small deterministic generator (xorshift), for the random walk below.
struct Walk(u64);

impl Walk {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_reader_keeping_what_answers_leave_out_holds_what_asking_for_everything_gives() {
    let (cfg, map, policy) = setup();
    let institute = cfg.institutes[0].id.clone();
    let mut live = Live { epoch: "run1".into(), ..Default::default() };
    let mut readers = [Reader::new(Viewer { institute: None }), Reader::new(Viewer { institute: Some(&institute) })];
    let mut walk = Walk(0x9e37_79b9_7f4a_7c15);
    let nodes = ["a", "b", "c", "d", "e", "f"];
    let ids = ["1", "2", "3", "4", "5", "6", "7"];
    let mut now = START;
    let mut held_back = vec![];
    for step in 0..600 {
        now += 1_000 + walk.below(6_000) as i64;
        // Some nodes report, each with up to two jobs from a small pool (so jobs span
        // nodes, move and end); one node at a time stays quiet long enough to turn stale.
        let quiet = (step / 40) % nodes.len();
        let mut batch = vec![];
        for (k, node) in nodes.iter().enumerate() {
            if k == quiet || walk.below(10) >= 4 {
                continue;
            }
            let jobs: Vec<&str> = (0..walk.below(3)).map(|_| ids[walk.below(ids.len() as u64) as usize]).collect();
            batch.push(report(node, now, &jobs));
        }
        // Now and then an older report arrives with the newest (a spool drained).
        if step % 37 == 0 {
            batch.append(&mut held_back);
        } else if step % 5 == 0 && !batch.is_empty() {
            let mut r = batch.remove(0);
            r.interval_end_ms -= 1;
            held_back.push(r);
        }
        let allocs: Vec<Allocations> =
            batch.iter().map(|r| Allocations::from_agent(r, crate::accounting::same_index)).collect();
        let seen: Vec<Seen> =
            batch.iter().zip(&allocs).map(|(r, a)| Seen { report: r, allocs: a, scheduled: None }).collect();
        live.update_batch(&seen, now);
        if step % 50 == 0 {
            live.prune_jobs();
        }
        // Readers refresh at their own pace: not after every change.
        for (k, reader) in readers.iter_mut().enumerate() {
            if (step + k) % 3 == 0 {
                reader.refresh(&live, &map, policy, now, step);
            }
        }
    }
    // Most of what a reader held was left out of answers: the test exercised it.
    assert!(readers[0].left_out > 300, "only {} left out", readers[0].left_out);
}

#[test]
fn a_version_of_another_run_or_a_bad_one_gets_everything() {
    let (_, map, policy) = setup();
    let mut live = Live { epoch: "run2".into(), ..Default::default() };
    for node in ["a", "b", "c", "d"] {
        live.update_from_agent(&report(node, START + 10_000, &["7"]), START + 10_000);
    }
    let all = Viewer { institute: None };
    let v = live.cluster_view_since("c", &map, policy, all, None, START + 11_000).version.unwrap();
    let sent = |since: &str| {
        let c = live.cluster_view_since("c", &map, policy, all, Some(since), START + 12_000);
        let j = live.jobs_since(&map, policy, all, Some(since), START + 12_000);
        (c.delta, c.nodes.len(), j.changed.is_some())
    };
    assert_eq!(sent(&v), (true, 0, true), "nothing changed: nothing sent");
    assert_eq!(sent(&v.replace("run2", "run1")), (false, 4, false), "another run's version");
    assert_eq!(sent("garbage"), (false, 4, false));
    let ahead = Since { seq: live.seq + 1, ..Since::parse(&v).unwrap() }.token();
    assert_eq!(sent(&ahead), (false, 4, false), "a version this run never made");
}

/// A report of `node` whose GPU 0 runs each of `jobs` in turn (GPU i: jobs[i]).
fn report(node: &str, end_ms: i64, jobs: &[&str]) -> jazari_wire::Report {
    use jazari_wire::{Gpu, Host, Job, Process, Report, WIRE_VERSION};
    let gpus = (0..2u32)
        .map(|i| Gpu {
            index: i,
            uuid: Some(format!("GPU-{node}-{i}")),
            util_gpu_pct: Some(50),
            processes: jobs
                .get(i as usize)
                .map(|j| vec![Process { pid: 100 + i, job: Some(j.to_string()), ..Default::default() }])
                .unwrap_or_default(),
            ..Default::default()
        })
        .collect();
    let jobs = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| Job {
            scheduler: "slurm".into(),
            id: j.to_string(),
            user: Some("u1".into()),
            gpu_ids: Some(vec![i as u32]),
            processes: 1,
            ..Default::default()
        })
        .collect();
    Report {
        version: WIRE_VERSION,
        node: node.into(),
        instance: "i".into(),
        seq: (end_ms / 1000) as u64,
        interval_start_ms: end_ms - 10_000,
        interval_end_ms: end_ms,
        host: Host::default(),
        gpus,
        jobs,
        events: vec![],
    }
}

#[test]
fn a_job_over_two_nodes_changes_when_one_drops_it_or_turns_stale() {
    let (_, map, policy) = setup();
    let mut live = Live { epoch: "run3".into(), ..Default::default() };
    let mut reader = Reader::new(Viewer { institute: None });
    let nodes_of = |reader: &Reader, id: &str| reader.jobs.iter().find(|j| j.id == id).map(|j| j.nodes.clone());
    let both = Some(vec!["a".to_string(), "b".to_string()]);
    let t = START;
    live.update_from_agent(&report("a", t, &["7"]), t);
    live.update_from_agent(&report("b", t, &["7"]), t);
    reader.refresh(&live, &map, policy, t, 0);
    assert_eq!(nodes_of(&reader, "7"), both);
    // Only node b reports, without job 7: the job changed, though its other node said nothing.
    live.update_from_agent(&report("b", t + 10_000, &["8"]), t + 10_000);
    reader.refresh(&live, &map, policy, t + 10_000, 1);
    assert_eq!(nodes_of(&reader, "7"), Some(vec!["a".to_string()]));
    // Job 7 back on b; then only a reports, and b turns stale with time alone.
    live.update_from_agent(&report("b", t + 20_000, &["7"]), t + 20_000);
    reader.refresh(&live, &map, policy, t + 20_000, 2);
    assert_eq!(nodes_of(&reader, "7"), both);
    live.update_from_agent(&report("a", t + 40_000, &["7"]), t + 40_000);
    reader.refresh(&live, &map, policy, t + 45_000, 3);
    assert_eq!(nodes_of(&reader, "7"), both, "b is not stale yet");
    reader.refresh(&live, &map, policy, t + 55_000, 4);
    assert_eq!(nodes_of(&reader, "7"), Some(vec!["a".to_string()]), "b is stale");
    assert!(reader.left_out > 0);
    // Job 7 ends on both nodes; the stamps of ended jobs outlive one prune, not two.
    let before_end = live.version(t + 59_000).token();
    live.update_from_agent(&report("a", t + 60_000, &[]), t + 60_000);
    live.update_from_agent(&report("b", t + 60_000, &[]), t + 60_000);
    live.prune_jobs();
    reader.refresh(&live, &map, policy, t + 61_000, 5);
    assert_eq!(nodes_of(&reader, "7"), None, "ended");
    live.prune_jobs();
    let late = live.jobs_since(&map, policy, Viewer { institute: None }, Some(&before_end), t + 62_000);
    assert!(late.changed.is_none(), "a version from before a forgotten end gets every job");
}
