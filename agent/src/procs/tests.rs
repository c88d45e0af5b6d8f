//! Attribution from real and hand-made process tables.
use super::*;

#[test]
fn cgroup_v1_slurm() {
    let text = "12:memory:/slurm/uid_1000/job_4711/step_0/task_0\n11:devices:/slurm/uid_1000/job_4711/step_0\n1:name=systemd:/system.slice/slurmd.service\n";
    assert_eq!(parse_cgroup(text).slurm_job.as_deref(), Some("4711"));
}

#[test]
fn cgroup_v1_multiple_slurmd() {
    let f = parse_cgroup_path("/slurm_node07/uid_2001/job_99/step_batch/task_0");
    assert_eq!(f.slurm_job.as_deref(), Some("99"));
}

#[test]
fn cgroup_v2_slurm() {
    let f = parse_cgroup("0::/system.slice/slurmstepd.scope/job_1234567/step_0/user/task_0\n");
    assert_eq!(f.slurm_job.as_deref(), Some("1234567"));
    assert_eq!(f.pod_uid, None);
}

#[test]
fn cgroup_v2_multiple_slurmd() {
    let f = parse_cgroup("0::/system.slice/gpu12_slurmstepd.scope/job_42/step_extern/user/task_special\n");
    assert_eq!(f.slurm_job.as_deref(), Some("42"));
}

#[test]
fn cgroup_v2_sluid() {
    let f = parse_cgroup("0::/system.slice/slurmstepd.scope/s0B8K2M4N6P8R1/step_0/user/task_0\n");
    assert_eq!(f.slurm_job.as_deref(), Some("s0B8K2M4N6P8R1"));
    let f = parse_cgroup("0::/system.slice/slurmstepd.scope/job_s0B8K2M4N6P8R1/step_0/user/task_0\n");
    assert_eq!(f.slurm_job.as_deref(), Some("s0B8K2M4N6P8R1"));
    // Not a SLUID: wrong length, lower case.
    assert!(!is_sluid("s0b8k2m4n6p8r1"));
    assert!(!is_sluid("s0B8K2"));
}

