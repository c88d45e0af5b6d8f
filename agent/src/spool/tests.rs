//! The spool against torn, corrupt and refused writes, and random damage.

use super::*;
use crate::procs::tests::tempdir::Dir;
use proptest::prelude::*;

/// A report-like JSON payload with a sequence number.
fn rec(seq: u64, pad: usize) -> Vec<u8> {
    format!(r#"{{"node":"n1","instance":"i1","seq":{seq},"pad":"{}"}}"#, "x".repeat(pad)).into_bytes()
}

fn seq_of(p: &[u8]) -> u64 {
    Ident::of(p).expect("a report").seq
}

/// Everything waiting, acknowledged as read.
fn drain(s: &mut Spool) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let recs = s.peek(50, usize::MAX).unwrap();
        let Some(&(_, pos)) = recs.last() else { return out };
        out.extend(recs.iter().map(|(p, _)| seq_of(p)));
        s.ack(pos).unwrap();
    }
}

fn seg(d: &Dir, n: u64) -> PathBuf {
    d.path().join(seg_name(n))
}

fn record_len(pad: usize, seq: u64) -> usize {
    HEADER as usize + rec(seq, pad).len()
}

#[test]
fn records_survive_a_restart_in_order_and_leave_once_acked() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    for i in 0..5 {
        s.append(rec(i, 3)).unwrap();
    }
    let first = s.peek(2, usize::MAX).unwrap();
    assert_eq!(first.iter().map(|r| seq_of(&r.0)).collect::<Vec<_>>(), [0, 1]);
    s.ack(first[1].1).unwrap();
    drop(s);
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.pending().unwrap(), 3);
    assert_eq!(drain(&mut s), [2, 3, 4]);
    assert!(s.is_empty());
    // Everything delivered: the segment is gone, disk space is back.
    assert_eq!(list_segments(d.path()).unwrap(), Vec::<u64>::new());
    s.append(rec(5, 3)).unwrap();
    assert!(!s.is_empty());
    assert_eq!(drain(&mut s), [5]);
}

#[test]
fn a_second_agent_cannot_open_a_spool_in_use() {
    let d = Dir::new();
    let _s = Spool::open(d.path(), 1 << 20).unwrap();
    let e = Spool::open(d.path(), 1 << 20).err().expect("locked");
    assert!(e.to_string().contains("in use by another jazari-agent"), "{e}");
    assert!(e.to_string().contains(&std::process::id().to_string()), "names the holder: {e}");
}

#[test]
fn a_torn_last_record_is_cut_back_to_the_last_valid_record_only() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    for i in 0..6 {
        s.append(rec(i, 10)).unwrap();
    }
    drop(s);
    let path = seg(&d, 0);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = record_len(10, 0);
    // Record 1's length is corrupt, and the last record is torn by a crash.
    bytes[len] ^= 0x40;
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&path, &bytes).unwrap();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.stats.torn_bytes, (len - 5) as u64, "only the torn record is cut");
    s.append(rec(6, 10)).unwrap();
    assert_eq!(drain(&mut s), [0, 2, 3, 4, 6], "records after the bad one are kept and delivered");
    assert_eq!(s.stats.damaged_ranges, 1);
    assert_eq!(s.stats.damaged_bytes, len as u64);
}

#[test]
fn a_corrupt_record_is_skipped_counted_and_the_rest_delivered() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    for i in 0..3 {
        s.append(rec(i, 4)).unwrap();
    }
    let mut bytes = std::fs::read(seg(&d, 0)).unwrap();
    bytes[record_len(4, 0) + HEADER as usize + 3] ^= 0xff; // inside record 1's payload
    std::fs::write(seg(&d, 0), bytes).unwrap();
    drop(s);
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(drain(&mut s), [0, 2]);
    assert_eq!(s.stats.damaged_ranges, 1);
    // Read again (a failed send): counted once.
    assert_eq!(drain(&mut s), Vec::<u64>::new());
    assert_eq!(s.stats.damaged_ranges, 1);
}

