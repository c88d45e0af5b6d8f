//! Any text: parsing a duration never panics or overflows.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = jazari_wire::duration::parse(s);
    }
});
