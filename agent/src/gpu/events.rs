//! XID events: a background thread waits on an NVML event set.

use jazari_wire::{Event, EventKind};
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use std::sync::mpsc;

/// Background thread: waits on an NVML event set for XID errors on every GPU.
pub(super) fn xid_events(nvml: &'static Nvml, tx: mpsc::Sender<Event>) {
    let count = nvml.device_count().unwrap_or(0);
    let mut skip: Vec<u32> = Vec::new();
    // Registration failure frees the set (NVML's rule), so start over without
    // the GPU that refused.
    let set = 'register: loop {
        let mut set = match nvml.create_event_set() {
            Ok(s) => s,
            Err(e) => {
                tracing::info!("no XID events: cannot create an NVML event set: {e}");
                return;
            }
        };
        let mut registered = 0;
        for index in (0..count).filter(|i| !skip.contains(i)) {
            let Ok(device) = nvml.device_by_index(index) else { continue };
            match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
                Ok(s) => {
                    set = s;
                    registered += 1;
                }
                Err(e) => {
                    tracing::info!(index, "GPU does not deliver XID events: {}", e.error);
                    skip.push(index);
                    continue 'register;
                }
            }
        }
        if registered == 0 {
            return;
        }
        break set;
    };
    loop {
        match set.wait(1000) {
            Ok(data) => {
                let code = match data.event_data {
                    Some(XidError::Value(v)) => v,
                    _ => continue,
                };
                let uuid = data.device.uuid().ok();
                tracing::warn!(code, uuid = uuid.as_deref().unwrap_or("unknown"), "XID error");
                let ev = Event { time_ms: jazari_wire::now_ms(), gpu_uuid: uuid, kind: EventKind::Xid { code } };
                if tx.send(ev).is_err() {
                    return;
                }
            }
            Err(NvmlError::Timeout) => {}
            Err(e) => {
                tracing::warn!("NVML event wait failed: {e}; retrying in 5 s");
                std::thread::sleep(std::time::Duration::from_secs(5));
            }
        }
    }
}
