//! Limits every report must respect, checked by the collector before a report
//! is charged (and usable by the agent to check what it writes).

use crate::{Gpm, Report, WIRE_VERSION};

/// Limits that depend on the collector and the moment.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub now_ms: i64,
    pub max_interval_ms: i64,
    /// Oldest interval end accepted (older reports can no longer be deduplicated).
    pub oldest_ms: i64,
    /// Most distinct process owners (user names, else uids) in one report.
    pub max_users: usize,
}

/// Most GPUs one report may carry.
pub const MAX_GPUS: usize = 256;
/// Most MIG devices one GPU may have (seven 1g slices on A100, H100, H200).
pub const MAX_MIG_DEVICES: usize = 7;
/// Most compute slices of one MIG device (of 7).
pub const MAX_MIG_SLICES_COMPUTE: u32 = 7;
/// Most memory slices of one MIG device (of 8).
pub const MAX_MIG_SLICES_MEMORY: u32 = 8;
/// Most processes one MIG device may list.
pub const MAX_MIG_PROCESSES: usize = 4096;
/// How far ahead of the collector's clock an interval may end.
pub const MAX_CLOCK_AHEAD_MS: i64 = 300_000;

/// A value out of range: which report, which field, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report [{report}] field `{field}`: {why}")]
pub struct Invalid {
    pub report: usize,
    pub field: String,
    pub why: String,
}

/// Checks value ranges of report number `i` of a batch.
pub fn validate(r: &Report, i: usize, lim: Limits) -> Result<(), Invalid> {
    let bad = |field: &str, why: String| Err(Invalid { report: i, field: field.to_string(), why });
    if r.version != WIRE_VERSION {
        return bad("version", format!("{} is not the version this collector reads ({WIRE_VERSION})", r.version));
    }
    if r.node.is_empty()
        || r.node.len() > 253
        || !r.node.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return bad("node", format!("`{}` is not a node name (1-253 of A-Z, a-z, 0-9, '-', '.', '_')", r.node));
    }
    if r.instance.is_empty() || r.instance.len() > 64 {
        return bad("instance", "must be 1-64 characters".into());
    }
    if r.seq > i64::MAX as u64 {
        return bad("seq", "is too large".into());
    }
    if r.interval_start_ms <= 0 {
        return bad("interval_start_ms", format!("{} is not a time after 1970", r.interval_start_ms));
    }
    if r.interval_end_ms < r.interval_start_ms {
        return bad("interval_end_ms", "is before interval_start_ms".into());
    }
    // Both positive and ordered: the difference cannot overflow.
    if r.interval_end_ms - r.interval_start_ms > lim.max_interval_ms {
        return bad(
            "interval_start_ms",
            format!(
                "the interval is longer than the collector's ingest.max_interval ({} s)",
                lim.max_interval_ms / 1000
            ),
        );
    }
    if r.interval_end_ms > lim.now_ms.saturating_add(MAX_CLOCK_AHEAD_MS) {
        return bad("interval_end_ms", "is more than 5 minutes in the future: check the node's clock".into());
    }
    if r.interval_end_ms < lim.oldest_ms {
        return bad(
            "interval_end_ms",
            "is older than the deduplication horizon; the report cannot be counted once".into(),
        );
    }
    if r.gpus.len() > MAX_GPUS {
        return bad("gpus", format!("{} GPUs on one node is more than {MAX_GPUS}", r.gpus.len()));
    }
    let mut mig_uuids = std::collections::HashSet::new();
    for (k, g) in r.gpus.iter().enumerate() {
        let pct = |name: &str, v: Option<u32>| match v {
            Some(v) if v > 100 => bad(&format!("gpus[{k}].{name}"), format!("{v} is outside 0..100")),
            _ => Ok(()),
        };
        pct("util_gpu_pct", g.util_gpu_pct)?;
        pct("util_mem_pct", g.util_mem_pct)?;
        if let (Some(u), Some(t)) = (g.mem_used_bytes, g.mem_total_bytes)
            && u > t
        {
            return bad(&format!("gpus[{k}].mem_used_bytes"), format!("{u} is more than mem_total_bytes {t}"));
        }
        if g.power_mw.is_some_and(|p| p > 10_000_000) {
            return bad(&format!("gpus[{k}].power_mw"), "is over 10 kW".into());
        }
        if g.uuid.as_ref().is_some_and(|u| u.is_empty() || u.len() > 96) {
            return bad(&format!("gpus[{k}].uuid"), "must be 1-96 characters".into());
        }
        if r.gpus[..k].iter().any(|o| o.uuid.is_some() && o.uuid == g.uuid) {
            return bad(&format!("gpus[{k}].uuid"), "appears twice in one report".into());
        }
        if let Some(gpm) = &g.gpm {
            check_gpm(gpm, &format!("gpus[{k}].gpm")).map_err(|(f, why)| Invalid { report: i, field: f, why })?;
        }
        if g.mig_devices.len() > MAX_MIG_DEVICES {
            return bad(
                &format!("gpus[{k}].mig_devices"),
                format!("{} MIG devices on one GPU is more than {MAX_MIG_DEVICES}", g.mig_devices.len()),
            );
        }
        for (m, d) in g.mig_devices.iter().enumerate() {
            let at = |name: &str| format!("gpus[{k}].mig_devices[{m}].{name}");
            if d.uuid.is_empty() || d.uuid.len() > 96 {
                return bad(&at("uuid"), "must be 1-96 characters".into());
            }
            if !mig_uuids.insert(d.uuid.as_str()) {
                return bad(&at("uuid"), "appears twice in one report".into());
            }
            if let Some(c) = d.slices_compute
                && !(1..=MAX_MIG_SLICES_COMPUTE).contains(&c)
            {
                return bad(&at("slices_compute"), format!("{c} is outside 1..{MAX_MIG_SLICES_COMPUTE}"));
            }
            if let Some(c) = d.slices_memory
                && !(1..=MAX_MIG_SLICES_MEMORY).contains(&c)
            {
                return bad(&at("slices_memory"), format!("{c} is outside 1..{MAX_MIG_SLICES_MEMORY}"));
            }
            if let (Some(u), Some(t)) = (d.mem_used_bytes, d.mem_total_bytes)
                && u > t
            {
                return bad(&at("mem_used_bytes"), format!("{u} is more than mem_total_bytes {t}"));
            }
            if let (Some(t), Some(gt)) = (d.mem_total_bytes, g.mem_total_bytes)
                && t > gt
            {
                return bad(&at("mem_total_bytes"), format!("{t} is more than the GPU's mem_total_bytes {gt}"));
            }
            if d.processes.len() > MAX_MIG_PROCESSES {
                return bad(
                    &at("processes"),
                    format!("{} processes on one MIG device is more than {MAX_MIG_PROCESSES}", d.processes.len()),
                );
            }
            if let Some(gpm) = &d.gpm {
                check_gpm(gpm, &at("gpm")).map_err(|(f, why)| Invalid { report: i, field: f, why })?;
            }
        }
    }
    let mut owners = std::collections::HashSet::new();
    let processes =
        r.gpus.iter().flat_map(|g| g.processes.iter().chain(g.mig_devices.iter().flat_map(|d| &d.processes)));
    for p in processes {
        owners.insert((p.user.as_deref(), p.uid));
        if owners.len() > lim.max_users {
            return bad(
                "gpus",
                format!(
                    "processes of more than {} distinct users in one report (the collector's ingest.max_users_per_report)",
                    lim.max_users
                ),
            );
        }
    }
    if let Some(c) = r.host.cpu_percent
        && !(0.0..=100.0 * 4096.0).contains(&c)
    {
        return bad("host.cpu_percent", format!("{c} is out of range"));
    }
    Ok(())
}

