//! The parsers against Slurm 22.05's real output (tests/slurm/, captured from a
//! real Slurm with slurmdbd) and against newer versions' shapes.

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm").join(name)).unwrap()
}

fn job<'a>(jobs: &'a [SchedJob], id: &str) -> &'a SchedJob {
    jobs.iter().find(|j| j.id == id).unwrap_or_else(|| panic!("no job {id}"))
}

#[test]
fn squeue_json_captured_from_slurm_22_05() {
    let jobs = parse_squeue(&fixture("squeue-22.05.json")).unwrap();
    assert_eq!(jobs.len(), 3);
    let j1 = &jobs[0];
    assert_eq!((j1.id.as_str(), j1.display_id.as_str()), ("1", "1"));
    assert_eq!(j1.account.as_deref(), Some("nlp-lab"));
    assert_eq!(j1.state, "RUNNING");
    assert_eq!(j1.time_limit_s, Some(3600));
    assert!(j1.start_s.is_some() && j1.end_s.is_none());
    assert_eq!(j1.gpus, vec![NodeGpus { node: "vm".into(), count: 2, indices: Some(vec![0, 1]), gpu_type: None }]);
    assert_eq!(jobs[1].gpus[0].indices, Some(vec![2, 3]));
    let pending = &jobs[2];
    assert_eq!(pending.state, "PENDING");
    assert_eq!(pending.requested_gpus, 2);
    assert!(pending.gpus.is_empty() && pending.start_s.is_none());
}

#[test]
fn typed_gpus_count_once_and_a_bare_request_gets_a_typed_gpu() {
    let jobs = parse_squeue(&fixture("squeue-typed-gpus.json")).unwrap();
    let typed = job(&jobs, "6");
    assert_eq!(typed.gpus[0].indices, Some(vec![0, 1]));
    assert_eq!(typed.gpus[0].gpu_type.as_deref(), Some("h200"));
    assert_eq!((typed.allocated_gpus, typed.requested_gpus), (2, 2), "gres/gpu=2 and gres/gpu:h200=2 are the same two");
    // `--gres=gpu:1` given an h200: `gpu:h200:1(IDX:2),gpu:3g.71gb:0(IDX:)`.
    let bare = job(&jobs, "7");
    assert_eq!(bare.gpus[0].count, 1);
    assert_eq!(bare.gpus[0].indices, Some(vec![2]));
    assert_eq!(bare.gpus[0].gpu_type.as_deref(), Some("h200"));
    assert_eq!(bare.allocated_gpus, 1);
    let mig = job(&jobs, "8");
    assert_eq!((mig.gpus[0].indices.clone(), mig.gpus[0].gpu_type.as_deref()), (Some(vec![4]), Some("3g.71gb")));
    let pending = job(&jobs, "9");
    assert_eq!((pending.state.as_str(), pending.requested_gpus), ("PENDING", 2));
}

#[test]
fn array_tasks_are_named_and_pending_ones_counted_each() {
    let jobs = parse_squeue(&fixture("squeue-array.json")).unwrap();
    let t0 = job(&jobs, "11");
    assert_eq!((t0.display_id.as_str(), t0.array_job.as_deref(), t0.array_task), ("10_0", Some("10"), Some(0)));
    // Task 2 got both MIG slices: `gpu:h200:0(IDX:),gpu:3g.71gb:2(IDX:4-5)`.
    let t2 = job(&jobs, "13");
    assert_eq!((t2.gpus[0].count, t2.gpus[0].indices.clone()), (2, Some(vec![4, 5])));
    assert_eq!(t2.gpus[0].gpu_type.as_deref(), Some("3g.71gb"));
    // Tasks 3-5 wait as one record: 3 tasks × 2 GPUs.
    let pending = job(&jobs, "10");
    assert_eq!((pending.display_id.as_str(), pending.pending_tasks), ("10_[3-5]", Some(3)));
    assert_eq!(pending.requested_gpus, 6);
}

#[test]
fn het_jobs_multi_node_jobs_and_groups() {
    let jobs = parse_squeue(&fixture("squeue-hetjob.json")).unwrap();
    let c0 = job(&jobs, "21");
    assert_eq!((c0.display_id.as_str(), c0.nodes.as_slice()), ("21+0", ["vmb".to_string()].as_slice()));
    assert_eq!(c0.gpus[0].indices, Some(vec![0, 1]));
    let c1 = job(&jobs, "22");
    assert_eq!((c1.display_id.as_str(), c1.gpus[0].indices.clone()), ("21+1", Some(vec![0])));
    assert!(c0.group.is_some(), "group_name is read");
    let multi = parse_squeue(&fixture("squeue-multinode.json")).unwrap();
    let m = job(&multi, "18");
    assert_eq!(m.nodes, ["vm", "vmb"]);
    assert_eq!(m.gpus.iter().map(|g| (g.node.as_str(), g.count)).collect::<Vec<_>>(), [("vm", 1), ("vmb", 1)]);
    assert_eq!(m.allocated_gpus, 2);
}

