//! What the writer receives: reports decoded, charged and encoded outside
//! the writer thread, so the transaction does only the store's work.

use crate::accounting::{Allocations, GpuCharge, gpu_key};
use jazari_wire::Report;
use jazari_wire::newest_per_node;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// A report ready for the writer.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub report: Report,
    /// What each GPU charges, window by window (the writer charges only new
    /// time); None while the report waits for the scheduler's view of its time.
    pub charges: Option<Vec<GpuCharge>>,
    /// Who holds its GPUs as far as is known now (live state, the history's allocated flag).
    pub allocs: Allocations,
    /// Raw history row (all GPUs of the report).
    pub history: String,
    /// The report as JSON, for the newest report of each node in a batch.
    pub snapshot: Option<String>,
}

impl Prepared {
    /// Prepares a batch; the newest report of each node carries its snapshot.
    /// `charge` says who holds a report's GPUs now, and what it charges (or
    /// None to charge it later).
    pub fn batch(
        reports: Vec<Report>,
        mut charge: impl FnMut(&Report) -> (Allocations, Option<Vec<GpuCharge>>),
    ) -> Vec<Prepared> {
        let keep: HashSet<usize> = newest_per_node(&reports).into_values().collect();
        reports
            .into_iter()
            .enumerate()
            .map(|(i, report)| {
                let (allocs, charges) = charge(&report);
                Prepared {
                    charges,
                    history: raw_history(&report, &allocs),
                    snapshot: keep.contains(&i).then(|| serde_json::to_string(&report).expect("reports serialise")),
                    allocs,
                    report,
                }
            })
            .collect()
    }
}

/// One GPU in a raw history row: key, utilisation, memory used, power (W),
/// temperature, allocated (1 or 0).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RawGpu(
    pub String,
    pub Option<f64>,
    pub Option<f64>,
    pub Option<f64>,
    pub Option<f64>,
    pub Option<f64>,
);

fn held(allocs: &Allocations, g: &jazari_wire::Gpu) -> bool {
    allocs.holder(g.index).is_some() || g.mig_devices.iter().any(|s| allocs.slice_holder(&s.uuid).is_some())
}

fn raw_history(r: &Report, allocs: &Allocations) -> String {
    let gpus: Vec<RawGpu> = r
        .gpus
        .iter()
        .map(|g| {
            RawGpu(
                gpu_key(g),
                g.util_gpu_pct.map(f64::from),
                g.mem_used_bytes.map(|b| b as f64),
                g.power_mw.map(|p| p as f64 / 1000.0),
                g.temperature_c.map(f64::from),
                // A GPU in MIG mode is held when any of its slices is (as the cluster view counts it).
                Some(if held(allocs, g) { 1.0 } else { 0.0 }),
            )
        })
        .collect();
    serde_json::to_string(&gpus).expect("history serialises")
}
