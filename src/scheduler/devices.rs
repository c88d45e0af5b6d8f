//! What Slurm's GPU indices name on a node whose GPUs are split with MIG.
//!
//! With gres.conf `AutoDetect=nvml`, Slurm's `gres/gpu` lists each MIG slice
//! as a device of its own, typed by its profile (`gpu:3g.71gb`, one per
//! slice, its files the slice's `/dev/nvidia-caps/nvidia-capN`), and the GPU
//! it is cut from not at all; a job's `IDX` is a position in that list.
//! Jazari takes the list to be the node's GPUs in order (NVML index, or minor
//! number under `gpu_index = "minor"`), each GPU in MIG mode standing for its
//! slices by GPU instance, then compute instance: the order Slurm's NVML
//! autodetection walks them. That is an assumption, so it is checked: where a
//! job's indices land on devices its gres type cannot be (a slice for
//! `gpu:h200`, a 1g slice for `gpu:3g.71gb`, a whole GPU for a MIG type, an
//! index past the list), its devices come from the agent's facts instead (the
//! slices and GPUs its processes run on) and a finding says so
//! ([`mismatch`]). A job given whole GPUs and slices on one node is such a
//! case too: Jazari keeps one gres type per job and node (the one with
//! devices). On a node without MIG slices nothing changes: an index is a
//! GPU's NVML index or minor number ([`GpuIndex::nvml_index`]).

use super::GpuIndex;
use jazari_wire::Gpu;

/// One of Slurm's GPU devices on a node: a whole GPU or a MIG slice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// A whole GPU, by NVML index.
    Gpu(u32),
    /// A MIG slice: its GPU's NVML index and its MIG UUID.
    Slice { gpu: u32, uuid: String },
}

/// Whether any GPU of the node is split into MIG slices the agent reported.
pub fn has_mig(gpus: &[Gpu]) -> bool {
    gpus.iter().any(|g| !g.mig_devices.is_empty())
}

/// The node's devices in Slurm's order under a numbering (see the module's
/// documentation): only meaningful on a node with MIG slices.
pub fn devices(gpus: &[Gpu], index: GpuIndex) -> Vec<Device> {
    let mut order: Vec<&Gpu> = gpus.iter().collect();
    if index == GpuIndex::Minor {
        order.sort_by_key(|g| (g.minor.is_none(), g.minor, g.index));
    } else {
        order.sort_by_key(|g| g.index);
    }
    let mut out = vec![];
    for g in order {
        if g.mig_devices.is_empty() {
            out.push(Device::Gpu(g.index));
            continue;
        }
        let mut slices: Vec<_> = g.mig_devices.iter().collect();
        slices.sort_by_key(|s| (s.gpu_instance_id, s.compute_instance_id));
        out.extend(slices.into_iter().map(|s| Device::Slice { gpu: g.index, uuid: s.uuid.clone() }));
    }
    out
}

/// The compute slices of a MIG gres type (`3g.71gb`, `1g.18gb+me`, or with the
/// GPU's name before it, `nvidia_h200_3g.71gb`): 3, 1; None for a whole-GPU type.
pub fn mig_compute_slices(gpu_type: &str) -> Option<u32> {
    let profile = gpu_type.rsplit(['_', ':']).next().unwrap_or(gpu_type).to_ascii_lowercase();
    let (g, rest) = profile.split_once("g.")?;
    let digits = rest.trim_end_matches("+me");
    let gb = digits.strip_suffix("gb")?;
    (gb.parse::<u32>().is_ok() || gb.parse::<f64>().is_ok()).then_some(())?;
    g.parse().ok().filter(|c| (1..=8).contains(c))
}

