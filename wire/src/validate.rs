//! Limits every report must respect, checked by the collector before a report
//! is charged (and usable by the agent to check what it writes).

use crate::{Report, WIRE_VERSION};

/// Limits that depend on the collector and the moment.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub now_ms: i64,
    pub max_interval_ms: i64,
    /// Oldest interval end accepted (older reports can no longer be deduplicated).
    pub oldest_ms: i64,
}

/// Most GPUs one report may carry.
pub const MAX_GPUS: usize = 256;
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
    if r.interval_end_ms < r.interval_start_ms {
        return bad("interval_end_ms", "is before interval_start_ms".into());
    }
    if r.interval_end_ms - r.interval_start_ms > lim.max_interval_ms {
        return bad(
            "interval_start_ms",
            format!(
                "the interval is longer than the collector's ingest.max_interval ({} s)",
                lim.max_interval_ms / 1000
            ),
        );
    }
    if r.interval_end_ms > lim.now_ms + MAX_CLOCK_AHEAD_MS {
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
    }
    if let Some(c) = r.host.cpu_percent
        && !(0.0..=100.0 * 4096.0).contains(&c)
    {
        return bad("host.cpu_percent", format!("{c} is out of range"));
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

    const LIM: Limits = Limits { now_ms: 1_010_000, max_interval_ms: 3_600_000, oldest_ms: 0 };

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
    fn an_unknown_version_is_refused_with_its_number() {
        let mut r = report();
        r.version = 99;
        let e = validate(&r, 3, LIM).unwrap_err();
        assert_eq!((e.report, e.field.as_str()), (3, "version"));
        assert!(e.why.contains("99"), "{e}");
    }
}
