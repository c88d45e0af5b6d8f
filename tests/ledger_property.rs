//! Property: whatever the delivery (resends, new sequence numbers for old
//! time, restarts whose first report overlaps the previous run, other agents
//! under the same node name, reordering, gaps, hour and day boundaries,
//! batching), the ledger charges each GPU-second once: its totals equal the
//! ground truth of the generated streams, every roll-up equals the fine
//! ledger summed, and a node's coverage is the union of its reported time.

mod common;

use jazari::accounting::{Allocations, Amounts, Policy, gpu_charges, same_index};
use jazari::config::{Config, EXAMPLE};
use jazari::store::{Filter, GroupBy, Prepared, Store};
use jazari_wire::{Gpu, Host, Job, Process, Report, WIRE_VERSION};
use proptest::prelude::*;
use std::collections::BTreeMap;

const ACCOUNTS: [&str; 4] = ["nlp-lab", "vision-lab", "climate", "no-such-account"];
const INSTITUTES: [&str; 4] = ["ibn-sina", "al-haytham", "al-biruni", "unassigned"];
const USERS: [&str; 4] = ["carol", "dave", "erin", "frank"];
/// 2026-03-01T22:30:00Z: streams cross an hour and a day boundary.
const T0: i64 = 1_772_404_200_000;
const HOUR: i64 = 3_600_000;

/// A GPU's state, constant for the whole stream, so that any report over
/// any interval says the same per second and the truth is rate × time.
#[derive(Debug, Clone)]
struct GpuSpec {
    util: u32,
    power_w: u32,
    /// 0: idle; 1: held by the node's job; 2: an unscheduled process.
    kind: u8,
    user: usize,
}

#[derive(Debug, Clone)]
struct NodeSpec {
    account: usize,
    gpus: Vec<GpuSpec>,
}

/// One agent run: where it starts (ms after T0) and its reports' lengths and gaps before them.
#[derive(Debug, Clone)]
struct RunSpec {
    node: usize,
    start_ms: i64,
    reports: Vec<(i64, i64)>,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    let gpu = (0u32..=100, 50u32..700, 0u8..3, 0usize..4).prop_map(|(util, power_w, kind, user)| GpuSpec {
        util,
        power_w,
        kind,
        user,
    });
    (0usize..4, proptest::collection::vec(gpu, 1..4)).prop_map(|(account, gpus)| NodeSpec { account, gpus })
}

fn run_spec() -> impl Strategy<Value = RunSpec> {
    // Report lengths from 1 s to 2 h; most runs report back to back, some leave gaps.
    let report = (1_000i64..2 * HOUR, prop_oneof![4 => Just(0i64), 1 => 1i64..3 * HOUR]);
    (0usize..3, 0i64..30 * HOUR, proptest::collection::vec(report, 1..10)).prop_map(|(node, start_ms, reports)| {
        RunSpec { node, start_ms, reports: reports.into_iter().map(|(len, gap)| (gap, len)).collect() }
    })
}

fn report(node: usize, spec: &NodeSpec, instance: &str, seq: u64, start: i64, end: i64) -> Report {
    let gpus = spec
        .gpus
        .iter()
        .enumerate()
        .map(|(i, g)| Gpu {
            index: i as u32,
            uuid: Some(format!("GPU-{node}-{i}")),
            util_gpu_pct: Some(g.util),
            power_mw: Some(g.power_w * 1000),
            processes: match g.kind {
                2 => vec![Process { pid: 1, user: Some(USERS[g.user].into()), ..Default::default() }],
                _ => vec![],
            },
            ..Default::default()
        })
        .collect();
    let held: Vec<u32> = spec.gpus.iter().enumerate().filter(|(_, g)| g.kind == 1).map(|(i, _)| i as u32).collect();
    let jobs = if held.is_empty() {
        vec![]
    } else {
        vec![Job {
            scheduler: "slurm".into(),
            id: format!("job{node}"),
            account: Some(ACCOUNTS[spec.account].into()),
            user: Some(USERS[spec.account].into()),
            gpu_ids: Some(held),
            processes: 1,
            ..Default::default()
        }]
    };
    Report {
        version: WIRE_VERSION,
        node: format!("node{node}"),
        instance: instance.into(),
        seq,
        interval_start_ms: start,
        interval_end_ms: end,
        host: Host::default(),
        gpus,
        jobs,
        events: vec![],
    }
}

