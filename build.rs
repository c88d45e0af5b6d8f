//! Records the commit this build is made from, for `jazari --version`.

include!("build-support/commit.rs");

fn main() {
    record_commit("JAZARI_COMMIT", ".git");
}