#[test]
fn ended_jobs_keep_their_end_in_squeue_and_sacct() {
    let running = parse_squeue(&fixture("squeue-ends-running.json")).unwrap();
    let short = job(&running, "23");
    assert_eq!((short.state.as_str(), short.start_s, short.end_s), ("COMPLETED", Some(1795960050), Some(1795960056)));
    assert_eq!(
        short.gpus,
        vec![NodeGpus { node: "vm".into(), count: 1, indices: None, gpu_type: Some("h200".into()) }],
        "no IDX once ended; the type from tres_alloc_str"
    );
    assert_eq!(short.allocated_gpus, 1);
    // A running job's end_time is its limit, not an end.
    assert_eq!(job(&running, "25").end_s, None);
    let after = parse_squeue(&fixture("squeue-ends-after-cancel.json")).unwrap();
    assert_eq!(job(&after, "24").end_s, Some(1795960057));
    let requeued = job(&after, "26");
    assert_eq!((requeued.state.as_str(), requeued.start_s), ("PENDING", None));
    let timeout = parse_squeue(&fixture("squeue-ends-timeout.json")).unwrap();
    assert_eq!(job(&timeout, "25").state, "TIMEOUT");
    assert!(job(&timeout, "25").end_s.is_some());
}

#[test]
fn sacct_gives_each_run_with_its_gpus_start_and_end() {
    let ended = parse_sacct(&fixture("sacct-ends.json")).unwrap();
    // 26 was requeued: two runs. 28 never started: absent. 27 had no GPU.
    type Run<'a> = (&'a str, &'a str, Option<i64>, Option<i64>, u32);
    let runs: Vec<Run> =
        ended.iter().map(|j| (j.id.as_str(), j.state.as_str(), j.start_s, j.end_s, j.allocated_gpus)).collect();
    assert!(runs.contains(&("26", "REQUEUED", Some(1795960050), Some(1795960057), 1)), "{runs:?}");
    assert!(runs.contains(&("26", "COMPLETED", Some(1795960191), Some(1795960236), 1)), "{runs:?}");
    assert!(runs.contains(&("23", "COMPLETED", Some(1795960050), Some(1795960056), 1)), "{runs:?}");
    assert!(runs.contains(&("24", "CANCELLED", Some(1795960050), Some(1795960057), 1)), "{runs:?}");
    assert!(runs.contains(&("25", "TIMEOUT", Some(1795960050), Some(1795960137), 1)), "{runs:?}");
    assert!(runs.contains(&("27", "FAILED", Some(1795960050), Some(1795960054), 0)), "{runs:?}");
    assert!(!runs.iter().any(|r| r.0 == "28"));
    let arr = parse_sacct(&fixture("sacct-array.json")).unwrap();
    assert!(arr.iter().any(|j| j.display_id == "10_5" && j.id == "10"), "task 5 ran under the array's id");
    assert!(arr.iter().any(|j| j.display_id == "10_0" && j.id == "11"));
    let het = parse_sacct(&fixture("sacct-hetjob.json")).unwrap();
    assert_eq!(job(&het, "22").display_id, "21+1");
    let multi = parse_sacct(&fixture("sacct-multinode.json")).unwrap();
    let m = job(&multi, "18");
    assert_eq!(m.gpus.iter().map(|g| (g.node.as_str(), g.count)).collect::<Vec<_>>(), [("vm", 1), ("vmb", 1)]);
    let typed = parse_sacct(&fixture("sacct-typed-gpus.json")).unwrap();
    assert_eq!(job(&typed, "6").allocated_gpus, 2, "gres/gpu counts; gres/gpu:h200 is the same GPUs");
    // The type of a run's GPUs: a MIG slice's profile tells a slice from a GPU once the job ended.
    assert_eq!(job(&typed, "8").gpus[0].gpu_type.as_deref(), Some("3g.71gb"));
    assert_eq!(job(&typed, "6").gpus[0].gpu_type.as_deref(), Some("h200"));
    assert_eq!(tres_gpu_type("cpu=1,gres/gpu=2,gres/gpu:3g.71gb=2"), Some("3g.71gb".into()));
    assert_eq!(tres_gpu_type("gres/gpu=2,gres/gpu:h200=1,gres/gpu:3g.71gb=1"), None, "two types");
    assert_eq!(tres_gpu_type("gres/gpu=2,gres/gpu:h200=0,gres/gpu:1g.18gb=2"), Some("1g.18gb".into()));
}

