//! Ingest: checks on a posted body, in the order the API promises (token
//! 401, size 413, decode 400, value ranges 400, node allowed 403), then one
//! transaction through the writer.

use jazari_agent::wire::{Report, WIRE_VERSION};
use std::io::Read;

/// A refusal, with its HTTP status and a message naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// Decompresses a body according to its `Content-Encoding`, refusing more than `max` bytes out.
pub fn decompress(encoding: Option<&str>, body: &[u8], max: usize) -> Result<Vec<u8>, Refusal> {
    let too_big = || Refusal::new(413, format!("body is larger than {max} bytes once decompressed"));
    let read_limited = |mut r: Box<dyn Read + '_>, what: &str| -> Result<Vec<u8>, Refusal> {
        let mut out = Vec::with_capacity(body.len() * 4);
        r.by_ref()
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Refusal::new(400, format!("body is not valid {what}: {e}")))?;
        if out.len() > max {
            return Err(too_big());
        }
        Ok(out)
    };
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => {
            if body.len() > max {
                return Err(too_big());
            }
            Ok(body.to_vec())
        }
        Some("zstd") => {
            let d = zstd::stream::read::Decoder::new(body).map_err(|e| Refusal::new(400, format!("zstd: {e}")))?;
            read_limited(Box::new(d), "zstd")
        }
        Some("gzip") | Some("x-gzip") => read_limited(Box::new(flate2::read::GzDecoder::new(body)), "gzip"),
        Some(other) => Err(Refusal::new(415, format!("Content-Encoding `{other}` is not supported; use zstd or gzip"))),
    }
}

/// Decodes one report or an array of reports, naming the field at fault.
pub fn decode(body: &[u8]) -> Result<Vec<Report>, Refusal> {
    let array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    // Fast path without path tracking; decode again to name the field only on error.
    let fast = if array { serde_json::from_slice(body) } else { serde_json::from_slice(body).map(|r| vec![r]) };
    fast.map_err(|_| {
        let result = if array {
            let de = &mut serde_json::Deserializer::from_slice(body);
            serde_path_to_error::deserialize::<_, Vec<Report>>(de).map(drop)
        } else {
            let de = &mut serde_json::Deserializer::from_slice(body);
            serde_path_to_error::deserialize::<_, Report>(de).map(drop)
        };
        match result {
            Ok(()) => Refusal::new(400, "report is not valid JSON for the wire format"),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path.is_empty() || path == "." {
                    Refusal::new(400, format!("report is not valid: {inner}"))
                } else {
                    Refusal::new(400, format!("report field `{path}`: {inner}"))
                }
            }
        }
    })
}

/// Limits a report's values must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub now_ms: i64,
    pub max_interval_ms: i64,
    /// Oldest interval end accepted (older reports can no longer be deduplicated).
    pub oldest_ms: i64,
}

/// Checks value ranges; the message names the report and the field.
pub fn validate(r: &Report, i: usize, lim: Limits) -> Result<(), Refusal> {
    let bad = |field: &str, why: String| Err(Refusal::new(400, format!("report [{i}] field `{field}`: {why}")));
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
    if r.interval_end_ms > lim.now_ms + 300_000 {
        return bad("interval_end_ms", "is more than 5 minutes in the future: check the node's clock".into());
    }
    if r.interval_end_ms < lim.oldest_ms {
        return bad(
            "interval_end_ms",
            "is older than the deduplication horizon; the report cannot be counted once".into(),
        );
    }
    if r.gpus.len() > 256 {
        return bad("gpus", format!("{} GPUs on one node is more than 256", r.gpus.len()));
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
    use jazari_agent::wire::{Gpu, Host};

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
    fn decode_names_the_nested_field() {
        let mut v = serde_json::to_value(report()).unwrap();
        v["gpus"][0]["util_gpu_pct"] = serde_json::json!("high");
        let err = decode(serde_json::to_string(&v).unwrap().as_bytes()).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("gpus[0].util_gpu_pct"), "{}", err.message);
    }

    #[test]
    fn ranges() {
        let mut r = report();
        r.gpus[0].util_gpu_pct = Some(250);
        let e = validate(&r, 0, LIM).unwrap_err();
        assert!(e.message.contains("gpus[0].util_gpu_pct") && e.message.contains("250"), "{}", e.message);
        let mut r = report();
        r.interval_end_ms = r.interval_start_ms - 1;
        assert!(validate(&r, 0, LIM).unwrap_err().message.contains("interval_end_ms"));
        let mut r = report();
        r.node = "bad node".into();
        assert!(validate(&r, 0, LIM).unwrap_err().message.contains("node"));
        assert!(validate(&report(), 0, LIM).is_ok());
    }

    #[test]
    fn decompression_is_bounded() {
        let big = vec![b' '; 100_000];
        let z = zstd::encode_all(&big[..], 3).unwrap();
        assert_eq!(decompress(Some("zstd"), &z, 200_000).unwrap().len(), 100_000);
        assert_eq!(decompress(Some("zstd"), &z, 50_000).unwrap_err().status, 413);
        assert_eq!(decompress(Some("br"), &z, 50_000).unwrap_err().status, 415);
        assert_eq!(decompress(Some("zstd"), b"not zstd", 50_000).unwrap_err().status, 400);
    }
}
