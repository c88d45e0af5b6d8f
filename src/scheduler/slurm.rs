//! Reading `squeue --json`: Slurm 22.05 (plain numbers and strings) and newer
//! versions (`{"set": true, "number": N}` wrappers, state arrays, SLUIDs),
//! host lists and the per-node GPU indices of `gres_detail`.

pub use crate::api::scheduler::{NodeGpus, SchedJob};
use serde_json::Value;

impl SchedJob {
    pub fn running(&self) -> bool {
        self.state == "RUNNING" || self.state == "COMPLETING"
    }

    pub fn pending(&self) -> bool {
        self.state == "PENDING"
    }
}

/// A number that may be plain or wrapped as `{"set": .., "infinite": .., "number": ..}`.
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::Object(o) => {
            if o.get("set").and_then(Value::as_bool) == Some(false)
                || o.get("infinite").and_then(Value::as_bool) == Some(true)
            {
                None
            } else {
                o.get("number").and_then(number)
            }
        }
        _ => None,
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(a) => a.first().and_then(|x| x.as_str()).map(str::to_string),
        _ => None,
    }
}

/// Expands a Slurm host list: `gpu[01-03,07],login1` → gpu01, gpu02, gpu03, gpu07, login1.
pub fn expand_hostlist(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
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
    if s.is_empty() {
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

/// Reads one `gres_detail` entry: `gpu:2(IDX:0-1)`, `gpu:a100:2(IDX:0,2)`,
/// `gpu(CNT:2)`, possibly with other GRES after a comma.
pub fn parse_gres_detail(s: &str) -> Option<(u32, Option<Vec<u32>>, Option<String>)> {
    // Split at commas outside parentheses; keep the gpu entry.
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
    let e = parts.into_iter().map(str::trim).find(|p| p.starts_with("gpu"))?;
    let (head, paren) = match e.find('(') {
        Some(i) => (&e[..i], Some(e[i + 1..].trim_end_matches(')'))),
        None => (e, None),
    };
    let fields: Vec<&str> = head.split(':').collect();
    let (mut count, gpu_type) = match fields.as_slice() {
        ["gpu"] => (None, None),
        ["gpu", n] if n.parse::<u32>().is_ok() => (n.parse().ok(), None),
        ["gpu", t] => (None, Some(t.to_string())),
        ["gpu", t, n] => (n.parse().ok(), Some(t.to_string())),
        _ => return None,
    };
    let mut indices = None;
    if let Some(p) = paren {
        if let Some(idx) = p.strip_prefix("IDX:") {
            let mut v = vec![];
            for part in idx.split(',') {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                v.extend(a..=b);
            }
            count = count.or(Some(v.len() as u32));
            indices = Some(v);
        } else if let Some(n) = p.strip_prefix("CNT:") {
            count = n.trim().parse().ok();
        }
    }
    Some((count.unwrap_or(0), indices, gpu_type))
}

/// GPUs per node from a TRES string: `gres:gpu:2`, `gres/gpu:2`, `gres/gpu:a100:2`, `gres/gpu=2`.
pub fn tres_gpus(s: &str) -> u32 {
    s.split(',')
        .filter_map(|t| {
            let t = t.trim();
            let rest = t.strip_prefix("gres:gpu").or_else(|| t.strip_prefix("gres/gpu"))?;
            let n = rest.rsplit([':', '=']).next()?;
            n.parse::<u32>().ok().or(if rest.is_empty() { Some(1) } else { None })
        })
        .sum()
}

/// Parses `squeue --json` output. Errors name what is wrong.
pub fn parse_squeue(text: &str) -> Result<Vec<SchedJob>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("squeue output is not JSON: {e}"))?;
    if let Some(errs) = v.get("errors").and_then(Value::as_array)
        && let Some(e) = errs.first()
    {
        let msg = e.get("error").or_else(|| e.get("description")).and_then(Value::as_str).unwrap_or("unknown error");
        return Err(format!("squeue reported an error: {msg}"));
    }
    let jobs = v.get("jobs").and_then(Value::as_array).ok_or("squeue output has no `jobs` array")?;
    let mut out = Vec::with_capacity(jobs.len());
    for (k, j) in jobs.iter().enumerate() {
        let id = j
            .get("sluid")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| j.get("job_id").and_then(number).map(|n| n.to_string()))
            .ok_or_else(|| format!("jobs[{k}] has no job_id"))?;
        let state = string(j.get("job_state")).unwrap_or_else(|| "UNKNOWN".into());
        let nodes_text = j.get("nodes").and_then(Value::as_str).unwrap_or("");
        let nodes = expand_hostlist(nodes_text).map_err(|e| format!("jobs[{k}].nodes: {e}"))?;
        let details: Vec<String> = j
            .get("gres_detail")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let gpus: Vec<NodeGpus> = nodes
            .iter()
            .zip(details.iter())
            .filter_map(|(node, d)| {
                let (count, indices, gpu_type) = parse_gres_detail(d)?;
                Some(NodeGpus { node: node.clone(), count, indices, gpu_type })
            })
            .collect();
        let per_node = ["tres_per_node", "tres_per_job", "tres_req_str"]
            .iter()
            .filter_map(|f| j.get(*f).and_then(Value::as_str))
            .map(tres_gpus)
            .find(|n| *n > 0)
            .unwrap_or(0);
        let node_count = j.get("node_count").and_then(number).unwrap_or(1).max(1) as u32;
        let requested = if j.get("tres_per_node").and_then(Value::as_str).is_some_and(|s| tres_gpus(s) > 0) {
            per_node * node_count
        } else {
            per_node
        };
        out.push(SchedJob {
            id,
            user: string(j.get("user_name")),
            account: string(j.get("account")),
            partition: string(j.get("partition")),
            start_s: j.get("start_time").and_then(number).filter(|t| *t > 0),
            time_limit_s: j.get("time_limit").and_then(number).map(|m| m * 60),
            nodes,
            requested_gpus: requested.max(gpus.iter().map(|g| g.count).sum()),
            gpus,
            state,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_json_captured_from_slurm_22_05() {
        let text = include_str!("../../tests/slurm/squeue-22.05.json");
        let jobs = parse_squeue(text).unwrap();
        assert_eq!(jobs.len(), 3);
        let j1 = &jobs[0];
        assert_eq!(j1.id, "1");
        assert_eq!(j1.account.as_deref(), Some("nlp-lab"));
        assert_eq!(j1.state, "RUNNING");
        assert_eq!(j1.time_limit_s, Some(3600));
        assert!(j1.start_s.is_some());
        assert_eq!(j1.gpus, vec![NodeGpus { node: "vm".into(), count: 2, indices: Some(vec![0, 1]), gpu_type: None }]);
        assert_eq!(jobs[1].gpus[0].indices, Some(vec![2, 3]));
        let pending = &jobs[2];
        assert!(pending.pending());
        assert_eq!(pending.requested_gpus, 2);
        assert!(pending.gpus.is_empty() && pending.start_s.is_none());
    }

    #[test]
    fn newer_slurm_wrappers_sluid_typed_gpus_and_several_nodes() {
        let text = r#"{"jobs": [
          {"job_id": 991, "sluid": "s0B8K2M4N6P8R1", "user_name": "erin", "account": "vision-lab",
           "partition": "gpu", "job_state": ["RUNNING"],
           "start_time": {"set": true, "infinite": false, "number": 1790000000},
           "time_limit": {"set": true, "infinite": false, "number": 120},
           "nodes": "gpu[07-08]", "node_count": {"set": true, "number": 2},
           "gres_detail": ["gpu:h200:4(IDX:0-3)", "gpu:h200:2(IDX:1,3)"],
           "tres_per_node": "gres/gpu:h200:4"},
          {"job_id": 992, "user_name": "frank", "account": "climate", "job_state": ["PENDING"],
           "start_time": {"set": false, "infinite": false, "number": 0},
           "time_limit": {"set": true, "infinite": true, "number": 0},
           "nodes": "", "node_count": {"set": true, "number": 3}, "gres_detail": [],
           "tres_per_node": "gres/gpu:8"},
          {"job_id": 993, "account": "x", "job_state": ["RUNNING"], "nodes": "login1",
           "gres_detail": ["gpu(CNT:2)"], "tres_per_job": "gres/gpu=2"}
        ], "errors": []}"#;
        let jobs = parse_squeue(text).unwrap();
        let a = &jobs[0];
        assert_eq!(a.id, "s0B8K2M4N6P8R1");
        assert_eq!(a.state, "RUNNING");
        assert_eq!(a.time_limit_s, Some(7200));
        assert_eq!(a.nodes, ["gpu07", "gpu08"]);
        assert_eq!(
            a.gpus[1],
            NodeGpus { node: "gpu08".into(), count: 2, indices: Some(vec![1, 3]), gpu_type: Some("h200".into()) }
        );
        assert_eq!(a.requested_gpus, 8);
        let p = &jobs[1];
        assert!(p.pending());
        assert_eq!(p.time_limit_s, None, "infinite");
        assert_eq!(p.start_s, None);
        assert_eq!(p.requested_gpus, 24, "8 per node on 3 nodes");
        assert_eq!(jobs[2].gpus[0], NodeGpus { node: "login1".into(), count: 2, indices: None, gpu_type: None });
    }

    #[test]
    fn host_lists() {
        assert_eq!(expand_hostlist("gpu[01-03,07],login1").unwrap(), ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]);
        assert_eq!(expand_hostlist("r[1-2]n[1-2]").unwrap(), ["r1n1", "r1n2", "r2n1", "r2n2"]);
        assert!(expand_hostlist("").unwrap().is_empty());
        assert!(expand_hostlist("gpu[3-1]").is_err());
        assert!(expand_hostlist("gpu[1-2").is_err());
    }

    #[test]
    fn gres_details() {
        assert_eq!(parse_gres_detail("gpu:2(IDX:0-1)"), Some((2, Some(vec![0, 1]), None)));
        assert_eq!(parse_gres_detail("gpu:a100:3(IDX:0,2-3)"), Some((3, Some(vec![0, 2, 3]), Some("a100".into()))));
        assert_eq!(parse_gres_detail("gpu(CNT:4)"), Some((4, None, None)));
        assert_eq!(parse_gres_detail("shard:0,gpu:1(IDX:5)"), Some((1, Some(vec![5]), None)));
        assert_eq!(parse_gres_detail("mps:100"), None);
        assert_eq!(tres_gpus("gres:gpu:2"), 2);
        assert_eq!(tres_gpus("cpu=1,gres/gpu=4"), 4);
        assert_eq!(tres_gpus("gres/gpu:a100:2"), 2);
        assert_eq!(tres_gpus("cpu=1,mem=1000M"), 0);
    }

    #[test]
    fn unparseable_output_is_an_error_that_says_so() {
        assert!(parse_squeue("squeue: error: ...").unwrap_err().contains("not JSON"));
        assert!(parse_squeue("{}").unwrap_err().contains("jobs"));
        assert!(
            parse_squeue(r#"{"jobs": [], "errors": [{"error": "Unable to contact slurm controller"}]}"#)
                .unwrap_err()
                .contains("controller")
        );
    }
}
