//! MIG devices (slices) of a GPU in MIG mode.
//!
//! NVML numbers a GPU's MIG devices from 0 to `nvmlDeviceGetMaxMigDeviceCount`
//! (7 on A100, H100, H200); a slot without a device, or one that fails, is
//! skipped. Each MIG device is a compute instance inside a GPU instance; it
//! answers its own UUID (`MIG-…`), memory and compute processes. What cannot
//! change while the compute instance exists (its instance ids and slices) is
//! read once per UUID: a repartitioned GPU has new MIG UUIDs.

use super::{Lost, process_of};
use jazari_wire::MigDevice;
use nvml_wrapper::Device;
use nvml_wrapper::error::{NvmlError, nvml_try};
use std::collections::HashMap;

const MIB: u64 = 1024 * 1024;

/// Unwraps an NVML answer: a lost GPU stops the read, anything else leaves the value absent.
fn opt<T>(r: Result<T, NvmlError>) -> Result<Option<T>, Lost> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(NvmlError::GpuLost) => Err(Lost),
        Err(_) => Ok(None),
    }
}

/// What does not change while a MIG device exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facts {
    gpu_instance_id: Option<u32>,
    compute_instance_id: Option<u32>,
    slices_compute: Option<u32>,
    slices_memory: Option<u32>,
}

/// [`Facts`] per GPU index and MIG UUID, from the previous read.
#[derive(Debug, Default)]
pub struct MigCache(HashMap<u32, HashMap<String, Facts>>);

impl MigCache {
    /// Forgets a GPU's MIG devices (it left MIG mode or was lost).
    pub fn forget(&mut self, index: u32) {
        self.0.remove(&index);
    }
}

/// The MIG devices of GPU `index` (in MIG mode) whose UUID NVML answers.
/// `gpu_mem_total` is the GPU's memory, from which memory slices are counted.
pub fn read(
    device: &Device<'static>,
    index: u32,
    gpu_mem_total: Option<u64>,
    cache: &mut MigCache,
) -> Result<Vec<MigDevice>, Lost> {
    let known = cache.0.remove(&index).unwrap_or_default();
    let Some(max) = opt(device.mig_device_count())? else { return Ok(Vec::new()) };
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    for i in 0..max {
        let Some(mig) = opt(device.mig_device_by_index(i))? else { continue };
        let Some(uuid) = opt(mig.uuid())? else { continue };
        let f = match known.get(&uuid) {
            Some(f) => *f,
            None => facts(&mig, gpu_mem_total, memory_slices_of(max))?,
        };
        // Kept only when NVML answered all of it; asked again otherwise.
        if f.gpu_instance_id.is_some() && f.compute_instance_id.is_some() && f.slices_compute.is_some() {
            seen.insert(uuid.clone(), f);
        }
        let mut d = MigDevice {
            uuid,
            gpu_instance_id: f.gpu_instance_id,
            compute_instance_id: f.compute_instance_id,
            slices_compute: f.slices_compute,
            slices_memory: f.slices_memory,
            ..Default::default()
        };
        if let Some(m) = opt(mig.memory_info())? {
            d.mem_used_bytes = Some(m.used);
            d.mem_total_bytes = Some(m.total);
        }
        if let Some(procs) = opt(mig.running_compute_processes())? {
            d.processes = procs.into_iter().map(process_of).collect();
        }
        out.push(d);
    }
    cache.0.insert(index, seen);
    Ok(out)
}

fn facts(mig: &Device<'static>, gpu_mem_total: Option<u64>, memory_slices: u32) -> Result<Facts, Lost> {
    let mut f = Facts {
        gpu_instance_id: instance_id(mig, Instance::Gpu)?,
        compute_instance_id: instance_id(mig, Instance::Compute)?,
        slices_compute: None,
        slices_memory: None,
    };
    if let Some(a) = opt(mig.attributes())? {
        // The compute slices of the compute instance: all of its GPU
        // instance's unless it was split (a 1c.3g compute instance holds 1
        // of the 3); an H200 has 7 in all, so 1g, 2g, 3g, 4g, 7g hold 1, 2,
        // 3, 4, 7 of 7.
        f.slices_compute = [a.compute_instance_slice_count, a.gpu_instance_slice_count].into_iter().find(|&n| n > 0);
        f.slices_memory = gpu_mem_total.and_then(|t| slices_of_memory(a.memory_size_mb, t, memory_slices));
    }
    Ok(f)
}

