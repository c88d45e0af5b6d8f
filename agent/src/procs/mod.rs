//! Process and job attribution from `/proc`.
//!
//! For every process on the node the scanner learns, once per (pid, start
//! time): its owner, its Slurm job (from the cgroup path, v1, v2 or the SLUID
//! form, and from `SLURM_*` variables in its environment where readable) and
//! its Kubernetes pod. Jobs are built from *all* processes, so a job that holds
//! GPUs but runs nothing on them is still seen.

use jazari_wire::Job;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod names;
use names::UserNames;

/// What the cgroup path says about a process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupFacts {
    /// Slurm job id (numeric) or SLUID.
    pub slurm_job: Option<String>,
    /// Kubernetes pod UID (with dashes).
    pub pod_uid: Option<String>,
}

/// Reads a `/proc/PID/cgroup` file's text.
pub fn parse_cgroup(text: &str) -> CgroupFacts {
    let mut facts = CgroupFacts::default();
    for line in text.lines() {
        // hierarchy-ID:controllers:path; the path may itself contain ':'.
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let f = parse_cgroup_path(path);
        facts.slurm_job = facts.slurm_job.or(f.slurm_job);
        facts.pod_uid = facts.pod_uid.or(f.pod_uid);
    }
    facts
}

/// Reads one cgroup path (v1 or v2).
pub fn parse_cgroup_path(path: &str) -> CgroupFacts {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut facts = CgroupFacts::default();
    for (i, seg) in segs.iter().enumerate() {
        // v1: /slurm/uid_<uid>/job_<id>/...; v2: .../slurmstepd.scope/job_<id>/...
        if let Some(id) = seg.strip_prefix("job_") {
            let under_slurm = segs[..i]
                .iter()
                .any(|s| s.starts_with("slurm") || s.ends_with("_slurmstepd.scope") || s.starts_with("uid_"));
            if under_slurm && !id.is_empty() && (id.bytes().all(|b| b.is_ascii_digit()) || is_sluid(id)) {
                facts.slurm_job = Some(id.to_string());
            }
        } else if is_sluid(seg) && i > 0 && segs[i - 1].ends_with("slurmstepd.scope") {
            // Slurm 26.05+: the v2 job folder is the SLUID itself.
            facts.slurm_job = Some((*seg).to_string());
        }
        if facts.pod_uid.is_none() {
            facts.pod_uid = pod_uid_of(seg);
        }
    }
    facts
}

/// A Slurm SLUID: `s` followed by 13 of [0-9A-Z].
pub fn is_sluid(s: &str) -> bool {
    s.len() == 14 && s.starts_with('s') && s[1..].bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

fn pod_uid_of(seg: &str) -> Option<String> {
    // systemd driver: kubepods-<qos>-pod<uid_with_underscores>.slice or kubepods-pod<uid>.slice
    if let Some(rest) = seg.strip_prefix("kubepods-").and_then(|s| s.strip_suffix(".slice")) {
        let idx = rest.find("pod")?;
        let uid = &rest[idx + 3..];
        let uid = uid.replace('_', "-");
        return looks_like_uid(&uid).then_some(uid);
    }
    // cgroupfs driver: /kubepods/<qos>/pod<uid>/<container>
    let uid = seg.strip_prefix("pod")?;
    looks_like_uid(uid).then(|| uid.to_string())
}

fn looks_like_uid(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') && s.matches('-').count() == 4
}

/// Slurm variables from a process environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlurmEnv {
    pub job_id: Option<String>,
    pub account: Option<String>,
    pub user: Option<String>,
    pub gpus: Option<Vec<u32>>,
    /// `7060_1` from `SLURM_ARRAY_JOB_ID` and `SLURM_ARRAY_TASK_ID`.
    pub array: Option<String>,
}

/// Reads `/proc/PID/environ` (NUL-separated `KEY=value`).
pub fn parse_environ(bytes: &[u8]) -> SlurmEnv {
    let mut env = SlurmEnv::default();
    let (mut array_job, mut array_task) = (None, None);
    for entry in bytes.split(|b| *b == 0) {
        if !entry.starts_with(b"SLURM_JOB_") && !entry.starts_with(b"SLURM_ARRAY_") {
            continue;
        }
        let Ok(entry) = std::str::from_utf8(entry) else { continue };
        let Some((k, v)) = entry.split_once('=') else { continue };
        if v.is_empty() {
            continue;
        }
        match k {
            "SLURM_JOB_ID" => env.job_id = Some(v.to_string()),
            "SLURM_JOB_ACCOUNT" => env.account = Some(v.to_string()),
            "SLURM_JOB_USER" => env.user = Some(v.to_string()),
            "SLURM_JOB_GPUS" => env.gpus = parse_id_list(v),
            "SLURM_ARRAY_JOB_ID" => array_job = Some(v.to_string()),
            "SLURM_ARRAY_TASK_ID" => array_task = Some(v.to_string()),
            _ => {}
        }
    }
    if let (Some(j), Some(t)) = (array_job, array_task) {
        env.array = Some(format!("{j}_{t}"));
    }
    env
}

