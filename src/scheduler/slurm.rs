//! Reading Slurm's JSON: `squeue --json` (what is queued and running, with
//! each running job's GPU indices) and `sacct --json` (what ended, with its
//! allocated GPUs, start and end). Slurm 22.05 (plain numbers and strings) and
//! newer versions (`{"set": true, "number": N}` wrappers, state arrays,
//! SLUIDs) are read alike. Only the fields Jazari uses are decoded; the rest
//! of each job is skipped as it is read.

pub use crate::api::scheduler::{NodeGpus, SchedJob};
use serde::{Deserialize, Deserializer};

/// A number that may be plain, null, or wrapped as `{"set": .., "infinite": .., "number": ..}`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Num(Option<i64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Plain(i64),
            Float(f64),
            Wrapped {
                #[serde(default)]
                set: Option<bool>,
                #[serde(default)]
                infinite: Option<bool>,
                #[serde(default)]
                number: Option<i64>,
            },
            Other(serde::de::IgnoredAny),
        }
        Ok(Num(match Raw::deserialize(d)? {
            Raw::Plain(n) => Some(n),
            Raw::Float(f) => Some(f as i64),
            Raw::Wrapped { set, infinite, number } => {
                if set == Some(false) || infinite == Some(true) {
                    None
                } else {
                    number
                }
            }
            Raw::Other(_) => None,
        }))
    }
}

/// A string, or (newer Slurm) an array of strings whose first one counts.
#[derive(Debug, Clone, Default, PartialEq)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
            Other(serde::de::IgnoredAny),
        }
        Ok(Text(
            match Raw::deserialize(d)? {
                Raw::One(s) => Some(s),
                Raw::Many(v) => v.into_iter().next(),
                Raw::Other(_) => None,
            }
            .filter(|s| !s.is_empty()),
        ))
    }
}

/// One job of `squeue --json`, the fields Jazari reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SqueueJob {
    job_id: Num,
    sluid: Text,
    array_job_id: Num,
    array_task_id: Num,
    array_task_string: Text,
    het_job_id: Num,
    het_job_offset: Num,
    user_name: Text,
    group_name: Text,
    account: Text,
    partition: Text,
    job_state: Text,
    start_time: Num,
    end_time: Num,
    time_limit: Num,
    nodes: Text,
    node_count: Num,
    gres_detail: Vec<String>,
    tres_per_node: Text,
    tres_per_job: Text,
    tres_req_str: Text,
    tres_alloc_str: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Errors {
    errors: Vec<SlurmError>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SlurmError {
    error_number: Num,
    error: Text,
    description: Text,
}

fn first_error(errors: &[SlurmError], what: &str) -> Result<(), String> {
    match errors.first() {
        Some(e) => {
            let msg = e.error.0.clone().or(e.description.0.clone()).unwrap_or_else(|| "unknown error".into());
            Err(format!("{what} reported an error: {msg}"))
        }
        None => Ok(()),
    }
}

/// States of a job that ended (its `end_time` is when).
pub fn ended(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "CANCELLED"
            | "FAILED"
            | "TIMEOUT"
            | "NODE_FAIL"
            | "PREEMPTED"
            | "OUT_OF_MEMORY"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "REQUEUED"
    )
}

/// Expands a Slurm host list: `gpu[01-03,07],login1` → gpu01, gpu02, gpu03, gpu07, login1.
pub fn expand_hostlist(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth -= 1,
            b',' if depth == 0 => {
                expand_one(&s[start..i], &mut out)?;
                start = i + 1;
            }
            _ => {}
        }
    }
    expand_one(&s[start..], &mut out)?;
    Ok(out)
}

fn expand_one(s: &str, out: &mut Vec<String>) -> Result<(), String> {
    let s = s.trim();
    if s.is_empty() || s == "None assigned" {
        return Ok(());
    }
    let Some(open) = s.find('[') else {
        out.push(s.to_string());
        return Ok(());
    };
    let close = s[open..].find(']').map(|c| c + open).ok_or_else(|| format!("unbalanced `[` in host list `{s}`"))?;
    let (prefix, ranges, suffix) = (&s[..open], &s[open + 1..close], &s[close + 1..]);
    let mut rest = Vec::new();
    expand_one(suffix, &mut rest)?;
    if rest.is_empty() {
        rest.push(String::new());
    }
    for r in ranges.split(',') {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        let width = a.len();
        let (x, y): (u64, u64) = (
            a.parse().map_err(|_| format!("bad range `{r}` in `{s}`"))?,
            b.parse().map_err(|_| format!("bad range `{r}` in `{s}`"))?,
        );
        if y < x || y - x > 100_000 {
            return Err(format!("bad range `{r}` in `{s}`"));
        }
        for n in x..=y {
            for tail in &rest {
                out.push(format!("{prefix}{n:0width$}{tail}"));
            }
        }
    }
    Ok(())
}

