//! Property: whatever the delivery (duplicates, reordering, agent restarts,
//! batching), the ledger's totals equal the totals computed straight from the
//! distinct reports.

use jazari::accounting::{Amounts, Policy, charges};
use jazari::config::{Config, EXAMPLE};
use jazari::store::{GroupBy, Prepared};
use jazari_wire::{Gpu, Host, Job, Process, Report, WIRE_VERSION};
use proptest::prelude::*;
use std::collections::BTreeMap;

const ACCOUNTS: [&str; 4] = ["nlp-lab", "vision-lab", "climate", "no-such-account"];
const USERS: [&str; 4] = ["carol", "dave", "erin", "frank"];

#[derive(Debug, Clone)]
struct GpuSpec {
    util: u32,
    power_w: u32,
    /// 0: idle; 1: held by the job; 2: an unscheduled process.
    kind: u8,
    user: usize,
}

#[derive(Debug, Clone)]
struct ReportSpec {
    len_ms: i64,
    account: usize,
    gpus: Vec<GpuSpec>,
}

fn gpu_spec() -> impl Strategy<Value = GpuSpec> {
    (0u32..=100, 50u32..700, 0u8..3, 0usize..4).prop_map(|(util, power_w, kind, user)| GpuSpec {
        util,
        power_w,
        kind,
        user,
    })
}

fn report_spec() -> impl Strategy<Value = ReportSpec> {
    (1_000i64..1_200_000, 0usize..4, proptest::collection::vec(gpu_spec(), 1..4))
        .prop_map(|(len_ms, account, gpus)| ReportSpec { len_ms, account, gpus })
}

/// Reports of `agents` runs (node, instance) with their specs, each run
/// continuing in time where the previous run of its node stopped.
fn build(runs: &[(usize, Vec<ReportSpec>)]) -> Vec<Report> {
    let mut clock: BTreeMap<usize, i64> = BTreeMap::new();
    let mut out = vec![];
    for (k, (node, specs)) in runs.iter().enumerate() {
        let t = clock.entry(*node).or_insert(1_790_000_000_000 + 1_234_567);
        for (seq, s) in specs.iter().enumerate() {
            let start = *t;
            *t += s.len_ms;
            let gpus = s
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
            let held: Vec<u32> =
                s.gpus.iter().enumerate().filter(|(_, g)| g.kind == 1).map(|(i, _)| i as u32).collect();
            let jobs = if held.is_empty() {
                vec![]
            } else {
                vec![Job {
                    scheduler: "slurm".into(),
                    id: format!("{node}{k}"),
                    account: Some(ACCOUNTS[s.account].into()),
                    user: Some(USERS[s.account].into()),
                    gpu_ids: Some(held),
                    processes: 1,
                    ..Default::default()
                }]
            };
            out.push(Report {
                version: WIRE_VERSION,
                node: format!("node{node}"),
                instance: format!("run{k}"),
                seq: seq as u64,
                interval_start_ms: start,
                interval_end_ms: *t,
                host: Host::default(),
                gpus,
                jobs,
                events: vec![],
            });
        }
    }
    out
}

fn close(a: &Amounts, b: &Amounts) -> bool {
    let eq = |x: f64, y: f64| (x - y).abs() <= 1e-6 * (1.0 + x.abs().max(y.abs()));
    eq(a.capacity_s, b.capacity_s)
        && eq(a.allocated_s, b.allocated_s)
        && eq(a.busy_s, b.busy_s)
        && eq(a.idle_allocated_s, b.idle_allocated_s)
        && eq(a.unscheduled_s, b.unscheduled_s)
        && eq(a.energy_j, b.energy_j)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn ledger_totals_equal_the_stream_totals(
        runs in proptest::collection::vec((0usize..3, proptest::collection::vec(report_spec(), 1..12)), 1..5),
        dup_picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
        shuffle_seed in any::<u64>(),
        batch_sizes in proptest::collection::vec(1usize..7, 1..10),
    ) {
        let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
        let map = cfg.institute_map();
        let policy = Policy { idle_threshold_pct: 5.0 };
        let reports = build(&runs);

        // What the ledger should say: each distinct report once.
        let mut want: BTreeMap<String, Amounts> = BTreeMap::new();
        for r in &reports {
            for c in charges(r, &map, policy) {
                want.entry(c.key.institute.clone()).or_default().add(&c.amounts);
            }
        }

        // Delivery: every report at least once, some twice or more, in a shuffled order.
        let mut stream: Vec<Report> = reports.clone();
        for d in &dup_picks {
            stream.push(reports[d.index(reports.len())].clone());
        }
        let mut x = shuffle_seed | 1;
        for i in (1..stream.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            stream.swap(i, (x % (i as u64 + 1)) as usize);
        }

        let dir = std::env::temp_dir().join(format!("jazari-prop-{}-{}", std::process::id(), shuffle_seed));
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = jazari::store::open(&dir.join("s.sqlite")).unwrap();
        let (mut accepted, mut duplicates, mut i, mut b) = (0, 0, 0, 0);
        while i < stream.len() {
            // Several requests per transaction (group commit), of varying sizes.
            let mut group = vec![];
            for _ in 0..2 {
                let n = batch_sizes[b % batch_sizes.len()].min(stream.len() - i);
                b += 1;
                if n == 0 { break; }
                group.push(Prepared::batch(stream[i..i + n].to_vec(), |r| charges(r, &map, policy)));
                i += n;
            }
            for o in store.apply(&group).unwrap() {
                accepted += o.accepted;
                duplicates += o.duplicates;
            }
        }
        prop_assert_eq!(accepted, reports.len());
        prop_assert_eq!(duplicates, dup_picks.len());

        let got: BTreeMap<String, Amounts> = store
            .usage(0, i64::MAX / 2, GroupBy::Institute, None)
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.amounts))
            .collect();
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (k, w) in &want {
            prop_assert!(close(&got[k], w), "institute {}: ledger {:?} vs stream {:?}", k, got[k], w);
        }
        // Sums over hours equal the whole.
        let hours: f64 = store.usage(0, i64::MAX / 2, GroupBy::Hour, None).unwrap().iter().map(|r| r.amounts.capacity_s).sum();
        let total: f64 = want.values().map(|a| a.capacity_s).sum();
        prop_assert!((hours - total).abs() < 1e-6 * (1.0 + total));
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