#[test]
fn a_corrupt_length_in_a_sealed_segment_does_not_stall_delivery() {
    let d = Dir::new();
    // 64 KiB segments (the minimum).
    let mut s = Spool::open(d.path(), 256 << 10).unwrap();
    for i in 0..20 {
        s.append(rec(i, 10_000)).unwrap();
    }
    assert!(list_segments(d.path()).unwrap().len() > 1);
    let mut bytes = std::fs::read(seg(&d, 0)).unwrap();
    bytes[record_len(10_000, 0) + 3] = 0x01; // record 1 claims 16 MiB more
    std::fs::write(seg(&d, 0), bytes).unwrap();
    drop(s);
    let mut s = Spool::open(d.path(), 256 << 10).unwrap();
    let got = drain(&mut s);
    assert_eq!(got, (0..20).filter(|&i| i != 1).collect::<Vec<_>>());
    assert_eq!(s.stats.damaged_ranges, 1);
}

#[test]
fn dropping_a_segment_with_a_corrupt_record_counts_its_intact_records() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 256 << 10).unwrap();
    for i in 0..6 {
        s.append(rec(i, 10_000)).unwrap();
    }
    let mut bytes = std::fs::read(seg(&d, 0)).unwrap();
    bytes[3] = 0x01; // the first record's length
    std::fs::write(seg(&d, 0), bytes).unwrap();
    let on_first = summarize(&seg(&d, 0), 0).unwrap();
    assert_eq!(on_first.records, 5, "records after the corrupt one are found");
    for i in 6..40 {
        s.append(rec(i, 10_000)).unwrap();
    }
    assert!(s.stats.dropped >= 5);
    let left = drain(&mut s);
    assert_eq!(left.len() as u64 + s.stats.dropped, 39, "every intact record is delivered or counted as dropped");
    assert_eq!(*left.last().unwrap(), 39, "the newest are kept");
}

#[test]
fn over_the_bound_the_oldest_are_dropped_and_counted() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 256 << 10).unwrap();
    for i in 0..100 {
        s.append(rec(i, 10_000)).unwrap();
    }
    assert!(s.stats.dropped > 0);
    let left = s.pending().unwrap();
    assert_eq!(left + s.stats.dropped, 100, "every record is either kept or counted as dropped");
    let total: u64 = list_segments(d.path()).unwrap().iter().map(|n| seg(&d, *n).metadata().unwrap().len()).sum();
    assert!(total <= 256 << 10, "{total}");
    let got = drain(&mut s);
    assert_eq!(got, (s.stats.dropped..100).collect::<Vec<_>>(), "the newest, in order");
}

#[test]
fn a_failed_write_is_rolled_back_and_written_again_later() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    s.append(rec(0, 10)).unwrap();
    let good = seg(&d, 0).metadata().unwrap().len();
    // A short write, then an I/O error: the partial record must not stay.
    s.fault = Some(Fault::Always(11, io::ErrorKind::Other));
    assert!(s.append(rec(1, 10)).is_err());
    assert!(s.append(rec(2, 10)).is_err());
    assert_eq!(seg(&d, 0).metadata().unwrap().len(), good, "cut back to the last good record");
    assert_eq!(s.in_memory(), 2);
    assert_eq!(drain(&mut s), [0]);
    s.fault = None;
    s.append(rec(3, 10)).unwrap();
    assert_eq!(s.in_memory(), 0);
    assert_eq!(drain(&mut s), [1, 2, 3], "in order, none lost, none twice");
    assert_eq!(s.stats.damaged_ranges + s.stats.dropped + s.stats.dropped_memory, 0);
    assert_eq!(s.stats.written, 4);
    drop(s);
    let s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.stats.torn_bytes, 0);
    assert!(s.is_empty());
}

#[test]
fn a_full_disk_drops_the_oldest_segments_and_keeps_the_newest() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 16 << 20).unwrap(); // 2 MiB segments, a bound the disk never lets us reach
    s.segment_bytes = 128 << 10;
    for i in 0..40 {
        s.append(rec(i, 10_000)).unwrap();
    }
    assert!(list_segments(d.path()).unwrap().len() >= 3);
    // The disk is full now.
    let cap = s.sizes.values().sum::<u64>() + 5_000;
    s.fault = Some(Fault::DiskOf(cap));
    for i in 40..100 {
        s.append(rec(i, 10_000)).unwrap();
        assert!(s.sizes.values().sum::<u64>() <= cap);
    }
    assert_eq!(s.in_memory(), 0);
    assert!(s.stats.dropped > 0 && s.stats.write_errors > 0);
    let got = drain(&mut s);
    assert_eq!(got, (s.stats.dropped..100).collect::<Vec<_>>(), "the newest, in order, the rest counted");
    // No partial record was left behind by the failed writes.
    assert_eq!(s.stats.damaged_ranges, 0);
}