/// Each GPM value is a percentage: finite, 0..100.
fn check_gpm(g: &Gpm, at: &str) -> Result<(), (String, String)> {
    let values = [
        ("sm_active_pct", g.sm_active_pct),
        ("sm_occupancy_pct", g.sm_occupancy_pct),
        ("tensor_active_pct", g.tensor_active_pct),
        ("dram_active_pct", g.dram_active_pct),
        ("fp64_active_pct", g.fp64_active_pct),
    ];
    for (name, v) in values {
        if let Some(v) = v
            && !(0.0..=100.0).contains(&v)
        {
            return Err((format!("{at}.{name}"), format!("{v} is outside 0..100")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gpu, Host};

    fn report() -> Report {
        Report {
            version: WIRE_VERSION,
            node: "n1".into(),
            instance: "abc".into(),
            seq: 1,
            interval_start_ms: 1_000_000,
            interval_end_ms: 1_010_000,
            host: Host::default(),
            gpus: vec![Gpu { index: 0, uuid: Some("GPU-1".into()), ..Default::default() }],
            jobs: vec![],
            events: vec![],
        }
    }

    const LIM: Limits = Limits { now_ms: 1_010_000, max_interval_ms: 3_600_000, oldest_ms: 0, max_users: 4 };

    #[test]
    fn ranges() {
        let mut r = report();
        r.gpus[0].util_gpu_pct = Some(250);
        let e = validate(&r, 0, LIM).unwrap_err().to_string();
        assert!(e.contains("gpus[0].util_gpu_pct") && e.contains("250"), "{e}");
        let mut r = report();
        r.interval_end_ms = r.interval_start_ms - 1;
        assert!(validate(&r, 0, LIM).unwrap_err().to_string().contains("interval_end_ms"));
        let mut r = report();
        r.node = "bad node".into();
        assert!(validate(&r, 0, LIM).unwrap_err().to_string().contains("node"));
        assert!(validate(&report(), 0, LIM).is_ok());
    }

    #[test]
    fn gpm_and_mig_ranges_name_their_field() {
        use crate::MigDevice;
        let mig = |uuid: &str| MigDevice { uuid: uuid.into(), slices_compute: Some(1), ..Default::default() };
        let mut r = report();
        r.gpus[0].gpm = Some(Gpm { sm_active_pct: Some(18.0), tensor_active_pct: Some(0.0), ..Default::default() });
        r.gpus[0].mig_devices = vec![mig("MIG-a"), mig("MIG-b")];
        assert!(validate(&r, 0, LIM).is_ok());

        let mut bad = r.clone();
        bad.gpus[0].gpm.as_mut().unwrap().dram_active_pct = Some(100.5);
        let e = validate(&bad, 0, LIM).unwrap_err();
        assert_eq!(e.field, "gpus[0].gpm.dram_active_pct", "{e}");
        let mut bad = r.clone();
        bad.gpus[0].gpm.as_mut().unwrap().sm_active_pct = Some(f64::NAN);
        assert_eq!(validate(&bad, 0, LIM).unwrap_err().field, "gpus[0].gpm.sm_active_pct");

        let mut bad = r.clone();
        bad.gpus[0].mig_devices[1].gpm = Some(Gpm { fp64_active_pct: Some(-1.0), ..Default::default() });
        assert_eq!(validate(&bad, 0, LIM).unwrap_err().field, "gpus[0].mig_devices[1].gpm.fp64_active_pct");

        let mut bad = r.clone();
        bad.gpus[0].mig_devices = (0..8).map(|n| mig(&format!("MIG-{n}"))).collect();
        let e = validate(&bad, 0, LIM).unwrap_err();
        assert_eq!(e.field, "gpus[0].mig_devices", "{e}");
        assert!(e.why.contains('8') && e.why.contains('7'), "{e}");

        let mut bad = r.clone();
        bad.gpus[0].mig_devices[1].slices_compute = Some(8);
        assert_eq!(validate(&bad, 0, LIM).unwrap_err().field, "gpus[0].mig_devices[1].slices_compute");
        let mut bad = r.clone();
        bad.gpus[0].mig_devices[0].slices_memory = Some(0);
        assert_eq!(validate(&bad, 0, LIM).unwrap_err().field, "gpus[0].mig_devices[0].slices_memory");
        let mut bad = r.clone();
        bad.gpus[0].mig_devices[0].mem_used_bytes = Some(2);
        bad.gpus[0].mig_devices[0].mem_total_bytes = Some(1);
        assert_eq!(validate(&bad, 0, LIM).unwrap_err().field, "gpus[0].mig_devices[0].mem_used_bytes");

        // A MIG UUID is unique across the whole report, not only its GPU.
        let mut bad = r.clone();
        let mut other = bad.gpus[0].clone();
        other.uuid = Some("GPU-2".into());
        other.mig_devices = vec![mig("MIG-b")];
        bad.gpus.push(other);
        let e = validate(&bad, 0, LIM).unwrap_err();
        assert_eq!(e.field, "gpus[1].mig_devices[0].uuid", "{e}");
        assert!(e.why.contains("twice"), "{e}");
        let mut bad = r.clone();
        bad.gpus[0].mig_devices[0].uuid = String::new();
        assert_eq!(validate(&bad, 0, LIM).unwrap_err().field, "gpus[0].mig_devices[0].uuid");
    }

    #[test]
    fn extreme_times_are_refused_not_wrapped() {
        let mut r = report();
        r.interval_start_ms = i64::MIN;
        assert_eq!(validate(&r, 0, LIM).unwrap_err().field, "interval_start_ms");
        let mut r = report();
        r.interval_end_ms = i64::MAX;
        let lim = Limits { now_ms: i64::MAX - 1, max_interval_ms: i64::MAX, ..LIM };
        assert!(validate(&r, 0, lim).is_ok(), "no overflow at the top of the range");
        let mut r = report();
        r.interval_start_ms = 1;
        r.interval_end_ms = i64::MAX;
        assert_eq!(validate(&r, 0, LIM).unwrap_err().field, "interval_start_ms", "longer than max_interval");
    }

    #[test]
    fn distinct_users_per_report_are_bounded() {
        use crate::Process;
        let mut r = report();
        let p = |u: u32| Process { pid: u, uid: Some(u), user: Some(format!("u{u}")), ..Default::default() };
        r.gpus[0].processes = (0..4).map(p).chain((0..4).map(p)).collect();
        assert!(validate(&r, 0, LIM).is_ok(), "4 users, each twice");
        r.gpus[0].processes.push(p(9));
        let e = validate(&r, 0, LIM).unwrap_err();
        assert!(e.why.contains("max_users_per_report"), "{e}");
    }

    #[test]
    fn an_unknown_version_is_refused_with_its_number() {
        let mut r = report();
        r.version = 99;
        let e = validate(&r, 3, LIM).unwrap_err();
        assert_eq!((e.report, e.field.as_str()), (3, "version"));
        assert!(e.why.contains("99"), "{e}");
    }
}
