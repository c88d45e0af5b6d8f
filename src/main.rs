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
    jazari::cli::main(|| {
        // The dashboard builds and drops the same few large views every
        // refresh. Handed back to the kernel after mimalloc's delay (1 s),
        // their pages came back as faults and were zeroed again each time:
        // a fifth of `jazari top`'s CPU at a 2 s refresh over 1,000 nodes.
        // It keeps them instead (its peak stays its size).
        // SAFETY: a tunable set before the dashboard's threads start; the symbol is mimalloc's.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
        // Where the kernel backs mimalloc's arenas with transparent huge
        // pages, every new 2 MiB of them is zeroed whole at the first touch:
        // another fifth of the dashboard's CPU. Small pages are zeroed only
        // as they are used.
        // SAFETY: prctl with integer arguments only; it changes this process's memory policy.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    })
}
