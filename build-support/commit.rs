// The commit a build is made from (short hash, or "unknown" outside git), and
// the git files that change when HEAD moves, for `cargo:rerun-if-changed`.
// Included by the build scripts of jazari and jazari-agent.

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Sets `env` to the commit and reruns the build script when HEAD moves
/// (`git_dir` relative to the crate).
fn record_commit(env: &str, git_dir: &str) {
    println!("cargo:rustc-env={env}={}", commit());
    for f in ["HEAD", "refs/heads", "packed-refs"] {
        let p = format!("{git_dir}/{f}");
        if std::path::Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
