//! `sacct --json`: the jobs that ended (or are still running) in a window,
//! with the GPUs each run was allocated. One entry per run: a requeued job
//! has one per run.

use super::{Num, SlurmError, Text, ended, expand_hostlist, first_error};
use crate::api::scheduler::{NodeGpus, SchedJob};
use serde::Deserialize;

/// One job of `sacct --json`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SacctJob {
    job_id: Num,
    array: SacctArray,
    het: SacctHet,
    state: SacctState,
    account: Text,
    user: Text,
    group: Text,
    partition: Text,
    time: SacctTime,
    nodes: Text,
    tres: SacctTres,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SacctArray {
    job_id: Num,
    task_id: Num,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SacctHet {
    job_id: Num,
    job_offset: Num,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SacctState {
    current: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SacctTime {
    start: Num,
    end: Num,
    limit: Num,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SacctTres {
    allocated: Vec<Tres>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Tres {
    #[serde(rename = "type")]
    kind: Text,
    name: Text,
    count: Num,
}

/// Parses `sacct --json` output: one entry per run of a job (a requeued job
/// has one per run). Jobs that never started are left out.
pub fn parse_sacct(text: &[u8]) -> Result<Vec<SchedJob>, String> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        errors: Vec<SlurmError>,
        jobs: Option<Vec<SacctJob>>,
    }
    let doc: Doc = serde_json::from_slice(text).map_err(|e| format!("sacct output is not JSON as expected: {e}"))?;
    // "Nothing found with query" (9003): no job ended in the window.
    let nothing = |e: &SlurmError| {
        e.error_number.0 == Some(9003) || e.error.0.as_deref().is_some_and(|m| m.starts_with("Nothing found"))
    };
    if !doc.errors.is_empty() && doc.errors.iter().all(nothing) {
        return Ok(vec![]);
    }
    first_error(&doc.errors, "sacct")?;
    let mut out = vec![];
    for (k, j) in doc.jobs.ok_or("sacct output has no `jobs` array")?.into_iter().enumerate() {
        let raw = j.job_id.0.ok_or_else(|| format!("jobs[{k}] has no job_id"))?;
        let Some(start) = j.time.start.0.filter(|s| *s > 0) else { continue };
        let nodes = expand_hostlist(j.nodes.0.as_deref().unwrap_or("")).map_err(|e| format!("jobs[{k}].nodes: {e}"))?;
        let gpus: u32 = j
            .tres
            .allocated
            .iter()
            .filter(|t| t.kind.0.as_deref() == Some("gres") && t.name.0.as_deref() == Some("gpu"))
            .filter_map(|t| t.count.0)
            .sum::<i64>()
            .max(0) as u32;
        let per_node = if nodes.is_empty() { 0 } else { gpus / nodes.len() as u32 };
        // The type of its GPUs (`gres` `gpu:3g.71gb`), when they are all of one type.
        let mut types = (j.tres.allocated.iter())
            .filter(|t| t.kind.0.as_deref() == Some("gres") && t.count.0 > Some(0))
            .filter_map(|t| t.name.0.as_deref()?.strip_prefix("gpu:"));
        let gpu_type = match (types.next(), types.next()) {
            (Some(t), None) => Some(t.to_string()),
            _ => None,
        };
        let state = j.state.current.0.unwrap_or_else(|| "UNKNOWN".into());
        let (array_job, array_task) = match (j.array.job_id.0.filter(|a| *a > 0), j.array.task_id.0) {
            (Some(a), t) => (Some(a.to_string()), t.map(|t| t as u32)),
            _ => (None, None),
        };
        let display_id = match (&array_job, array_task, j.het.job_id.0.filter(|h| *h > 0)) {
            (Some(a), Some(t), _) => format!("{a}_{t}"),
            (_, _, Some(h)) => format!("{h}+{}", j.het.job_offset.0.unwrap_or(0)),
            _ => raw.to_string(),
        };
        out.push(SchedJob {
            id: raw.to_string(),
            display_id,
            array_job,
            array_task,
            pending_tasks: None,
            user: j.user.0,
            group: j.group.0,
            account: j.account.0,
            partition: j.partition.0,
            start_s: Some(start),
            end_s: j.time.end.0.filter(|e| *e > 0 && ended(&state)),
            time_limit_s: j.time.limit.0.map(|m| m * 60),
            gpus: nodes
                .iter()
                .map(|n| NodeGpus { node: n.clone(), count: per_node, indices: None, gpu_type: gpu_type.clone() })
                .collect(),
            allocated_gpus: gpus,
            requested_gpus: gpus,
            nodes,
            state,
        });
    }
    Ok(out)
}
