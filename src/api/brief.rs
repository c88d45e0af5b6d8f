//! `?brief=true`: the cluster view and the jobs as the dashboard's lists
//! show them, about half the bytes. Each kept field means what it
//! means in the whole view; what a list never shows is left out:
//!
//! - a node keeps its name, staleness, `last_seen_ms`, `age_s`, `jobs` and
//!   `host.gpu_source`; the rest of `host` and its `events` are left out;
//! - a GPU keeps `index`, `uuid`, `health`, `util_gpu_pct`, memory used and
//!   total, `temperature_c`, `power_mw`, `mig_enabled`, SM active of `gpm`,
//!   its MIG slices (their size, memory and SM active) and the view's own
//!   fields (`allocated_to`, `idle_allocated`, `unhealthy`,
//!   `mig_allocated`); a process keeps its `pid` and `job`;
//! - a job keeps everything but its `gpus` (`gpu_count`, the means and
//!   `idle_gpus` are over all of them).
//!
//! A drill-down asks for the whole node (`/api/v1/nodes/{node}`) or the
//! whole job (`/api/v1/jobs?id=`).

use super::cluster::{GpuView, JobView, NodeView};
use jazari_wire::{Gpm, Host, MigDevice, Process};

fn process(p: &mut Process) {
    *p = Process { pid: p.pid, job: p.job.take(), ..Default::default() };
}

fn gpm(g: &mut Option<Gpm>) {
    *g = g.take().and_then(|m| m.sm_active_pct).map(|v| Gpm { sm_active_pct: Some(v), ..Default::default() });
}

fn slice(s: &mut MigDevice) {
    s.gpu_instance_id = None;
    s.compute_instance_id = None;
    s.processes.iter_mut().for_each(process);
    gpm(&mut s.gpm);
}

fn gpu(v: &mut GpuView) {
    let g = &mut v.gpu;
    g.pci_bus_id = None;
    g.minor = None;
    g.name = None;
    g.util_mem_pct = None;
    g.power_limit_mw = None;
    g.energy_mj = None;
    g.sm_clock_mhz = None;
    g.mem_clock_mhz = None;
    g.fan_pct = None;
    g.ecc_enabled = None;
    g.ecc = None;
    g.throttle_reasons = None;
    g.processes.iter_mut().for_each(process);
    gpm(&mut g.gpm);
    g.mig_devices.iter_mut().for_each(slice);
}

/// The node as a list shows it.
pub fn node(n: &mut NodeView) {
    n.host = Host { gpu_source: std::mem::take(&mut n.host.gpu_source), ..Default::default() };
    n.events = vec![];
    n.gpus.iter_mut().for_each(gpu);
}

/// The job as a list shows it.
pub fn job(j: &mut JobView) {
    j.gpus = vec![];
}
