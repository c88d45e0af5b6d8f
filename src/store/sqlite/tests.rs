//! The SQLite store: history downsampling and pruning, coverage roll-ups.
use super::*;
use crate::store::{Keep, Prepared, Resolution, Store};

#[test]
fn history_is_downsampled_to_minutes_and_hours_then_pruned() {
    use jazari_wire::{Gpu, Host, WIRE_VERSION};
    let dir = std::env::temp_dir().join(format!("jazari-hist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = SqliteStore::open(&dir.join("s.sqlite")).unwrap();
    let t0 = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
    // Two minutes of reports every 10 s: utilisation 10, 20, … in the first minute, 70 in the second.
    let reports: Vec<Report> = (0..12)
        .map(|k| Report {
            version: WIRE_VERSION,
            node: "n1".into(),
            instance: "i".into(),
            seq: k as u64,
            interval_start_ms: t0 + k * 10_000,
            interval_end_ms: t0 + (k + 1) * 10_000 - 1,
            host: Host::default(),
            gpus: vec![Gpu {
                index: 0,
                uuid: Some("GPU-a".into()),
                util_gpu_pct: Some(if k < 6 { 10 * (k as u32 + 1) } else { 70 }),
                power_mw: Some(100_000),
                ..Default::default()
            }],
            jobs: vec![],
            events: vec![],
        })
        .collect();
    store.apply(&[Prepared::batch(reports, |_| (Default::default(), Some(vec![])))], t0 + 600_000).unwrap();
    let keep =
        Keep { raw_ms: 3_600_000, minute_ms: 48 * 3_600_000, hour_ms: 400 * 86_400_000, dedup_ms: 30 * 86_400_000 };
    // Ten minutes later: minutes are done, the hour is not, raw is kept.
    store.downsample_and_prune(t0 + 600_000, &keep).unwrap();
    let minutes = store.history(Resolution::Minute, t0, t0 + 3_600_000, None, None, 100).unwrap();
    assert_eq!(minutes.len(), 2);
    assert_eq!(minutes[0].util, Some(35.0), "mean of 10..60");
    assert_eq!(minutes[1].util, Some(70.0));
    assert_eq!(minutes[0].power_w, Some(100.0));
    assert!(store.history(Resolution::Hour, t0, t0 + 7_200_000, None, None, 100).unwrap().is_empty());
    assert_eq!(store.history(Resolution::Raw, t0, t0 + 3_600_000, None, None, 100).unwrap().len(), 12);
    // Two hours later: the hour is done and raw history past its hour of retention is gone.
    let n = store.downsample_and_prune(t0 + 2 * 3_600_000 + 60_000, &keep).unwrap();
    let hours = store.history(Resolution::Hour, t0, t0 + 7_200_000, None, None, 100).unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].util, Some(52.5), "mean of the two minutes");
    assert!(store.history(Resolution::Raw, t0, t0 + 3_600_000, None, None, 100).unwrap().is_empty());
    assert!(n >= 12);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn coverage_from_the_daily_roll_up_matches_the_hours() {
    use jazari_wire::{Host, WIRE_VERSION};
    let dir = std::env::temp_dir().join(format!("jazari-cov-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = SqliteStore::open(&dir.join("s.sqlite")).unwrap();
    let day0 = 1_767_225_600; // 2026-01-01
    let mut batch = vec![];
    let mut t = day0 * 1000;
    let mut seq = 0;
    // Four days every 10 minutes, with a 5-hour hole on day 2 and a short hour on day 3.
    while t < (day0 + 4 * 86_400) * 1000 {
        let next = t + 600_000;
        let h = (t / 1000 - day0) / 3600;
        let hole = (30..35).contains(&h);
        let short = h == 60 && (t / 1000) % 3600 >= 1800;
        if !hole && !short {
            let report = Report {
                version: WIRE_VERSION,
                node: "n1".into(),
                instance: "i".into(),
                seq,
                interval_start_ms: t,
                interval_end_ms: next,
                host: Host::default(),
                gpus: vec![],
                jobs: vec![],
                events: vec![],
            };
            seq += 1;
            batch.push(Prepared {
                report,
                charges: Some(vec![]),
                allocs: Default::default(),
                history: "[]".into(),
                snapshot: None,
            });
        }
        t = next;
    }
    store.apply(&[batch], (day0 + 4 * 86_400) * 1000).unwrap();
    let (from, to) = (day0, day0 + 4 * 86_400);
    let mut fast = store.coverage_input(from, to).unwrap();
    let mut slow = crate::report::CoverageInput::from_hours(&store.coverage_hours(from, to).unwrap());
    for c in [&mut fast, &mut slow] {
        c.short.sort_by_key(|a| a.hour);
        c.holes.sort();
    }
    assert_eq!(fast, slow);
    assert_eq!(fast.holes, vec![("n1".to_string(), day0 + 29 * 3600, day0 + 35 * 3600)]);
    assert_eq!(fast.short.len(), 1);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}