/// Reads one node's `gres_detail` entry: `gpu:2(IDX:0-1)`, `gpu:a100:2(IDX:0,2)`,
/// `gpu(CNT:2)`, or several GPU types (`gpu:h200:1(IDX:2),gpu:3g.71gb:0(IDX:)`)
/// and other GRES after commas. Counts add up; indices join; the type is the
/// one with GPUs (or the first).
pub fn parse_gres_detail(s: &str) -> Option<(u32, Option<Vec<u32>>, Option<String>)> {
    let mut depth = 0;
    let mut parts = vec![];
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    let mut found = false;
    let (mut total, mut all_idx, mut any_idx, mut gpu_type): (u32, Vec<u32>, bool, Option<String>) =
        (0, vec![], false, None);
    for e in parts.into_iter().map(str::trim).filter(|p| p.starts_with("gpu")) {
        let (head, paren) = match e.find('(') {
            Some(i) => (&e[..i], Some(e[i + 1..].trim_end_matches(')'))),
            None => (e, None),
        };
        let fields: Vec<&str> = head.split(':').collect();
        let (mut count, ty) = match fields.as_slice() {
            ["gpu"] => (None, None),
            ["gpu", n] if n.parse::<u32>().is_ok() => (n.parse().ok(), None),
            ["gpu", t] => (None, Some(t.to_string())),
            ["gpu", t, n] => (n.parse().ok(), Some(t.to_string())),
            _ => continue,
        };
        found = true;
        if let Some(p) = paren {
            if let Some(idx) = p.strip_prefix("IDX:") {
                any_idx = true;
                for part in idx.split(',').map(str::trim).filter(|x| !x.is_empty()) {
                    let (a, b) = part.split_once('-').unwrap_or((part, part));
                    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                    if b < a || b - a > 4096 {
                        return None;
                    }
                    all_idx.extend(a..=b);
                }
                count = count.or(Some(all_idx.len() as u32));
            } else if let Some(n) = p.strip_prefix("CNT:") {
                count = n.trim().parse().ok();
            }
        }
        let c = count.unwrap_or(0);
        if c > 0 || gpu_type.is_none() {
            gpu_type = ty.or(gpu_type);
        }
        total += c;
    }
    found.then(|| (total, any_idx.then_some(all_idx), gpu_type))
}

/// GPUs in a TRES string: `gres:gpu:2`, `gres/gpu:2`, `gres/gpu:a100:2`, `gres/gpu=2`. When the
/// untyped `gres/gpu` and typed entries (`gres/gpu:h200=2`) both appear, they count the same
/// GPUs: the untyped total counts, once.
pub fn tres_gpus(s: &str) -> u32 {
    let (mut untyped, mut typed) = (None::<u32>, 0u32);
    for t in s.split(',').map(str::trim) {
        let Some(rest) = t.strip_prefix("gres:gpu").or_else(|| t.strip_prefix("gres/gpu")) else { continue };
        let n = rest.rsplit([':', '=']).next().and_then(|n| n.parse::<u32>().ok());
        let is_typed = rest.trim_start_matches([':', '=']).contains([':', '=']);
        match (n, is_typed) {
            (Some(n), false) => *untyped.get_or_insert(0) += n,
            (Some(n), true) => typed += n,
            (None, _) if rest.is_empty() => *untyped.get_or_insert(0) += 1,
            _ => {}
        }
    }
    untyped.unwrap_or(typed)
}

/// The type of the GPUs in a TRES string (`gres/gpu:3g.71gb=1`), when they are all of one type.
pub fn tres_gpu_type(s: &str) -> Option<String> {
    let mut types = s.split(',').map(str::trim).filter_map(|t| {
        let rest = t.strip_prefix("gres/gpu:").or_else(|| t.strip_prefix("gres:gpu:"))?;
        let (ty, n) = rest.rsplit_once(['=', ':'])?;
        n.parse::<u32>().ok().filter(|n| *n > 0).map(|_| ty)
    });
    match (types.next(), types.next()) {
        (Some(t), None) => Some(t.to_string()),
        _ => None,
    }
}

/// Tasks in an array task string: `3-5` → 3, `0-9%2` → 10, `1,4,7-8` → 4.
pub fn array_tasks(s: &str) -> u32 {
    let s = s.split('%').next().unwrap_or("");
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let p = p.split(':').next().unwrap_or(p); // a step (`0-10:2`) is rare; count the range
            match p.split_once('-') {
                Some((a, b)) => match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    (Ok(a), Ok(b)) if b >= a => b - a + 1,
                    _ => 1,
                },
                None => 1,
            }
        })
        .sum::<u32>()
        .max(1)
}

