//! `jazari`: collector, dashboard, quotas and reports. Each part lives in its own module.

fn main() {
    eprintln!("jazari: the collector and its clients are not built yet; see README.md");
    std::process::exit(2);
}