#[test]
fn cgroup_outside_slurm_is_no_job() {
    assert_eq!(parse_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n"), CgroupFacts::default());
    // A job_ folder not under Slurm is someone else's.
    assert_eq!(parse_cgroup_path("/system.slice/cron.service/job_12").slurm_job, None);
}

#[test]
fn kubernetes_systemd_burstable() {
    let f = parse_cgroup(
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f2e3d4c_5b6a_4789_8abc_def012345678.slice/cri-containerd-0123abcd.scope\n",
    );
    assert_eq!(f.pod_uid.as_deref(), Some("1f2e3d4c-5b6a-4789-8abc-def012345678"));
    assert_eq!(f.slurm_job, None);
}

#[test]
fn kubernetes_systemd_guaranteed_crio() {
    let f = parse_cgroup_path("/kubepods.slice/kubepods-pod0a1b2c3d_0000_4000_8000_00000000abcd.slice/crio-77aa.scope");
    assert_eq!(f.pod_uid.as_deref(), Some("0a1b2c3d-0000-4000-8000-00000000abcd"));
}

#[test]
fn kubernetes_cgroupfs() {
    let f = parse_cgroup_path("/kubepods/besteffort/pod9a8b7c6d-1111-4222-8333-444455556666/c0ffee");
    assert_eq!(f.pod_uid.as_deref(), Some("9a8b7c6d-1111-4222-8333-444455556666"));
    let f = parse_cgroup_path("/kubepods/pod9a8b7c6d-1111-4222-8333-444455556666/c0ffee");
    assert_eq!(f.pod_uid.as_deref(), Some("9a8b7c6d-1111-4222-8333-444455556666"));
}

#[test]
fn environ_slurm_variables() {
    let env = parse_environ(
        b"PATH=/usr/bin\0SLURM_JOB_ID=4711\0SLURM_JOB_ACCOUNT=nlp-lab\0SLURM_JOB_USER=alice\0SLURM_JOB_GPUS=0,1,4-5\0SLURM_JOB_NAME=train\0",
    );
    assert_eq!(env.job_id.as_deref(), Some("4711"));
    assert_eq!(env.account.as_deref(), Some("nlp-lab"));
    assert_eq!(env.user.as_deref(), Some("alice"));
    assert_eq!(env.gpus, Some(vec![0, 1, 4, 5]));
    assert_eq!(parse_environ(b"HOME=/root\0"), SlurmEnv::default());
    let task = parse_environ(b"SLURM_JOB_ID=7063\0SLURM_ARRAY_JOB_ID=7060\0SLURM_ARRAY_TASK_ID=1\0");
    assert_eq!((task.job_id.as_deref(), task.array.as_deref()), (Some("7063"), Some("7060_1")));
}

#[test]
fn id_lists() {
    assert_eq!(parse_id_list("3"), Some(vec![3]));
    assert_eq!(parse_id_list(""), Some(vec![]));
    assert_eq!(parse_id_list("2-1"), None);
    assert_eq!(parse_id_list("a"), None);
}

#[test]
fn stat_with_odd_command_name() {
    let s = "1234 (my (weird) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
    assert_eq!(parse_stat(s), Some((987654, false)));
    assert_eq!(parse_comm(s), Some("my (weird) cmd"));
    let k = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
    assert_eq!(parse_stat(k), Some((3, true)));
}

#[test]
fn job_id_prefers_numeric() {
    let mut p = ProcInfo::default();
    p.cgroup.slurm_job = Some("s0B8K2M4N6P8R1".into());
    assert_eq!(p.job_id(), Some("s0B8K2M4N6P8R1"));
    p.env.job_id = Some("77".into());
    assert_eq!(p.job_id(), Some("77"));
    p.cgroup.slurm_job = Some("78".into());
    assert_eq!(p.job_id(), Some("78"));
}

/// A fixture /proc tree with one process per cgroup form.
fn fixture() -> tempdir::Dir {
    let d = tempdir::Dir::new();
    let proc = |pid: u32, uid: u32, start: u64, cgroup: &str, environ: &[u8]| {
        let p = d.path().join(pid.to_string());
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            format!("{pid} (python3) S 1 {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {start} 1 1 0"),
        )
        .unwrap();
        std::fs::write(
            p.join("status"),
            format!("Name:\tpython3\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
        )
        .unwrap();
        std::fs::write(p.join("comm"), "python3\n").unwrap();
        std::fs::write(p.join("cgroup"), cgroup).unwrap();
        std::fs::write(p.join("environ"), environ).unwrap();
    };
    proc(
        100,
        0,
        10,
        "0::/system.slice/slurmstepd.scope/job_10/step_0/user/task_0\n",
        b"SLURM_JOB_ACCOUNT=nlp\0SLURM_JOB_USER=alice\0SLURM_JOB_GPUS=0,1\0",
    );
    proc(101, 0, 11, "4:cpuset:/slurm/uid_0/job_11/step_0/task_0\n", b"");
    proc(102, 0, 12, "0::/system.slice/slurmstepd.scope/s0B8K2M4N6P8R1/step_0/user/task_0\n", b"");
    proc(
        103,
        0,
        13,
        "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e3d4c_5b6a_4789_8abc_def012345678.slice/cri-containerd-1.scope\n",
        b"",
    );
    // linuxproc tracking: no job cgroup, the job is in the environment only; holds GPUs, runs nothing on them.
    proc(
        104,
        0,
        14,
        "0::/user.slice\n",
        b"SLURM_JOB_ID=14\0SLURM_JOB_ACCOUNT=vision\0SLURM_JOB_USER=bob\0SLURM_JOB_GPUS=2-3\0",
    );
    d
}

#[test]
fn scan_finds_every_form_and_caches() {
    let d = fixture();
    let mut s = ProcScanner::new(d.path());
    assert_eq!(s.scan(), ScanStats { processes: 5, read: 5 });
    assert_eq!(s.get(100).unwrap().job_id(), Some("10"));
    assert_eq!(s.get(101).unwrap().job_id(), Some("11"));
    assert_eq!(s.get(102).unwrap().job_id(), Some("s0B8K2M4N6P8R1"));
    assert_eq!(s.get(103).unwrap().cgroup.pod_uid.as_deref(), Some("1f2e3d4c-5b6a-4789-8abc-def012345678"));
    let jobs = s.jobs();
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["10", "11", "14", "s0B8K2M4N6P8R1"]);
    let j14 = &jobs[2];
    assert_eq!(j14.account.as_deref(), Some("vision"));
    assert_eq!(j14.gpu_ids, Some(vec![2, 3]));
    assert_eq!(j14.user.as_deref(), Some("bob"));
    // uid 0 resolves through passwd when the environment has no user, gid 0 through the group database.
    assert_eq!(jobs[1].user.as_deref(), Some("root"));
    assert_eq!(jobs[1].group.as_deref(), Some("root"));

    // Second scan: nothing new to read.
    assert_eq!(s.scan(), ScanStats { processes: 5, read: 0 });
    // A pid reused by a new process (new start time) is read again.
    std::fs::write(d.path().join("101/stat"), "101 (bash) S 1 101 101 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 999 1 1 0")
        .unwrap();
    std::fs::write(d.path().join("101/cgroup"), "0::/user.slice\n").unwrap();
    // Checked at once when it is a GPU process...
    assert_eq!(s.verify([100, 101]), 1);
    assert_eq!(s.get(101).unwrap().job_id(), None);
    // ...and by the periodic full check otherwise.
    std::fs::write(d.path().join("102/stat"), "102 (bash) S 1 102 102 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 998 1 1 0")
        .unwrap();
    let mut reads = 0;
    for _ in 0..ProcScanner::VERIFY_EVERY {
        reads += s.scan().read;
    }
    assert_eq!(reads, 1, "the reused pid 102 is read again once");
    // An exited process leaves the cache.
    std::fs::remove_dir_all(d.path().join("104")).unwrap();
    s.scan();
    assert!(s.get(104).is_none());
    assert!(s.jobs().iter().all(|j| j.id != "14"));
}