/// Parses "0,1,4-6" into [0, 1, 4, 5, 6].
pub fn parse_id_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// Start time (clock ticks since boot, field 22) from `/proc/PID/stat`, and
/// whether the process is a kernel thread.
pub fn parse_stat(text: &str) -> Option<(u64, bool)> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); flags is field 9, starttime field 22.
    let flags: u64 = fields.get(6)?.parse().ok()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    const PF_KTHREAD: u64 = 0x0020_0000;
    Some((start, flags & PF_KTHREAD != 0))
}

/// Command name (field 2, what `/proc/PID/comm` holds) from a `/proc/PID/stat` line.
pub fn parse_comm(text: &str) -> Option<&str> {
    text.get(text.find('(')? + 1..text.rfind(')')?)
}

/// Parent pid (field 4) from a `/proc/PID/stat` line.
pub fn parse_ppid(text: &str) -> Option<u32> {
    text[text.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// Real uid from `/proc/PID/status`.
pub fn parse_status_uid(text: &str) -> Option<u32> {
    status_field(text, "Uid:")
}

/// Real gid from `/proc/PID/status`.
pub fn parse_status_gid(text: &str) -> Option<u32> {
    status_field(text, "Gid:")
}

fn status_field(text: &str, key: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the agent knows about one process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub comm: Option<String>,
    pub cgroup: CgroupFacts,
    pub env: SlurmEnv,
}

impl ProcInfo {
    /// The job this process belongs to: the cgroup's numeric id, else the
    /// environment's, else the cgroup's SLUID.
    pub fn job_id(&self) -> Option<&str> {
        let cg = self.cgroup.slurm_job.as_deref();
        match cg {
            Some(id) if !is_sluid(id) => Some(id),
            _ => self.env.job_id.as_deref().or(cg),
        }
    }
}

/// Counters of the work a scan did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub processes: usize,
    /// Processes read in full (new pid or new start time).
    pub read: usize,
}

/// Scans a `/proc` tree, caching per (pid, start time).
///
/// A scan lists the pids (one `getdents`), reads new pids in full and keeps
/// what it knows of the others. Reading every process's start time at every
/// scan is what costs (a `/proc/PID/stat` each), so known pids are checked for
/// reuse every [`ProcScanner::VERIFY_EVERY`] scans, and GPU processes at every
/// sample through [`ProcScanner::verify`]. On the real procfs the listing
/// itself tells: the kernel drops a process's `/proc/PID` entry when the
/// process is reaped, so a pid listed with the inode number it had is the
/// same process, and only a new inode number is checked (its start time).
pub struct ProcScanner {
    root: PathBuf,
    /// Whether `root` is procfs (inode numbers of `/proc/PID` stand for processes).
    procfs: bool,
    /// With `Some(pid)`, jobs are found only among that process's descendants.
    scope: Option<u32>,
    cache: HashMap<u32, Entry>,
    users: UserNames,
    groups: UserNames,
    scans: u64,
}

struct Entry {
    start: u64,
    info: Option<Arc<ProcInfo>>,
    seen: u64,
    /// Inode number of `/proc/PID` when last listed (procfs), and the scan that found it unchanged.
    ino: u64,
    checked: u64,
}

impl ProcScanner {
    /// Full check of every known pid's start time once in this many scans.
    pub const VERIFY_EVERY: u64 = 6;

    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            procfs: is_procfs(&root),
            root,
            scope: None,
            cache: HashMap::new(),
            users: UserNames::default(),
            groups: UserNames::groups(),
            scans: 0,
        }
    }

    /// Finds jobs only among the descendants of `pid` (the agent itself: its tests,
    /// which must not see the other jobs of the host they run on).
    pub fn descendants_of(mut self, pid: u32) -> Self {
        self.scope = Some(pid);
        self
    }

    /// Whether `pid` is in scope: any pid without a scope, else a descendant of the scope's pid.
    fn in_scope(&self, pid: u32) -> bool {
        let Some(root) = self.scope else { return true };
        // The agent itself is not: started inside a job, it would report that job.
        if pid == root {
            return false;
        }
        let mut p = pid;
        for _ in 0..64 {
            if p == root {
                return true;
            }
            match self.cache.get(&p).and_then(|e| e.info.as_ref()).and_then(|i| i.ppid) {
                Some(up) if up != p && up != 0 => p = up,
                _ => return false,
            }
        }
        false
    }

    /// Rescans the process table. Returns what the scan did.
    pub fn scan(&mut self) -> ScanStats {
        let mut stats = ScanStats::default();
        let Ok(dir) = std::fs::read_dir(&self.root) else { return stats };
        self.scans += 1;
        let gen_ = self.scans;
        let verify_all = gen_ % Self::VERIFY_EVERY == 1;
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            stats.processes += 1;
            let ino = std::os::unix::fs::DirEntryExt::ino(&entry);
            if let Some(e) = self.cache.get_mut(&pid) {
                e.seen = gen_;
                if self.procfs && e.ino == ino {
                    e.checked = gen_;
                    continue;
                }
                if !verify_all && !self.procfs {
                    continue;
                }
            }
            stats.read += self.refresh(pid, gen_, ino) as usize;
        }
        self.cache.retain(|_, e| e.seen == gen_);
        stats
    }

    /// Checks that each pid is still the process the cache describes (same
    /// start time), reading it again where it is not. Returns how many were read.
    pub fn verify(&mut self, pids: impl IntoIterator<Item = u32>) -> usize {
        let gen_ = self.scans;
        let unchecked: Vec<u32> =
            pids.into_iter().filter(|p| self.cache.get(p).is_none_or(|e| e.checked != gen_)).collect();
        unchecked.into_iter().map(|pid| self.refresh(pid, gen_, 0) as usize).sum()
    }

    /// Reads a pid's start time; reads the rest when the pid is new or reused.
    /// Returns whether it read the process in full.
    fn refresh(&mut self, pid: u32, gen_: u64, ino: u64) -> bool {
        let dir = self.root.join(pid.to_string());
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            self.cache.remove(&pid); // exited meanwhile
            return false;
        };
        let Some((start, kthread)) = parse_stat(&stat) else { return false };
        if let Some(e) = self.cache.get_mut(&pid)
            && e.start == start
        {
            (e.seen, e.ino, e.checked) = (gen_, ino, gen_);
            return false;
        }
        let info = if kthread {
            None
        } else {
            let mut info = read_proc(&dir, pid);
            info.ppid = parse_ppid(&stat);
            info.comm = parse_comm(&stat).map(str::to_string);
            Some(Arc::new(info))
        };
        self.cache.insert(pid, Entry { start, info, seen: gen_, ino, checked: gen_ });
        true
    }

    /// What the last scan knows of `pid`.
    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.cache.get(&pid)?.info.as_deref()
    }

    /// User name of a uid (passwd database, cached).
    pub fn user_name(&mut self, uid: u32) -> Option<String> {
        self.users.get(uid)
    }

    /// Group name of a gid (group database, cached).
    pub fn group_name(&mut self, gid: u32) -> Option<String> {
        self.groups.get(gid)
    }

    /// The jobs with at least one process on the node.
    pub fn jobs(&mut self) -> Vec<Job> {
        let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
        let infos: Vec<Arc<ProcInfo>> =
            self.cache.values().filter_map(|e| e.info.clone()).filter(|i| self.in_scope(i.pid)).collect();
        for info in infos {
            let Some(id) = info.job_id() else { continue };
            let job = jobs.entry(id.to_string()).or_insert_with(|| Job {
                scheduler: "slurm".into(),
                id: id.to_string(),
                ..Default::default()
            });
            job.processes += 1;
            if job.account.is_none() {
                job.account = info.env.account.clone();
            }
            if job.gpu_ids.is_none() {
                job.gpu_ids = info.env.gpus.clone();
            }
            if job.array.is_none() {
                job.array = info.env.array.clone();
            }
            if job.user.is_none() {
                job.user = info.env.user.clone();
            }
            if job.uid.is_none() {
                job.uid = info.uid;
            }
            if job.group.is_none()
                && let Some(gid) = info.gid
            {
                job.group = self.groups.get(gid);
            }
        }
        let mut out: Vec<Job> = jobs.into_values().collect();
        for job in &mut out {
            if job.user.is_none()
                && let Some(uid) = job.uid
            {
                job.user = self.users.get(uid);
            }
        }
        out.sort_by(|a, b| natural_cmp(&a.id, &b.id));
        out
    }
}

fn is_procfs(root: &Path) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let Ok(c) = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()) else { return false };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statfs buffer of the right type.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == PROC_SUPER_MAGIC }
}

/// Orders numeric ids numerically, others after them as text.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

fn read_proc(dir: &Path, pid: u32) -> ProcInfo {
    let mut info = ProcInfo { pid, ..Default::default() };
    if let Ok(s) = std::fs::read_to_string(dir.join("status")) {
        info.uid = parse_status_uid(&s);
        info.gid = parse_status_gid(&s);
    }
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup")) {
        info.cgroup = parse_cgroup(&s);
    }
    // Readable for our own processes, or for all as root.
    if let Ok(b) = std::fs::read(dir.join("environ")) {
        info.env = parse_environ(&b);
    }
    info
}

#[cfg(test)]
pub(crate) mod tests;