impl SqueueJob {
    fn into_job(self, k: usize) -> Result<SchedJob, String> {
        let raw = self.job_id.0.ok_or_else(|| format!("jobs[{k}] has no job_id"))?;
        let id = self.sluid.0.unwrap_or_else(|| raw.to_string());
        let state = self.job_state.0.unwrap_or_else(|| "UNKNOWN".into());
        let nodes =
            expand_hostlist(self.nodes.0.as_deref().unwrap_or("")).map_err(|e| format!("jobs[{k}].nodes: {e}"))?;
        let gpus: Vec<NodeGpus> = nodes
            .iter()
            .zip(self.gres_detail.iter())
            .filter_map(|(node, d)| {
                let (count, indices, gpu_type) = parse_gres_detail(d)?;
                Some(NodeGpus { node: node.clone(), count, indices, gpu_type })
            })
            .collect();
        let allocated = self.tres_alloc_str.0.as_deref().map(tres_gpus).unwrap_or(0);
        // Once a job ended its `gres_detail` is empty: its GPUs are known by count only.
        let gpus = if gpus.is_empty() && allocated > 0 && !nodes.is_empty() {
            let per = allocated / nodes.len() as u32;
            let gpu_type = self.tres_alloc_str.0.as_deref().and_then(tres_gpu_type);
            let each = |n: &String| NodeGpus { node: n.clone(), count: per, indices: None, gpu_type: gpu_type.clone() };
            nodes.iter().map(each).collect()
        } else {
            gpus
        };
        let node_count = self.node_count.0.unwrap_or(1).max(1) as u32;
        let per_node = self.tres_per_node.0.as_deref().map(tres_gpus).unwrap_or(0);
        let mut requested = if per_node > 0 {
            per_node * node_count
        } else {
            [&self.tres_per_job, &self.tres_req_str]
                .iter()
                .find_map(|t| t.0.as_deref().map(tres_gpus).filter(|n| *n > 0))
                .unwrap_or(0)
        };
        let (array_job, array_task) = match (self.array_job_id.0.filter(|a| *a > 0), self.array_task_id.0) {
            (Some(a), Some(t)) => (Some(a.to_string()), Some(t as u32)),
            (Some(a), None) => (Some(a.to_string()), None),
            _ => (None, None),
        };
        let pending_tasks = match (&array_job, array_task, self.array_task_string.0.as_deref()) {
            (Some(_), None, Some(s)) => array_tasks(s),
            _ => 1,
        };
        if state == "PENDING" {
            requested *= pending_tasks;
        }
        let display_id = match (&array_job, array_task, self.array_task_string.0.as_deref(), self.het_job_id.0) {
            (Some(a), Some(t), _, _) => format!("{a}_{t}"),
            (Some(a), None, Some(s), _) => format!("{a}_[{s}]"),
            (_, _, _, Some(h)) if h > 0 => format!("{h}+{}", self.het_job_offset.0.unwrap_or(0)),
            _ => id.clone(),
        };
        let start_s = self.start_time.0.filter(|t| *t > 0 && state != "PENDING");
        let end_s = self.end_time.0.filter(|t| *t > 0 && ended(&state));
        Ok(SchedJob {
            display_id,
            array_job,
            array_task,
            pending_tasks: (state == "PENDING" && pending_tasks > 1).then_some(pending_tasks),
            user: self.user_name.0,
            group: self.group_name.0,
            account: self.account.0,
            partition: self.partition.0,
            start_s,
            end_s,
            time_limit_s: self.time_limit.0.map(|m| m * 60),
            allocated_gpus: allocated.max(gpus.iter().map(|g| g.count).sum()),
            requested_gpus: requested,
            nodes,
            gpus,
            state,
            id,
        })
    }
}

/// Parses `squeue --json` output (or slurmrestd's `/slurm/*/jobs`). Errors name what is wrong.
pub fn parse_squeue(text: &[u8]) -> Result<Vec<SchedJob>, String> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        errors: Vec<SlurmError>,
        jobs: Option<Vec<SqueueJob>>,
    }
    let doc: Doc = serde_json::from_slice(text).map_err(|e| match serde_json::from_slice::<Errors>(text) {
        Ok(errs) if !errs.errors.is_empty() => first_error(&errs.errors, "squeue").unwrap_err(),
        _ => format!("squeue output is not JSON as expected: {e}"),
    })?;
    first_error(&doc.errors, "squeue")?;
    let jobs = doc.jobs.ok_or("squeue output has no `jobs` array")?;
    jobs.into_iter().enumerate().map(|(k, j)| j.into_job(k)).collect()
}

mod sacct;
pub use sacct::parse_sacct;

#[cfg(test)]
mod tests;