#[test]
fn sacct_finding_nothing_is_no_job_ended_but_other_errors_are_errors() {
    // What Slurm 22.05's `sacct --json` prints when no job matches the window.
    let nothing = br#"{"meta": {}, "errors": [{"description": "Nothing found", "error_number": 9003,
        "error": "Nothing found with query", "source": "slurmdb_jobs_get"}], "jobs": []}"#;
    assert_eq!(parse_sacct(nothing).unwrap(), vec![]);
    let down = br#"{"errors": [{"error_number": 7000, "error": "Unable to connect to database"}], "jobs": []}"#;
    let e = parse_sacct(down).unwrap_err();
    assert!(e.contains("Unable to connect to database"), "{e}");
}

#[test]
fn newer_slurm_wrappers_sluid_typed_gpus_and_several_nodes() {
    let text = br#"{"jobs": [
      {"job_id": 991, "sluid": "s0B8K2M4N6P8R1", "user_name": "erin", "account": "vision-lab", "group_name": "vis",
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
    assert_eq!((a.id.as_str(), a.group.as_deref()), ("s0B8K2M4N6P8R1", Some("vis")));
    assert_eq!(a.state, "RUNNING");
    assert_eq!(a.time_limit_s, Some(7200));
    assert_eq!(a.nodes, ["gpu07", "gpu08"]);
    assert_eq!(
        a.gpus[1],
        NodeGpus { node: "gpu08".into(), count: 2, indices: Some(vec![1, 3]), gpu_type: Some("h200".into()) }
    );
    assert_eq!(a.requested_gpus, 8);
    let p = &jobs[1];
    assert_eq!((p.state.as_str(), p.time_limit_s, p.start_s), ("PENDING", None, None));
    assert_eq!(p.requested_gpus, 24, "8 per node on 3 nodes");
    assert_eq!(jobs[2].gpus[0], NodeGpus { node: "login1".into(), count: 2, indices: None, gpu_type: None });
}

#[test]
fn host_lists_gres_and_tres() {
    assert_eq!(expand_hostlist("gpu[01-03,07],login1").unwrap(), ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]);
    assert_eq!(expand_hostlist("r[1-2]n[1-2]").unwrap(), ["r1n1", "r1n2", "r2n1", "r2n2"]);
    assert!(expand_hostlist("").unwrap().is_empty());
    assert!(expand_hostlist("gpu[3-1]").is_err());
    assert!(expand_hostlist("gpu[1-2").is_err());
    assert_eq!(parse_gres_detail("gpu:2(IDX:0-1)"), Some((2, Some(vec![0, 1]), None)));
    assert_eq!(parse_gres_detail("gpu:a100:3(IDX:0,2-3)"), Some((3, Some(vec![0, 2, 3]), Some("a100".into()))));
    assert_eq!(parse_gres_detail("gpu(CNT:4)"), Some((4, None, None)));
    assert_eq!(parse_gres_detail("shard:0,gpu:1(IDX:5)"), Some((1, Some(vec![5]), None)));
    assert_eq!(
        parse_gres_detail("gpu:h200:1(IDX:2),gpu:3g.71gb:0(IDX:)"),
        Some((1, Some(vec![2]), Some("h200".into())))
    );
    assert_eq!(parse_gres_detail("mps:100"), None);
    assert_eq!(tres_gpus("gres:gpu:2"), 2);
    assert_eq!(tres_gpus("cpu=1,gres/gpu=4"), 4);
    assert_eq!(tres_gpus("gres/gpu:a100:2"), 2);
    assert_eq!(tres_gpus("cpu=1,node=1,billing=1,gres/gpu=1,gres/gpu:h200=1"), 1, "counted once");
    assert_eq!(tres_gpus("cpu=1,mem=1000M"), 0);
    assert_eq!(array_tasks("3-5"), 3);
    assert_eq!(array_tasks("0-9%2"), 10);
    assert_eq!(array_tasks("1,4,7-8"), 4);
}

#[test]
fn unparseable_output_is_an_error_that_says_so() {
    assert!(parse_squeue(b"squeue: error: ...").unwrap_err().contains("not JSON"));
    assert!(parse_squeue(b"{}").unwrap_err().contains("jobs"));
    assert!(
        parse_squeue(br#"{"jobs": [], "errors": [{"error": "Unable to contact slurm controller"}]}"#)
            .unwrap_err()
            .contains("controller")
    );
    assert!(
        parse_sacct(br#"{"errors": [{"error": "Slurm accounting storage is disabled"}], "jobs": []}"#)
            .unwrap_err()
            .contains("accounting storage")
    );
}
