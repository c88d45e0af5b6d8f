//! Families read off live state: nodes and GPUs now, gauges per GPU of the
//! nodes that report, counters per GPU (energy, XID events, ECC errors),
//! when each node last reported, reports that overlapped charged time.
//!
//! Series about the cluster carry `cluster`; those per GPU carry `node`,
//! `gpu` (the NVML index) and `uuid`, gauges also `institute` (the holder's,
//! empty when no job holds it). Counters have no `institute`: a counter whose
//! labels changed with the holder would start again as a new series.

use super::families::{Family, Labels};
use crate::api::cluster::{ClusterView, GpuView};
use crate::live::Live;

/// A GPU gauge: name, help, and how to read it off a GPU.
type Gauge = (&'static str, &'static str, fn(&GpuView) -> Option<f64>);

const GPU_GAUGES: &[Gauge] = &[
    (
        "jazari_gpu_utilization_ratio",
        "NVML GPU utilisation: the share of time a kernel ran (not how much of the GPU it used), 0-1",
        |g| g.gpu.util_gpu_pct.map(|u| u as f64 / 100.0),
    ),
    (
        "jazari_gpu_sm_active_ratio",
        "SM activity (NVML GPM, Hopper and later): the share of time the SMs had work, averaged over SMs, 0-1",
        |g| g.gpu.gpm.as_ref()?.sm_active_pct.map(|p| p / 100.0),
    ),
    ("jazari_gpu_memory_used_bytes", "GPU memory used", |g| g.gpu.mem_used_bytes.map(|v| v as f64)),
    ("jazari_gpu_memory_total_bytes", "GPU memory in all", |g| g.gpu.mem_total_bytes.map(|v| v as f64)),
    ("jazari_gpu_temperature_celsius", "GPU temperature", |g| g.gpu.temperature_c.map(|v| v as f64)),
    ("jazari_gpu_power_watts", "GPU power draw", |g| g.gpu.power_mw.map(|v| v as f64 / 1000.0)),
    ("jazari_gpu_power_limit_watts", "GPU power limit", |g| g.gpu.power_limit_mw.map(|v| v as f64 / 1000.0)),
    ("jazari_gpu_sm_clock_hertz", "SM clock", |g| g.gpu.sm_clock_mhz.map(|v| v as f64 * 1e6)),
    ("jazari_gpu_memory_clock_hertz", "Memory clock", |g| g.gpu.mem_clock_mhz.map(|v| v as f64 * 1e6)),
    ("jazari_gpu_allocated", "1 while a job holds the GPU (the scheduler's word where it answers)", |g| {
        Some(flag(g.allocated_to.is_some()))
    }),
    (
        "jazari_gpu_idle_allocated",
        "1 while a job holds the GPU and its utilisation is at or under ingest.idle_threshold_pct",
        |g| Some(flag(g.idle_allocated)),
    ),
    (
        "jazari_gpu_unhealthy",
        "1 while the GPU is lost or in error, has uncorrected ECC errors, or had an XID event recently",
        |g| Some(flag(g.unhealthy)),
    ),
];

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn labels(cluster: &str, node: &str, gpu: Option<u32>, uuid: &str) -> Labels {
    vec![
        ("cluster", cluster.to_string()),
        ("node", node.to_string()),
        ("gpu", gpu.map(|i| i.to_string()).unwrap_or_default()),
        ("uuid", uuid.to_string()),
    ]
}

