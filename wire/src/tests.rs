//! Round trips of the wire format and its decoder.
use crate::*;
use proptest::prelude::*;

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn process() -> impl Strategy<Value = Process> {
    (
        any::<u32>(),
        opt(any::<u32>()),
        opt("[a-z]{1,8}"),
        opt(any::<u64>()),
        opt("[0-9]{1,7}"),
        opt("[0-9a-f-]{36}"),
        opt("[a-z]{1,15}"),
    )
        .prop_map(|(pid, uid, user, gpu_mem_bytes, job, pod_uid, command)| Process {
            pid,
            uid,
            group: user.as_ref().map(|u| format!("g-{u}")),
            user,
            gpu_mem_bytes,
            job,
            pod_uid,
            command,
        })
}

fn pct() -> impl Strategy<Value = Option<f64>> {
    opt(0.0f64..=100.0)
}

fn gpm() -> impl Strategy<Value = Gpm> {
    (pct(), pct(), pct(), pct(), pct()).prop_map(|(a, b, c, d, e)| Gpm {
        sm_active_pct: a,
        sm_occupancy_pct: b,
        tensor_active_pct: c,
        dram_active_pct: d,
        fp64_active_pct: e,
    })
}

fn mig_device() -> impl Strategy<Value = MigDevice> {
    (
        "MIG-[0-9a-f-]{36}",
        opt(0u32..15),
        opt(0u32..8),
        opt(1u32..=7),
        opt(1u32..=8),
        opt(any::<u64>()),
        opt(any::<u64>()),
        proptest::collection::vec(process(), 0..3),
        opt(gpm()),
    )
        .prop_map(|m| MigDevice {
            uuid: m.0,
            gpu_instance_id: m.1,
            compute_instance_id: m.2,
            slices_compute: m.3,
            slices_memory: m.4,
            mem_used_bytes: m.5,
            mem_total_bytes: m.6,
            processes: m.7,
            gpm: m.8,
        })
}

fn gpu() -> impl Strategy<Value = Gpu> {
    let a = (
        any::<u32>(),
        opt("GPU-[0-9a-f-]{36}"),
        opt("[0-9A-F:.]{16}"),
        opt(any::<u32>()),
        opt("NVIDIA [A-Z0-9 ]{1,10}"),
        prop_oneof![Just(Health::Ok), Just(Health::Lost), Just(Health::Error)],
        opt(0u32..=100),
        opt(0u32..=100),
        opt(any::<u64>()),
        opt(any::<u64>()),
    );
    let b = (
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u64>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(proptest::collection::vec(0u32..=100, 0..3)),
        opt(any::<bool>()),
        opt((opt(any::<u64>()), opt(any::<u64>()), opt(any::<u64>()), opt(any::<u64>()))),
        opt(any::<u64>()),
    );
    let c = (
        opt(any::<bool>()),
        proptest::collection::vec(process(), 0..4),
        opt(gpm()),
        proptest::collection::vec(mig_device(), 0..8),
    );
    (a, b, c).prop_map(|(a, b, c)| Gpu {
        index: a.0,
        uuid: a.1,
        pci_bus_id: a.2,
        minor: a.3,
        name: a.4,
        health: a.5,
        util_gpu_pct: a.6,
        util_mem_pct: a.7,
        mem_used_bytes: a.8,
        mem_total_bytes: a.9,
        temperature_c: b.0,
        power_mw: b.1,
        power_limit_mw: b.2,
        energy_mj: b.3,
        sm_clock_mhz: b.4,
        mem_clock_mhz: b.5,
        fan_pct: b.6,
        ecc_enabled: b.7,
        ecc: b.8.map(|(w, x, y, z)| EccCounts {
            volatile_corrected: w,
            volatile_uncorrected: x,
            aggregate_corrected: y,
            aggregate_uncorrected: z,
        }),
        throttle_reasons: b.9.map(throttle_reason_names),
        mig_enabled: c.0,
        processes: c.1,
        gpm: c.2,
        mig_devices: c.3,
    })
}

