//! Records the commit this build is made from, for `jazari-agent --version`
//! and the start-up line; links the agent with packed relative relocations.

include!("../build-support/commit.rs");

fn main() {
    record_commit("JAZARI_AGENT_COMMIT", "../.git");
    // Relative relocations packed (DT_RELR, glibc 2.36+; an older linker
    // warns and ignores it): the position-independent agent's relocation
    // table shrinks from about 230 KiB, read whole at every start, to a few
    // KiB: about 0.4 MiB less resident on every node (BENCHMARKS.md).
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
