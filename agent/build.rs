//! Records the commit this build is made from, for `jazari-agent --version`
//! and the start-up line.

include!("../build-support/commit.rs");

fn main() {
    record_commit("JAZARI_AGENT_COMMIT", "../.git");
}