/// GPU instance ids of the GPU's MIG devices (the keys of MIG GPM samples).
pub fn gpu_instance_ids(device: &Device<'static>) -> Result<Vec<u32>, Lost> {
    let Some(max) = opt(device.mig_device_count())? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for i in 0..max {
        let Some(mig) = opt(device.mig_device_by_index(i))? else { continue };
        out.extend(instance_id(&mig, Instance::Gpu)?);
    }
    Ok(out)
}

/// How many memory slices the GPU has: 8 on the GPUs that take up to 7 MIG
/// devices (A100, H100, H200, B200), as many as MIG devices on smaller ones
/// (A30: 4 and 4).
fn memory_slices_of(max_mig_devices: u32) -> u32 {
    if max_mig_devices >= 7 { 8 } else { max_mig_devices }
}

/// Memory slices a MIG device holds, from its memory (`memorySizeMB` of
/// `nvmlDeviceGetAttributes_v2`, MiB) against the whole GPU's.
///
/// NVML gives no memory-slice count, but a GPU instance of n memory slices
/// has a little less than n/8 of the memory (what the firmware keeps per
/// instance is well under one slice): an H200's 1g.18gb holds 16384 of
/// 144384 MiB, 0.91 of a slice; its 3g.71gb about 66560, 3.7 slices. So the
/// count is that ratio rounded up: 1g → 1/8, 2g → 2/8, 3g and 4g → 4/8,
/// 7g → 8/8, as in NVIDIA's H200 profile table.
fn slices_of_memory(memory_mb: u64, gpu_total_bytes: u64, slices: u32) -> Option<u32> {
    if memory_mb == 0 || gpu_total_bytes == 0 || slices == 0 {
        return None;
    }
    let share = (memory_mb * MIB) as f64 * slices as f64 / gpu_total_bytes as f64;
    // A hair under a whole number is that number (rounding of MiB sizes).
    Some(((share - 0.02).ceil() as u32).clamp(1, slices))
}

enum Instance {
    Gpu,
    Compute,
}

/// The GPU or compute instance id of a MIG device. nvml-wrapper 0.13 has no
/// wrapper for `nvmlDeviceGetGpuInstanceId` / `nvmlDeviceGetComputeInstanceId`,
/// so they are called through its loaded symbol table.
fn instance_id(mig: &Device<'static>, which: Instance) -> Result<Option<u32>, Lost> {
    let lib = mig.nvml().lib();
    let sym = match which {
        Instance::Gpu => lib.nvmlDeviceGetGpuInstanceId.as_ref(),
        Instance::Compute => lib.nvmlDeviceGetComputeInstanceId.as_ref(),
    };
    let Ok(sym) = sym else { return Ok(None) };
    let mut id: u32 = 0;
    // SAFETY: the handle comes from nvmlDeviceGetMigDeviceHandleByIndex of the
    // same library, and `id` outlives the call, which only writes it.
    let rc = unsafe { sym(mig.handle(), &mut id) };
    opt(nvml_try(rc).map(|()| id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_slices_of_the_h200_profiles() {
        let total = 144384 * MIB;
        // 1g.18gb, 1g.35gb / 2g.35gb, 3g.71gb / 4g.71gb, 7g.141gb
        for (mib, want) in [(16384, 1), (33280, 2), (66560, 4), (143360, 8)] {
            assert_eq!(slices_of_memory(mib, total, 8), Some(want), "{mib} MiB");
        }
        // Exactly two slices of memory is two, not three.
        assert_eq!(slices_of_memory(144384 / 4, total, 8), Some(2));
        assert_eq!(slices_of_memory(0, total, 8), None);
        assert_eq!(memory_slices_of(7), 8);
        assert_eq!(memory_slices_of(4), 4);
    }
}