/// Length of the union of intervals, in ms.
fn union_ms(mut v: Vec<(i64, i64)>) -> i64 {
    v.sort();
    let (mut total, mut cur): (i64, Option<(i64, i64)>) = (0, None);
    for (a, b) in v {
        match &mut cur {
            Some((_, e)) if a <= *e => *e = (*e).max(b),
            _ => {
                if let Some((s, e)) = cur {
                    total += e - s;
                }
                cur = Some((a, b));
            }
        }
    }
    total + cur.map(|(s, e)| e - s).unwrap_or(0)
}

/// What a node charges per second of reported time, by institute.
fn rates(spec: &NodeSpec) -> BTreeMap<String, Amounts> {
    let mut out: BTreeMap<String, Amounts> = BTreeMap::new();
    for g in &spec.gpus {
        let (inst, a) = match g.kind {
            1 => (
                INSTITUTES[spec.account].to_string(),
                Amounts {
                    capacity_s: 1.0,
                    allocated_s: 1.0,
                    busy_s: g.util as f64 / 100.0,
                    idle_allocated_s: if g.util as f64 <= 5.0 { 1.0 } else { 0.0 },
                    unscheduled_s: 0.0,
                    energy_j: g.power_w as f64,
                    ..Default::default()
                },
            ),
            2 => (
                // Unscheduled use goes by user: carol is al-biruni's, dave al-jazari's; the others nobody's.
                match USERS[g.user] {
                    "carol" => "al-biruni",
                    "dave" => "al-jazari",
                    _ => "unassigned",
                }
                .to_string(),
                Amounts { capacity_s: 1.0, unscheduled_s: 1.0, energy_j: g.power_w as f64, ..Default::default() },
            ),
            _ => (String::new(), Amounts { capacity_s: 1.0, energy_j: g.power_w as f64, ..Default::default() }),
        };
        out.entry(inst).or_default().add(&a);
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    // To the GPU-second (energy to the joule of a 1 ms rounding at 700 W).
    (a - b).abs() <= 1e-3 + 1e-9 * a.abs().max(b.abs())
}

fn same(a: &Amounts, b: &Amounts) -> bool {
    close(a.capacity_s, b.capacity_s)
        && close(a.allocated_s, b.allocated_s)
        && close(a.busy_s, b.busy_s)
        && close(a.idle_allocated_s, b.idle_allocated_s)
        && close(a.unscheduled_s, b.unscheduled_s)
        && (a.energy_j - b.energy_j).abs() <= 1.0 + 1e-9 * a.energy_j.abs()
}

/// The store a property runs against: SQLite in a temporary folder, or a
/// fresh PostgreSQL database with `JAZARI_TEST_STORE=postgres`.
fn store(tag: u64) -> (Box<dyn Store>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("jazari-prop-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let location = common::pg::store_in(&dir, "prop");
    (jazari::store::open(&location).unwrap(), dir)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn each_gpu_second_is_charged_once_and_every_roll_up_equals_the_ledger(
        nodes in proptest::collection::vec(node_spec(), 3),
        runs in proptest::collection::vec(run_spec(), 1..6),
        resends in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        reseqs in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        shuffle_seed in any::<u64>(),
        batch_sizes in proptest::collection::vec(1usize..7, 1..10),
    ) {
        let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
        let map = cfg.institute_map();
        let policy = Policy { idle_threshold_pct: 5.0, mig_charge: Default::default() };

        // The runs: each a new agent instance (restarts, a second agent under the same name).
        let mut distinct: Vec<Report> = vec![];
        for (k, run) in runs.iter().enumerate() {
            let mut t = T0 + run.start_ms;
            for (seq, (gap, len)) in run.reports.iter().enumerate() {
                t += gap;
                distinct.push(report(run.node, &nodes[run.node], &format!("run{k}"), seq as u64, t, t + len));
                t += len;
            }
        }
        // The truth: per node, its reported time (the union) at its rates.
        let mut truth: BTreeMap<String, Amounts> = BTreeMap::new();
        let mut covered: BTreeMap<String, f64> = BTreeMap::new();
        for (n, spec) in nodes.iter().enumerate() {
            let name = format!("node{n}");
            let ms = union_ms(distinct.iter().filter(|r| r.node == name).map(|r| (r.interval_start_ms, r.interval_end_ms)).collect());
            if ms == 0 {
                continue;
            }
            covered.insert(name, ms as f64 / 1000.0);
            for (inst, rate) in rates(spec) {
                truth.entry(inst).or_default().add(&rate.scaled(ms as f64 / 1000.0));
            }
        }

        // Delivery: every report, some resent as they were, some under a new
        // sequence number of their instance, all shuffled.
        let mut stream = distinct.clone();
        for d in &resends {
            stream.push(distinct[d.index(distinct.len())].clone());
        }
        for (k, d) in reseqs.iter().enumerate() {
            let mut r = distinct[d.index(distinct.len())].clone();
            r.seq = 1_000 + k as u64;
            stream.push(r);
        }
        let mut x = shuffle_seed | 1;
        for i in (1..stream.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            stream.swap(i, (x % (i as u64 + 1)) as usize);
        }

        let (mut store, dir) = store(shuffle_seed);
        let now = T0 + 60 * HOUR;
        let (mut accepted, mut duplicates, mut i, mut b) = (0, 0, 0, 0);
        while i < stream.len() {
            // Several requests per transaction (group commit), of varying sizes.
            let mut group = vec![];
            for _ in 0..2 {
                let n = batch_sizes[b % batch_sizes.len()].min(stream.len() - i);
                b += 1;
                if n == 0 { break; }
                group.push(Prepared::batch(stream[i..i + n].to_vec(), |r| {
                    let allocs = Allocations::from_agent(r, same_index);
                    let charges = gpu_charges(r, &map, policy, &allocs);
                    (allocs, Some(charges))
                }));
                i += n;
            }
            for a in store.apply(&group, now).unwrap() {
                accepted += a.outcome.accepted;
                duplicates += a.outcome.duplicates;
            }
        }
        prop_assert_eq!(accepted, distinct.len() + reseqs.len());
        prop_assert_eq!(duplicates, resends.len());

        // Totals: the truth, to the GPU-second.
        let all = (0, i64::MAX / 2);
        let got: BTreeMap<String, Amounts> = store
            .usage(all.0, all.1, GroupBy::Institute, &Filter::default())
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.amounts))
            .collect();
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), truth.keys().collect::<Vec<_>>());
        for (k, w) in &truth {
            prop_assert!(same(&got[k], w), "institute `{}`: ledger {:?}, truth {:?}", k, got[k], w);
        }

        // Roll-ups: the daily and hourly ones equal the fine ledger summed.
        let fine = store.ledger_rows(all.0, all.1).unwrap();
        let mut by_day: BTreeMap<(i64, String, String, String, String), Amounts> = BTreeMap::new();
        let mut by_hour: BTreeMap<(i64, String), Amounts> = BTreeMap::new();
        for c in &fine {
            let k = &c.key;
            by_day.entry((c.hour.div_euclid(86400) * 86400, k.institute.clone(), k.account.clone(), k.user.clone(), k.job.clone())).or_default().add(&c.amounts);
            by_hour.entry((c.hour, k.institute.clone())).or_default().add(&c.amounts);
        }
        let days = store.day_rows(all.0, all.1, None).unwrap();
        prop_assert_eq!(days.len(), by_day.len());
        for d in &days {
            let want = &by_day[&(d.day, d.institute.clone(), d.account.clone(), d.user.clone(), d.job.clone())];
            prop_assert!(same(&d.amounts, want), "day {} {}: roll-up {:?}, ledger {:?}", d.day, d.institute, d.amounts, want);
        }
        let hours = store.hour_rows(all.0, all.1).unwrap();
        prop_assert_eq!(hours.len(), by_hour.len());
        for h in &hours {
            let want = &by_hour[&(h.hour, h.institute.clone())];
            prop_assert!(same(&h.amounts, want), "hour {} {}: roll-up {:?}, ledger {:?}", h.hour, h.institute, h.amounts, want);
            // A peak is never more GPUs than the institute holds on all nodes together.
            let most: f64 = nodes.iter().map(|n| rates(n).get(&h.institute).map(|a| a.allocated_s + a.unscheduled_s).unwrap_or(0.0)).sum();
            prop_assert!(h.peak_held_gpus <= most + 1e-9, "hour {} {}: peak {} of {}", h.hour, h.institute, h.peak_held_gpus, most);
        }

        // Coverage: each node's reported time, never more.
        let cov = store.coverage(all.0, all.1).unwrap();
        prop_assert_eq!(cov.len(), covered.len());
        for c in &cov {
            prop_assert!(close(c.covered_s, covered[&c.node]), "node {}: covered {} s, reported {} s", c.node, c.covered_s, covered[&c.node]);
        }
        let cov_hours: f64 = store.coverage_hours(all.0, all.1).unwrap().iter().map(|r| r.covered_s).sum();
        prop_assert!(close(cov_hours, covered.values().sum()));
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