/// The families of live state: `view` for every reader, `live` for the counters.
pub fn families(view: &ClusterView, live: &Live) -> Vec<Family> {
    let c = view.cluster.as_str();
    let s = &view.summary;
    let cluster = || vec![("cluster", c.to_string())];
    let mut out = vec![];
    let mut nodes = Family::gauge("jazari_nodes", "Nodes known to the collector");
    nodes.add(cluster(), s.nodes as f64);
    let mut reporting = Family::gauge("jazari_nodes_reporting", "Nodes that reported recently");
    reporting.add(cluster(), s.nodes_reporting as f64);
    let mut gpus = Family::gauge("jazari_gpus", "GPUs by state (all GPUs, then those of reporting nodes)");
    for (state, n) in [
        ("total", s.gpus),
        ("allocated", s.gpus_allocated),
        ("busy", s.gpus_busy),
        ("idle_allocated", s.gpus_idle_allocated),
        ("unscheduled", s.gpus_unscheduled),
        ("unhealthy", s.gpus_unhealthy),
    ] {
        let mut l = cluster();
        l.push(("state", state.into()));
        gpus.add(l, n as f64);
    }
    out.extend([nodes, reporting, gpus]);

    let mut last = Family::gauge(
        "jazari_node_last_report_timestamp_seconds",
        "When the collector last took in a report of the node (Unix time)",
    );
    let mut gauges: Vec<Family> = GPU_GAUGES.iter().map(|(name, help, _)| Family::gauge(name, help)).collect();
    let mut ecc = Family::counter(
        "jazari_gpu_ecc_errors",
        "ECC errors as NVML counts them (scope volatile: since the driver loaded; aggregate: the GPU's lifetime)",
    );
    for n in &view.nodes {
        let mut l = cluster();
        l.push(("node", n.name.clone()));
        last.add(l, n.last_seen_ms as f64 / 1000.0);
        for g in &n.gpus {
            let uuid = g.gpu.uuid.as_deref().unwrap_or("");
            if let Some(e) = &g.gpu.ecc {
                for (error, scope, v) in [
                    ("corrected", "volatile", e.volatile_corrected),
                    ("uncorrected", "volatile", e.volatile_uncorrected),
                    ("corrected", "aggregate", e.aggregate_corrected),
                    ("uncorrected", "aggregate", e.aggregate_uncorrected),
                ] {
                    if let Some(v) = v {
                        let mut l = labels(c, &n.name, Some(g.gpu.index), uuid);
                        l.extend([("error", error.to_string()), ("scope", scope.to_string())]);
                        ecc.add(l, v as f64);
                    }
                }
            }
            if n.stale {
                continue;
            }
            let institute = g.allocated_to.as_ref().map(|a| a.institute.clone()).unwrap_or_default();
            for (fam, (_, _, read)) in gauges.iter_mut().zip(GPU_GAUGES) {
                if let Some(v) = read(g) {
                    let mut l = labels(c, &n.name, Some(g.gpu.index), uuid);
                    l.push(("institute", institute.clone()));
                    fam.add(l, v);
                }
            }
        }
    }
    out.push(last);
    out.extend(gauges);
    out.push(ecc);
    out.extend(counters(c, live));
    out
}

/// Energy and XID events per GPU since the collector started; reports that overlapped charged time.
fn counters(cluster: &str, live: &Live) -> Vec<Family> {
    let mut energy = Family::counter(
        "jazari_gpu_energy_joules",
        "Energy the GPU used in the time its reports covered since the collector started \
         (NVML's energy counter where the GPU has one, else power x time)",
    );
    let mut xid = Family::counter("jazari_gpu_xid_events", "XID events reported since the collector started, by code");
    for (node, c) in &live.counters {
        for (uuid, g) in &c.gpus {
            energy.add(labels(cluster, node, Some(g.index), uuid), g.energy_j);
            for (code, n) in &g.xid {
                let mut l = labels(cluster, node, Some(g.index), uuid);
                l.push(("xid", code.to_string()));
                xid.add(l, *n as f64);
            }
        }
        for (code, n) in &c.xid_without_gpu {
            let mut l = labels(cluster, node, None, "");
            l.push(("xid", code.to_string()));
            xid.add(l, *n as f64);
        }
    }
    let reports: u64 = live.overlaps.values().map(|o| o.reports).sum();
    let seconds: f64 = live.overlaps.values().map(|o| o.seconds).sum();
    vec![
        energy,
        xid,
        Family::counter(
            "jazari_overlapping_reports",
            "Reports for time already charged (only their new time was charged)",
        )
        .with(reports as f64),
        Family::counter("jazari_overlap_seconds", "GPU- and node-seconds reported again and not charged again")
            .with(seconds),
    ]
}