#[test]
fn over_the_memory_bound_the_oldest_data_goes_first() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    s.set_memory_bound(30_000);
    s.append(rec(0, 10_000)).unwrap();
    // An I/O error: nothing on disk can be dropped to help; memory keeps the newest.
    s.fault = Some(Fault::Always(0, io::ErrorKind::Other));
    for i in 1..6 {
        assert!(s.append(rec(i, 10_000)).is_err());
    }
    assert_eq!(s.stats.dropped_memory, 3);
    assert_eq!(s.in_memory(), 2);
    s.fault = None;
    s.flush().unwrap();
    assert_eq!(drain(&mut s), [0, 4, 5]);
    // A disk with room for one report and only the tail segment: memory waits
    // until over its bound, then the tail segment (older) goes first.
    s.append(rec(6, 10_000)).unwrap();
    s.fault = Some(Fault::DiskOf(15_000));
    for i in 7..10 {
        assert!(s.append(rec(i, 10_000)).is_err());
    }
    assert_eq!(s.stats.dropped, 1, "record 6's segment");
    assert_eq!(s.stats.dropped_memory, 3, "nothing more from memory");
    assert_eq!(s.in_memory(), 2);
    s.fault = None;
    s.flush().unwrap();
    assert_eq!(drain(&mut s), [7, 8, 9]);
}

#[test]
fn reports_held_in_memory_at_exit_are_counted_as_lost() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    s.fault = Some(Fault::Always(0, io::ErrorKind::Other));
    let _ = s.append(rec(0, 10));
    let _ = s.append(rec(1, 10));
    s.close();
    assert_eq!(s.stats.dropped_memory, 2);
    assert_eq!(s.in_memory(), 0);
}

#[test]
fn only_json_objects_are_spooled() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    assert_eq!(s.append(b"not json".to_vec()).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    assert!(s.is_empty());
}

#[test]
fn inspect_names_streams_cursor_and_damage_without_changing_anything() {
    let d = Dir::new();
    let mut s = Spool::open(d.path(), 1 << 20).unwrap();
    for i in 0..8 {
        s.append(rec(i, 10)).unwrap();
    }
    let two = s.peek(2, usize::MAX).unwrap();
    s.ack(two[1].1).unwrap();
    drop(s);
    let mut bytes = std::fs::read(seg(&d, 0)).unwrap();
    let len = record_len(10, 0);
    bytes[4 * len + HEADER as usize + 2] ^= 1; // record 4
    bytes.truncate(bytes.len() - 3); // record 7 torn
    std::fs::write(seg(&d, 0), &bytes).unwrap();
    DeadLetters::new(d.path(), 1 << 20).put(&rec(99, 1), 400, "bad").unwrap();
    let i = inspect::inspect(d.path()).unwrap();
    assert_eq!(std::fs::read(seg(&d, 0)).unwrap(), bytes, "read only");
    assert_eq!((i.waiting, i.delivered), (4, 2));
    assert_eq!(i.cursor, Some(Pos { segment: 0, offset: 2 * len as u64 }));
    assert_eq!(i.streams.len(), 1);
    let st = &i.streams[0];
    assert_eq!((st.first_seq, st.last_seq, st.reports, st.missing), (2, 6, 4, 1));
    assert_eq!(i.damaged.len(), 2);
    assert_eq!((i.damaged[0].before.as_ref().unwrap().seq, i.damaged[0].after.as_ref().unwrap().seq), (3, 5));
    assert!(i.damaged[1].at_end && i.damaged[1].after.is_none());
    assert_eq!(i.dead_letters.reports, 1);
    let text = i.to_string();
    assert!(text.contains("n1/i1  seq 2..=6  (4 reports, 1 missing in between)"), "{text}");
    assert!(text.contains("checksum mismatch, between seq 3 of n1/i1 and seq 5 of n1/i1"), "{text}");
}