/// Minimal temporary directory (the agent keeps its dependency tree small).
pub(crate) mod tempdir {
    use std::path::{Path, PathBuf};
    pub struct Dir(PathBuf);
    impl Dir {
        pub fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("jazari-agent-test-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn a_scope_keeps_the_jobs_of_descendants_only() {
    let d = fixture();
    // 101 is a child of 100; the others hang off pid 1.
    std::fs::write(
        d.path().join("101/stat"),
        "101 (bash) S 100 101 101 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 11 1 1 0",
    )
    .unwrap();
    assert_eq!(parse_ppid("101 (a) b) S 100 101 101 0"), Some(100));
    let mut all = ProcScanner::new(d.path());
    all.scan();
    assert_eq!(all.jobs().len(), 4);
    let mut scoped = ProcScanner::new(d.path()).descendants_of(100);
    scoped.scan();
    let ids: Vec<String> = scoped.jobs().into_iter().map(|j| j.id).collect();
    // 100 (standing for the agent itself, which may run inside a job) is out; its child is in.
    assert_eq!(ids, ["11"]);
}

#[test]
fn on_procfs_a_listed_pid_with_its_inode_is_not_read_again() {
    let mut s = ProcScanner::new("/proc");
    assert!(s.procfs);
    let first = s.scan();
    assert!(first.read > 0 && first.read == first.processes);
    // Processes seen before are known by their /proc/PID inode: no stat read,
    // not even at the periodic full check, nor for a GPU process.
    let me = std::process::id();
    let mut reads = 0;
    for _ in 0..ProcScanner::VERIFY_EVERY {
        reads += s.scan().read;
        assert_eq!(s.verify([me]), 0);
    }
    assert!(reads < first.read, "{reads} reads after {}", first.read);
    assert!(s.get(me).is_some());
    // A new process is read.
    let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
    s.scan();
    assert!(s.get(child.id()).is_some());
    child.kill().unwrap();
    child.wait().unwrap();
    s.scan();
    assert!(s.get(child.id()).is_none());
}