/// Whether a device can be one of gres type `gpu_type` (untyped: any).
fn fits(d: &Device, gpu_type: Option<&str>, gpus: &[Gpu]) -> bool {
    let Some(t) = gpu_type else { return true };
    match (d, mig_compute_slices(t)) {
        (Device::Gpu(_), wanted) => wanted.is_none(),
        (Device::Slice { .. }, None) => false,
        (Device::Slice { gpu, uuid }, Some(c)) => gpus
            .iter()
            .filter(|g| g.index == *gpu)
            .flat_map(|g| &g.mig_devices)
            .find(|s| &s.uuid == uuid)
            .is_some_and(|s| s.slices_compute.is_none_or(|x| x == c)),
    }
}

/// The devices a job's Slurm indices name on a node, or None where they do not
/// fit its gres type (then its devices are the agent's facts: [`agent_devices`]).
pub fn map_indices(idx: &[u32], gpu_type: Option<&str>, gpus: &[Gpu], index: GpuIndex) -> Option<Vec<Device>> {
    if !has_mig(gpus) {
        return Some(idx.iter().filter_map(|i| index.nvml_index(*i, gpus)).map(Device::Gpu).collect());
    }
    let list = devices(gpus, index);
    idx.iter().map(|i| list.get(*i as usize).filter(|d| fits(d, gpu_type, gpus)).cloned()).collect()
}

/// Why a job's Slurm indices cannot be taken on a node with MIG slices, in
/// words; None when they fit (or the node has no MIG slices).
pub fn mismatch(idx: &[u32], gpu_type: Option<&str>, gpus: &[Gpu], index: GpuIndex) -> Option<String> {
    if !has_mig(gpus) || map_indices(idx, gpu_type, gpus, index).is_some() {
        return None;
    }
    let list = devices(gpus, index);
    let named: Vec<String> = idx
        .iter()
        .map(|i| match list.get(*i as usize) {
            None => format!("IDX {i}: none (the node has {} GPUs and MIG slices)", list.len()),
            Some(Device::Gpu(g)) => format!("IDX {i}: GPU {g}"),
            Some(Device::Slice { gpu, uuid }) => {
                let c = gpus.iter().filter(|g| g.index == *gpu).flat_map(|g| &g.mig_devices).find(|s| &s.uuid == uuid);
                let c = c.and_then(|s| s.slices_compute).map(|c| format!("{c}g ")).unwrap_or_default();
                format!("IDX {i}: {c}slice {uuid} of GPU {gpu}")
            }
        })
        .collect();
    Some(format!(
        "Slurm's gres {} does not fit the devices its indices name here ({}), taking the GPUs and MIG slices as \
         listed by gres.conf AutoDetect=nvml (GPU by GPU, slices by GPU instance then compute instance); \
         charged where its processes run instead",
        gpu_type.map(|t| format!("gpu:{t}")).unwrap_or_else(|| "gpu".into()),
        named.join(", ")
    ))
}

/// The devices the agent sees a job's processes on: slices of GPUs in MIG
/// mode, whole GPUs otherwise.
pub fn agent_devices(gpus: &[Gpu], job: &str) -> Vec<Device> {
    let has = |ps: &[jazari_wire::Process]| ps.iter().any(|p| p.job.as_deref() == Some(job));
    let mut out = vec![];
    for g in gpus {
        if g.mig_devices.is_empty() {
            if has(&g.processes) {
                out.push(Device::Gpu(g.index));
            }
        } else {
            let on = g.mig_devices.iter().filter(|s| has(&s.processes));
            out.extend(on.map(|s| Device::Slice { gpu: g.index, uuid: s.uuid.clone() }));
        }
    }
    out
}

/// Slurm's index of a device under a numbering (what [`map_indices`] inverts).
pub fn slurm_index(d: &Device, gpus: &[Gpu], index: GpuIndex) -> Option<u32> {
    if !has_mig(gpus) {
        let Device::Gpu(i) = d else { return None };
        return match index {
            GpuIndex::Minor => gpus.iter().find(|g| g.index == *i).and_then(|g| g.minor),
            _ => Some(*i),
        };
    }
    devices(gpus, index).iter().position(|x| x == d).map(|p| p as u32)
}

#[cfg(test)]
pub(crate) mod tests;
