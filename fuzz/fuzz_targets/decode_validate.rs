//! Any body: decoding with the collector's limits never panics and never
//! holds more than the limits allow; what decodes either validates or names
//! a field; what validates encodes and decodes to the same reports.
#![no_main]

use jazari_wire::{DecodeLimits, Limits, decode_with, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    let Ok(reports) = decode_with(data, limits) else { return };
    assert!(reports.len() <= limits.reports);
    let lim = Limits { now_ms: 1_800_000_000_000, max_interval_ms: 3_600_000, oldest_ms: 0, max_users: 1024 };
    for (i, r) in reports.iter().enumerate() {
        assert!(r.gpus.len() <= limits.gpus);
        assert!(r.jobs.len() <= limits.jobs && r.events.len() <= limits.events);
        let procs: usize = r.gpus.iter().map(|g| g.processes.len()).sum();
        assert!(r.gpus.iter().all(|g| g.processes.len() <= limits.processes_per_gpu));
        assert!(procs <= limits.processes);
        let _ = r.interval_s();
        match validate(r, i, lim) {
            Ok(()) => {
                let text = serde_json::to_vec(r).expect("a valid report encodes");
                let back = decode_with(&text, limits).expect("an encoded report decodes");
                assert_eq!(&back[0], r);
            }
            Err(e) => assert!(!e.field.is_empty()),
        }
    }
});
