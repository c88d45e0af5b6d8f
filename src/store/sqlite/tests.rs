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

#[test]
fn a_version_2_store_is_upgraded_with_its_rows_and_a_newer_one_refused() {
    let dir = std::env::temp_dir().join(format!("jazari-mig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sqlite");
    {
        let store = SqliteStore::open(&path).unwrap();
        // A row as version 2 wrote it, then the version 2 schema: no GPM columns.
        store
            .conn
            .execute_batch(
                "INSERT INTO ledger(hour, institute, account, user, job, node, gpu, capacity_s, allocated_s, busy_s,
                   idle_allocated_s, unscheduled_s, energy_j) VALUES(0, 'a', '', '', '7', 'n', 'g', 10, 10, 5, 0, 0, 100);",
            )
            .unwrap();
        for table in ["ledger", "ledger_day", "ledger_hour"] {
            for col in ["gpm_s", "sm_active_s", "tensor_active_s"] {
                store.conn.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {col};")).unwrap();
            }
        }
        store.conn.execute_batch("UPDATE meta SET value = '2' WHERE key = 'schema_version';").unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let (alloc, sm): (f64, f64) = store
        .conn
        .query_row("SELECT allocated_s, sm_active_s FROM ledger", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((alloc, sm), (10.0, 0.0));
    let v: String =
        store.conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, super::migrate::SCHEMA_VERSION.to_string());
    store.conn.execute_batch("UPDATE meta SET value = '99' WHERE key = 'schema_version';").unwrap();
    drop(store);
    let e = SqliteStore::open(&path).err().expect("a newer store is refused").to_string();
    assert!(e.contains("99") && e.contains("upgrade jazari"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_store_root_makes_belongs_to_the_owner_of_its_folder() {
    use std::os::unix::fs::MetadataExt;
    if !std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: not root, so the store's files are this user's anyway");
        return;
    }
    let dir = std::env::temp_dir().join(format!("jazari-own-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let path = dir.join("s.sqlite");
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), 65534, "the collector's user could not write it");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The writer and the pruner are two connections writing the same file: a
/// write transaction that read first would find its snapshot stale once the
/// other committed, and fail at once ("database is locked") whatever the busy
/// timeout; write transactions take the write lock first and wait instead.
#[test]
fn the_writer_and_the_pruner_wait_for_each_other() {
    use jazari_wire::{Host, WIRE_VERSION};
    let dir = std::env::temp_dir().join(format!("jazari-locks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sqlite");
    let mut writer = SqliteStore::open(&path).unwrap();
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let pruner = {
        let (path, stop, runs) = (path.clone(), stop.clone(), runs.clone());
        std::thread::spawn(move || {
            let mut s = SqliteStore::open(&path).unwrap();
            let keep = Keep { raw_ms: 1, minute_ms: 1, hour_ms: 1, dedup_ms: 30 * 86_400_000 };
            while !stop.load(Ordering::Relaxed) {
                s.downsample_and_prune(crate::time::now_ms(), &keep).unwrap();
                runs.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let t0 = crate::time::now_ms() - 3_600_000;
    // At least 120 batches, and on until the pruner has run a few times.
    for k in 0..100_000u64 {
        if k >= 120 && runs.load(Ordering::Relaxed) >= 20 {
            break;
        }
        let report = Report {
            version: WIRE_VERSION,
            node: format!("n{}", k % 7),
            instance: "i".into(),
            seq: k,
            interval_start_ms: t0 + k as i64 * 1000,
            interval_end_ms: t0 + k as i64 * 1000 + 1000,
            host: Host::default(),
            gpus: vec![],
            jobs: vec![],
            events: vec![],
        };
        let p = Prepared {
            report,
            charges: Some(vec![]),
            allocs: Default::default(),
            history: "[]".into(),
            snapshot: None,
        };
        writer.apply(&[vec![p]], crate::time::now_ms()).unwrap_or_else(|e| panic!("batch {k}: {e}"));
    }
    stop.store(true, Ordering::Relaxed);
    pruner.join().unwrap();
    assert!(runs.load(Ordering::Relaxed) >= 20);
    std::fs::remove_dir_all(dir).unwrap();
}
