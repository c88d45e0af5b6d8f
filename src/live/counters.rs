//! Counters per GPU kept from the reports the collector takes in since it
//! started: energy and XID events, for `/metrics`.
//!
//! Energy counts only time after the node's newest report already taken
//! (a replayed or overlapping report adds nothing): NVML's energy counter's
//! difference where the GPU has one (exact across lost reports), else power
//! × the new time. A node's first report since the start only sets where
//! its counters begin (at 0).

use jazari_wire::{Event, EventKind, Report};
use std::collections::BTreeMap;

/// A node's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCounters {
    /// The end of the newest report counted (ms); None before the first.
    pub end_ms: Option<i64>,
    /// By GPU UUID.
    pub gpus: BTreeMap<String, GpuCounters>,
    /// XID events that named no GPU the node reported, by code.
    pub xid_without_gpu: BTreeMap<u64, u64>,
}

/// A GPU's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuCounters {
    /// The GPU's NVML index in the newest report that had it.
    pub index: u32,
    pub energy_j: f64,
    /// XID events by code.
    pub xid: BTreeMap<u64, u64>,
    /// NVML's energy counter in the newest report (mJ).
    last_energy_mj: Option<u64>,
}

impl NodeCounters {
    /// Counts the energy of a report's time after the newest report counted.
    pub fn note_report(&mut self, r: &Report) {
        let first = self.end_ms.is_none();
        let counted_until = self.end_ms.unwrap_or(i64::MIN);
        if r.interval_end_ms <= counted_until {
            return;
        }
        let new_s = (r.interval_end_ms - r.interval_start_ms.max(counted_until)) as f64 / 1000.0;
        for g in &r.gpus {
            let Some(uuid) = &g.uuid else { continue };
            let c = self.gpus.entry(uuid.clone()).or_default();
            c.index = g.index;
            if !first {
                c.energy_j += match (c.last_energy_mj, g.energy_mj) {
                    (Some(before), Some(now)) if now >= before => (now - before) as f64 / 1000.0,
                    _ => g.power_mw.map_or(0.0, |mw| mw as f64 / 1000.0 * new_s),
                };
            }
            c.last_energy_mj = g.energy_mj;
        }
        self.end_ms = Some(r.interval_end_ms);
    }

    /// Counts XID events (each once: callers pass events not taken before).
    pub fn note_events<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for e in events {
            let EventKind::Xid { code } = e.kind else { continue };
            let per_gpu = e.gpu_uuid.as_ref().and_then(|u| self.gpus.get_mut(u)).map(|g| &mut g.xid);
            *per_gpu.unwrap_or(&mut self.xid_without_gpu).entry(code).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jazari_wire::{Gpu, Host, WIRE_VERSION};

    fn report(start_s: i64, end_s: i64, energy_mj: Option<u64>, power_w: u32) -> Report {
        let gpu = Gpu {
            index: 3,
            uuid: Some("GPU-a".into()),
            energy_mj,
            power_mw: Some(power_w * 1000),
            ..Default::default()
        };
        Report {
            version: WIRE_VERSION,
            node: "n1".into(),
            instance: "i".into(),
            seq: end_s as u64,
            interval_start_ms: start_s * 1000,
            interval_end_ms: end_s * 1000,
            host: Host::default(),
            gpus: vec![gpu],
            jobs: vec![],
            events: vec![],
        }
    }

    #[test]
    fn energy_counts_new_time_once_and_never_goes_down() {
        let mut c = NodeCounters::default();
        c.note_report(&report(0, 10, None, 300));
        assert_eq!(c.gpus["GPU-a"].energy_j, 0.0, "the first report sets where the counter begins");
        c.note_report(&report(10, 20, None, 300));
        assert_eq!(c.gpus["GPU-a"].energy_j, 3000.0, "power × new time without an energy counter");
        // A replay of old time and a report half over counted time.
        c.note_report(&report(0, 10, None, 300));
        c.note_report(&report(15, 25, None, 100));
        assert_eq!(c.gpus["GPU-a"].energy_j, 3500.0);
        // NVML's counter: its difference, also across a lost report.
        c.note_report(&report(25, 35, Some(1_000_000), 100));
        assert_eq!(c.gpus["GPU-a"].energy_j, 4500.0, "no counter before: power × time");
        c.note_report(&report(45, 55, Some(5_000_000), 100));
        assert_eq!(c.gpus["GPU-a"].energy_j, 8500.0);
        // The driver reloaded (its counter restarted): power × time, never a negative step.
        c.note_report(&report(55, 65, Some(10), 200));
        assert_eq!(c.gpus["GPU-a"].energy_j, 10500.0);
        assert_eq!(c.gpus["GPU-a"].index, 3);
    }

    #[test]
    fn xid_events_count_per_gpu_and_code() {
        let mut c = NodeCounters::default();
        c.note_report(&report(0, 10, None, 300));
        let xid = |uuid: Option<&str>, code| Event {
            time_ms: 1,
            gpu_uuid: uuid.map(str::to_string),
            kind: EventKind::Xid { code },
        };
        let lost = Event { time_ms: 2, gpu_uuid: Some("GPU-a".into()), kind: EventKind::GpuLost };
        c.note_events(&[xid(Some("GPU-a"), 79), xid(Some("GPU-a"), 79), xid(Some("GPU-z"), 48), lost]);
        assert_eq!(c.gpus["GPU-a"].xid, BTreeMap::from([(79, 2)]));
        assert_eq!(c.xid_without_gpu, BTreeMap::from([(48, 1)]));
    }
}
