//! Host facts through sysinfo, plus the boot id from the kernel.

use jazari_wire::Host;
use std::time::Instant;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// Reads CPU, memory, load and uptime. CPU use is measured between two
/// refreshes, so the first read after [`HostProbe::new`] waits until
/// sysinfo's minimum interval has passed.
pub struct HostProbe {
    sys: System,
    last_cpu: Instant,
    kernel: Option<String>,
    boot_id: Option<String>,
}

impl Default for HostProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl HostProbe {
    pub fn new() -> Self {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        Self {
            sys,
            last_cpu: Instant::now(),
            kernel: System::kernel_version(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string()),
        }
    }

    /// Waits, if needed, so that the next read has a CPU measurement.
    pub fn settle(&self) {
        let min = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
        if let Some(rest) = min.checked_sub(self.last_cpu.elapsed()) {
            std::thread::sleep(rest);
        }
    }

    pub fn read(&mut self) -> Host {
        self.sys.refresh_cpu_usage();
        self.last_cpu = Instant::now();
        self.sys.refresh_memory();
        let load = System::load_average();
        let cpus = self.sys.cpus().len() as u32;
        Host {
            cpu_percent: (cpus > 0).then(|| self.sys.global_cpu_usage() as f64),
            cpu_count: (cpus > 0).then_some(cpus),
            load: Some([load.one, load.five, load.fifteen]),
            mem_used_bytes: Some(self.sys.used_memory()),
            mem_total_bytes: Some(self.sys.total_memory()),
            uptime_s: Some(System::uptime()),
            boot_id: self.boot_id.clone(),
            kernel: self.kernel.clone(),
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            ..Default::default()
        }
    }
}

/// The node name: the host name without its domain.
pub fn node_name() -> String {
    System::host_name()
        .map(|h| h.split('.').next().unwrap_or(&h).to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
