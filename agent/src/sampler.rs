//! One sample of the node: GPUs, host and jobs, attributed and numbered.

use crate::gpu::{GpuSource, NvmlSource};
use crate::host::HostProbe;
use crate::procs::ProcScanner;
use jazari_wire::{GpuSourceState, Job, Report, WIRE_VERSION};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// How to build a [`Sampler`].
#[derive(Debug, Clone)]
pub struct SamplerOptions {
    pub node: String,
    /// NVML library path; `None` for the system default.
    pub nvml_lib: Option<OsString>,
    /// Root of the process table, `/proc` on a real node.
    pub proc_root: PathBuf,
    /// Nominal interval: the first report of an instance covers this much.
    pub interval: Duration,
    /// When the previous run's last report ended (from the spool folder): a
    /// first report that would reach back before it starts there instead, so
    /// a restart neither overlaps the previous run nor leaves a hole.
    pub resume_from_ms: Option<i64>,
    /// Find jobs only among the agent's own descendants (`--proc-scope descendants`).
    pub own_descendants_only: bool,
}

/// Produces numbered reports for one agent instance.
pub struct Sampler {
    node: String,
    instance: String,
    seq: u64,
    interval: Duration,
    last_end_ms: Option<i64>,
    resume_from_ms: Option<i64>,
    gpus: Option<Box<dyn GpuSource>>,
    gpu_state: GpuSourceState,
    host: HostProbe,
    procs: ProcScanner,
}

impl Sampler {
    /// Opens NVML once. A node without NVML or without GPUs still reports its
    /// host; that is logged here, once.
    pub fn new(opts: SamplerOptions) -> Self {
        let host = HostProbe::new();
        let (gpus, gpu_state): (Option<Box<dyn GpuSource>>, _) = match NvmlSource::open(opts.nvml_lib.as_deref()) {
            Ok(src) => {
                let n = src.count();
                if n == 0 {
                    tracing::warn!("NVML reports no GPU on this node: reporting the host only");
                    (Some(Box::new(src)), GpuSourceState::NoGpus)
                } else {
                    tracing::info!(gpus = n, "NVML ready");
                    (Some(Box::new(src)), GpuSourceState::Ok)
                }
            }
            Err(e) => {
                tracing::warn!("NVML unavailable ({e}): reporting the host only");
                (None, GpuSourceState::Unavailable(e.0))
            }
        };
        Self::with_source(opts, gpus, gpu_state, host)
    }

    /// Builds a sampler over a given GPU source (tests, benchmarks, simulation).
    pub fn with_source(
        opts: SamplerOptions,
        gpus: Option<Box<dyn GpuSource>>,
        gpu_state: GpuSourceState,
        host: HostProbe,
    ) -> Self {
        Self {
            node: opts.node,
            instance: new_instance_id(),
            seq: 0,
            interval: opts.interval,
            last_end_ms: None,
            resume_from_ms: opts.resume_from_ms,
            gpus,
            gpu_state,
            host,
            procs: if opts.own_descendants_only {
                ProcScanner::new(opts.proc_root).descendants_of(std::process::id())
            } else {
                ProcScanner::new(opts.proc_root)
            },
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Prepares a first sample that has every value: takes the GPUs' GPM
    /// baselines, then waits, if needed, until the host probe can measure
    /// CPU use and GPM can be computed (`once` calls it; `run` does not
    /// need it, its first report only takes the baselines).
    pub fn settle(&mut self) {
        let wait = self.gpus.as_mut().map(|g| g.prime()).unwrap_or_default();
        let primed = std::time::Instant::now();
        self.host.settle();
        if let Some(rest) = wait.checked_sub(primed.elapsed()) {
            std::thread::sleep(rest);
        }
    }

    /// Takes one sample. The report covers the time since the previous one
    /// (the nominal interval for the first).
    pub fn sample(&mut self) -> Report {
        let end = jazari_wire::now_ms();
        let nominal = end - self.interval.as_millis() as i64;
        let first = match self.resume_from_ms.take() {
            // The previous run ended within one interval: continue where it stopped.
            Some(prev) if prev > nominal && prev <= end => prev,
            _ => nominal,
        };
        let start = self.last_end_ms.unwrap_or(first).min(end);
        self.last_end_ms = Some(end);
        let mut report = self.sample_at(start, end);
        report.seq = self.seq;
        self.seq += 1;
        report
    }

    fn sample_at(&mut self, start: i64, end: i64) -> Report {
        let mut host = self.host.read();
        host.gpu_source = self.gpu_state.clone();
        let read = self.gpus.as_mut().map(|g| g.read(end)).unwrap_or_default();
        if let Some(g) = &self.gpus {
            host.driver_version = g.driver_version();
            host.cuda_version = g.cuda_version();
        }
        self.procs.scan();
        // Each GPU process once: in MIG mode a slice's processes are also the GPU's.
        let mut pids: Vec<u32> = read
            .gpus
            .iter()
            .flat_map(|g| g.processes.iter().chain(g.mig_devices.iter().flat_map(|d| &d.processes)))
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        self.procs.verify(pids);
        let jobs = self.procs.jobs();
        let mut gpus = read.gpus;
        attribute(&mut self.procs, &jobs, &mut gpus);
        Report {
            version: WIRE_VERSION,
            node: self.node.clone(),
            instance: self.instance.clone(),
            seq: 0,
            interval_start_ms: start,
            interval_end_ms: end,
            host,
            gpus,
            jobs,
            events: read.events,
        }
    }
}

/// Fills in owner, job and pod of every GPU process, on whole GPUs and on MIG devices alike.
fn attribute(procs: &mut ProcScanner, jobs: &[Job], gpus: &mut [jazari_wire::Gpu]) {
    let by_id: HashMap<&str, &Job> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
    let all = gpus
        .iter_mut()
        .flat_map(|g| g.processes.iter_mut().chain(g.mig_devices.iter_mut().flat_map(|d| d.processes.iter_mut())));
    for p in all {
        let Some(info) = procs.get(p.pid).cloned() else { continue };
        p.uid = info.uid;
        p.command = info.comm.clone();
        p.job = info.job_id().map(str::to_string);
        p.pod_uid = info.cgroup.pod_uid.clone();
        let job_user = p.job.as_deref().and_then(|id| by_id.get(id)).and_then(|j| j.user.clone());
        p.user = info.uid.and_then(|u| procs.user_name(u)).or(info.env.user.clone()).or(job_user);
        p.group = info.gid.and_then(|g| procs.group_name(g));
    }
}

/// A random id for this agent start (16 hex digits).
pub fn new_instance_id() -> String {
    use std::io::Read;
    let mut b = [0u8; 8];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_ok();
    if !ok {
        let t = jazari_wire::now_ms() as u64 ^ ((std::process::id() as u64) << 32);
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
