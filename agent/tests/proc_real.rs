//! Attribution through the real /proc, with real child processes started with
//! a Slurm-like environment.

use jazari_agent::procs::ProcScanner;
use std::process::{Command, Stdio};

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sleeper(env: &[(&str, &str)]) -> Kill {
    let mut c = Command::new("sleep");
    c.arg("60").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Kill(c.spawn().expect("start sleep"))
}

#[test]
fn jobs_are_found_from_real_processes_even_without_gpu_use() {
    let a = sleeper(&[
        ("SLURM_JOB_ID", "880001"),
        ("SLURM_JOB_ACCOUNT", "physics"),
        ("SLURM_JOB_USER", "erin"),
        ("SLURM_JOB_GPUS", "2,3"),
    ]);
    let b = sleeper(&[("SLURM_JOB_ID", "880001"), ("SLURM_JOB_ACCOUNT", "physics")]);
    let other = sleeper(&[("HOME", "/tmp")]);
    let mut s = ProcScanner::new("/proc");
    let first = s.scan();
    assert!(first.processes >= 3 && first.read >= 3);
    let info = s.get(a.0.id()).expect("child seen");
    assert_eq!(info.job_id(), Some("880001"));
    assert_eq!(info.uid, Some(unsafe { libc_getuid() }));
    assert_eq!(info.comm.as_deref(), Some("sleep"));
    assert_eq!(s.get(other.0.id()).unwrap().job_id(), None);
    let job = s.jobs().into_iter().find(|j| j.id == "880001").expect("job found");
    assert_eq!(job.processes, 2);
    assert_eq!(job.account.as_deref(), Some("physics"));
    assert_eq!(job.user.as_deref(), Some("erin"));
    assert_eq!(job.gpu_ids, Some(vec![2, 3]));
    // A second scan reads only what is new.
    let again = s.scan();
    assert!(again.read < first.read, "cache per (pid, start time): {again:?} after {first:?}");
    drop(b);
    drop(a);
    s.scan();
    assert!(s.jobs().iter().all(|j| j.id != "880001"), "job gone with its processes");
}

unsafe extern "C" {
    #[link_name = "getuid"]
    fn libc_getuid() -> u32;
}
