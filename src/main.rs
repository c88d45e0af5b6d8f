//! `jazari`: collector, dashboard, quotas and reports. The commands live in
//! `jazari::cli`; this file only starts them.

// The collector decodes many small JSON objects per report: mimalloc keeps
// allocation off the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    jazari::cli::main()
}