fn report() -> impl Strategy<Value = Report> {
    let host = (
        opt(0.0f64..6400.0),
        opt(any::<u32>()),
        opt((0.0f64..500.0, 0.0f64..500.0, 0.0f64..500.0)),
        opt(any::<u64>()),
        opt(any::<u64>()),
        opt(any::<u64>()),
        opt("[0-9a-f-]{36}"),
        opt("[0-9a-z.-]{1,20}"),
        prop_oneof![
            Just(GpuSourceState::Ok),
            Just(GpuSourceState::NoGpus),
            ".{0,30}".prop_map(GpuSourceState::Unavailable)
        ],
    )
        .prop_map(|h| Host {
            cpu_percent: h.0,
            cpu_count: h.1,
            load: h.2.map(|(a, b, c)| [a, b, c]),
            mem_used_bytes: h.3,
            mem_total_bytes: h.4,
            uptime_s: h.5,
            boot_id: h.6,
            kernel: h.7.clone(),
            driver_version: h.7,
            cuda_version: None,
            gpu_source: h.8,
            agent_version: None,
        });
    let job = (
        "[0-9]{1,8}",
        opt("[a-z]{1,8}"),
        opt("[a-z-]{1,12}"),
        opt(proptest::collection::vec(0u32..16, 0..8)),
        any::<u32>(),
    )
        .prop_map(|(id, user, account, gpu_ids, processes)| Job {
            scheduler: "slurm".into(),
            array: (processes % 3 == 0).then(|| format!("{id}_{}", processes % 7)),
            id,
            group: user.as_ref().map(|u| format!("g-{u}")),
            user,
            uid: None,
            account,
            gpu_ids,
            processes,
        });
    let event = (
        any::<i64>(),
        opt("GPU-[0-9a-f]{8}"),
        prop_oneof![any::<u64>().prop_map(|code| EventKind::Xid { code }), Just(EventKind::GpuLost)],
    )
        .prop_map(|(time_ms, gpu_uuid, kind)| Event { time_ms, gpu_uuid, kind });
    (
        "[a-z0-9-]{1,20}",
        "[0-9a-f]{16}",
        any::<u64>(),
        any::<i64>(),
        any::<i64>(),
        host,
        proptest::collection::vec(gpu(), 0..9),
        proptest::collection::vec(job, 0..5),
        proptest::collection::vec(event, 0..3),
    )
        .prop_map(|(node, instance, seq, s, e, host, gpus, jobs, events)| Report {
            version: WIRE_VERSION,
            node,
            instance,
            seq,
            interval_start_ms: s,
            interval_end_ms: e,
            host,
            gpus,
            jobs,
            events,
        })
}

proptest! {
    #[test]
    fn report_round_trips_through_json(r in report()) {
        let text = serde_json::to_vec(&r).unwrap();
        let back = decode(&text).unwrap();
        prop_assert_eq!(back, vec![r]);
    }

    #[test]
    fn batches_round_trip(rs in proptest::collection::vec(report(), 0..4)) {
        let text = serde_json::to_vec(&rs).unwrap();
        prop_assert_eq!(decode(&text).unwrap(), rs);
    }
}

#[test]
fn absent_fields_are_not_written_as_zero() {
    let g = Gpu { index: 3, uuid: Some("GPU-x".into()), ..Default::default() };
    let v = serde_json::to_value(&g).unwrap();
    assert!(v.get("fan_pct").is_none());
    assert!(v.get("ecc").is_none());
    assert!(v.get("power_mw").is_none());
    assert_eq!(v["health"], "ok");
}

#[test]
fn gpm_and_mig_are_absent_not_zero() {
    let g = Gpu { index: 0, ..Default::default() };
    let v = serde_json::to_value(&g).unwrap();
    assert!(v.get("gpm").is_none() && v.get("mig_devices").is_none(), "{v}");
    let g = Gpu {
        gpm: Some(Gpm { sm_active_pct: Some(18.0), ..Default::default() }),
        mig_devices: vec![MigDevice { uuid: "MIG-x".into(), ..Default::default() }],
        ..g
    };
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["gpm"], serde_json::json!({"sm_active_pct": 18.0}), "unknown GPM values are left out");
    assert_eq!(v["mig_devices"][0], serde_json::json!({"uuid": "MIG-x", "processes": []}));
    // A report of an older agent (no gpm, no mig_devices) still reads.
    let back: Gpu = serde_json::from_str(r#"{"index": 1, "health": "ok"}"#).unwrap();
    assert_eq!((back.gpm, back.mig_devices.len()), (None, 0));
}

/// A report of node `n` with one GPU and nothing else.
fn one_gpu_report() -> Report {
    Report {
        version: WIRE_VERSION,
        node: "n".into(),
        instance: "i".into(),
        seq: 0,
        interval_start_ms: 0,
        interval_end_ms: 1,
        host: Host::default(),
        gpus: vec![Gpu::default()],
        jobs: vec![],
        events: vec![],
    }
}

