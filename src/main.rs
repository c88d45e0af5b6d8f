//! `jazari`: collector, dashboard, quotas and reports. The commands live in
//! `jazari::cli`; this file only starts them.

// The collector decodes many small JSON objects per report: mimalloc keeps
// allocation off the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's `mi_option_set` (mimalloc.h), from the allocator above.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (v2 and v3 alike).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() -> std::process::ExitCode {
    // Memory freed stays the process's for 10 s (mimalloc's default: 1 s)
    // before it goes back to the kernel. The dashboard and the collector
    // build and drop the same large answers every few seconds; given back
    // each time, every page came again as a fault and was zeroed by the
    // kernel: a quarter of `jazari top`'s CPU at a 2 s refresh over 1,000 nodes.
    // SAFETY: sets a tunable before any other thread runs; the symbol is mimalloc's.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    jazari::cli::main()
}