#[test]
fn the_dead_letter_file_keeps_the_newest_within_its_bound() {
    let d = Dir::new();
    let mut dl = DeadLetters::new(d.path(), 8 << 10);
    for i in 0..40 {
        dl.put(&rec(i, 500), 422, "invalid \"field\"").unwrap();
    }
    let size = dl.path().metadata().unwrap().len();
    assert!(size <= 8 << 10, "{size}");
    let letters = dl.read().unwrap().unwrap();
    assert_eq!(letters.len() as u64 + dl.dropped, 40);
    assert_eq!(seq_of(&letters.last().unwrap().report), 39);
    assert_eq!(letters[0].status, Some(422));
    assert_eq!(letters[0].error.as_deref(), Some("invalid \"field\""));
    let seqs: Vec<u64> = letters.iter().map(|l| seq_of(&l.report)).collect();
    assert_eq!(seqs, (dl.dropped..40).collect::<Vec<_>>());
}

/// One kind of damage to a segment file.
#[derive(Debug, Clone)]
enum Harm {
    /// Overwrite bytes at a fraction of the file with these.
    Overwrite(f64, Vec<u8>),
    /// Insert bytes at a fraction of the file.
    Insert(f64, Vec<u8>),
    /// Zero a range.
    Zero(f64, usize),
}

fn harm() -> impl Strategy<Value = Harm> {
    prop_oneof![
        (0.0..1.0, proptest::collection::vec(any::<u8>(), 1..40)).prop_map(|(a, b)| Harm::Overwrite(a, b)),
        (0.0..1.0, proptest::collection::vec(any::<u8>(), 1..40)).prop_map(|(a, b)| Harm::Insert(a, b)),
        (0.0..1.0, 1..300usize).prop_map(|(a, n)| Harm::Zero(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the damage, reading never panics, never invents a record,
    /// keeps order, and delivers every record the damage did not touch.
    #[test]
    fn every_untouched_record_is_recovered_after_random_damage(
        pads in proptest::collection::vec(0..300usize, 1..30),
        harms in proptest::collection::vec(harm(), 1..4),
        torn in 0..20usize,
    ) {
        let d = Dir::new();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        let mut spans = Vec::new(); // (start, end) of each record in the file
        let mut at = 0;
        for (i, pad) in pads.iter().enumerate() {
            s.append(rec(i as u64, *pad)).unwrap();
            let len = record_len(*pad, i as u64);
            spans.push((at, at + len));
            at += len;
        }
        drop(s);
        let mut bytes = std::fs::read(seg(&d, 0)).unwrap();
        let mut touched = vec![false; spans.len()];
        for h in &harms {
            let (start, end, inserted) = match h {
                Harm::Overwrite(f, b) => {
                    let a = (f * bytes.len() as f64) as usize;
                    let e = (a + b.len()).min(bytes.len());
                    bytes[a..e].copy_from_slice(&b[..e - a]);
                    (a, e, 0)
                }
                Harm::Insert(f, b) => {
                    let a = (f * bytes.len() as f64) as usize;
                    bytes.splice(a..a, b.iter().copied());
                    (a, a + 1, b.len())
                }
                Harm::Zero(f, n) => {
                    let a = (f * bytes.len() as f64) as usize;
                    let e = (a + n).min(bytes.len());
                    bytes[a..e].fill(0);
                    (a, e, 0)
                }
            };
            for (k, span) in spans.iter_mut().enumerate() {
                // An insertion at a record's first byte moves it whole.
                let hit = if inserted > 0 { span.0 < start && start < span.1 } else { span.0 < end && start < span.1 };
                touched[k] |= hit;
                if inserted > 0 && span.0 >= start {
                    *span = (span.0 + inserted, span.1 + inserted);
                }
            }
        }
        let cut = torn.min(bytes.len());
        bytes.truncate(bytes.len() - cut);
        for (k, span) in spans.iter().enumerate() {
            touched[k] |= span.1 > bytes.len();
        }
        std::fs::write(seg(&d, 0), &bytes).unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        let mut got = Vec::new();
        loop {
            let recs = s.peek(7, usize::MAX).unwrap();
            let Some(&(_, pos)) = recs.last() else { break };
            for (p, _) in &recs {
                let seq = seq_of(p);
                prop_assert_eq!(p, &rec(seq, pads[seq as usize]), "an original record, unchanged");
                got.push(seq);
            }
            s.ack(pos).unwrap();
        }
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, once: {:?}", got);
        let want: Vec<u64> = (0..spans.len() as u64).filter(|&k| !touched[k as usize]).collect();
        for k in &want {
            prop_assert!(got.contains(k), "untouched record {} lost; got {:?}", k, got);
        }
        prop_assert!(s.is_empty());
    }
}