#[test]
fn a_body_that_is_not_utf8_is_refused_at_the_string() {
    let good = serde_json::to_vec(&one_gpu_report()).unwrap();
    assert_eq!(decode(&good).unwrap()[0].node, "n");
    // The node's name is a byte that is not UTF-8: refused, the field named.
    let text = String::from_utf8(good).unwrap();
    assert!(text.contains(r#""node":"n""#), "{text}");
    let bad: Vec<u8> =
        text.replace(r#""node":"n""#, "\"node\":\"\0\"").bytes().map(|b| if b == 0 { 0xff } else { b }).collect();
    let err = decode(&bad).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("node"), "{err}");
    assert!(err.message.contains("UTF-8") || err.message.contains("unicode"), "{err}");
}

#[test]
fn decode_error_names_the_field() {
    let err = decode(br#"{"version":1,"node":"n","instance":"i","seq":"x"}"#).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("seq"), "{err}");
    let mut v = serde_json::to_value(one_gpu_report()).unwrap();
    v["gpus"][0]["util_gpu_pct"] = serde_json::json!("high");
    let err = decode(format!("[{v}]").as_bytes()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("[0].gpus[0].util_gpu_pct"), "{err}");
    assert!(err.to_string().contains("[0].gpus[0].util_gpu_pct"), "{err}");
}

#[test]
fn throttle_names_keep_unknown_bits() {
    assert_eq!(throttle_reason_names(0x1 | 0x4 | 0x1000), vec!["gpu_idle", "sw_power_cap", "0x1000"]);
    assert!(throttle_reason_names(0).is_empty());
}

/// A report as JSON with `n` processes on its first GPU (and `gpus` GPUs).
fn amplified(gpus: usize, n: usize) -> String {
    let r = Report {
        version: WIRE_VERSION,
        node: "n1".into(),
        instance: "i".into(),
        seq: 1,
        interval_start_ms: 1,
        interval_end_ms: 2,
        host: Host::default(),
        gpus: (0..gpus as u32).map(|index| Gpu { index, ..Default::default() }).collect(),
        jobs: vec![],
        events: vec![],
    };
    let text = serde_json::to_string(&r).unwrap();
    let procs = vec![r#"{"pid":1}"#; n].join(",");
    text.replacen(r#""processes":[]"#, &format!(r#""processes":[{procs}]"#), 1)
}

#[test]
fn lists_are_counted_while_decoding() {
    let lim = DecodeLimits { reports: 3, gpus: 4, processes_per_gpu: 10, processes: 25, jobs: 2, events: 2 };
    assert_eq!(decode_with(amplified(4, 10).as_bytes(), lim).unwrap()[0].gpus[0].processes.len(), 10);
    let e = decode_with(amplified(4, 11).as_bytes(), lim).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("gpus[0].processes"), "{e}");
    assert!(e.message.contains("ingest.max_processes_per_gpu") && e.message.contains("10"), "{e}");
    let e = decode_with(amplified(5, 1).as_bytes(), lim).unwrap_err();
    assert!(e.message.contains("ingest.max_gpus_per_report"), "{e}");
    // Per report: 10 on each of 3 GPUs is over 25 in all.
    let three =
        amplified(3, 0).replace(r#""processes":[]"#, &format!(r#""processes":[{}]"#, [r#"{"pid":2}"#; 10].join(",")));
    let e = decode_with(three.as_bytes(), lim).unwrap_err();
    assert!(e.message.contains("ingest.max_processes_per_report"), "{e}");
    // The count starts again for each report of a batch, and batches are bounded.
    let one =
        amplified(2, 10).replace(r#""processes":[]"#, &format!(r#""processes":[{}]"#, [r#"{"pid":2}"#; 10].join(",")));
    let batch = |n: usize| format!("[{}]", vec![one.as_str(); n].join(","));
    assert_eq!(decode_with(batch(3).as_bytes(), lim).unwrap().len(), 3);
    let e = decode_with(batch(4).as_bytes(), lim).unwrap_err();
    assert!(e.message.contains("ingest.max_reports_per_batch"), "{e}");
    // Jobs and events.
    let jobs = amplified(1, 0).replace(r#""jobs":[]"#, r#""jobs":[{"scheduler":"slurm","id":"1","processes":1},{"scheduler":"slurm","id":"2","processes":1},{"scheduler":"slurm","id":"3","processes":1}]"#);
    assert!(decode_with(jobs.as_bytes(), lim).unwrap_err().message.contains("ingest.max_jobs_per_report"));
    // Without limits set (the agent reading its spool), nothing is counted.
    let many: Report = serde_json::from_str(&amplified(1, 5000)).unwrap();
    assert_eq!(many.gpus[0].processes.len(), 5000);
    // The default limits refuse millions of processes after reading about a thousand.
    let e = decode(amplified(1, 200_000).as_bytes()).unwrap_err();
    assert!(e.message.contains("1024"), "{e}");
}
