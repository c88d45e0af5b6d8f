//! Who may read what, over every route and every kind of token: two
//! institutes' jobs carry marker users, accounts and job ids (one job id
//! shared by both, on different nodes, as two clusters or a stray process
//! would make); an institute token never sees the other's markers, and the
//! admin sees both (so the check cannot pass by showing nothing).

mod common;
use common::*;
use serde_json::{Value, json};

/// A report of `node` whose first four GPUs run `user`'s job `job` under `account`.
fn marked(node: &str, user: &str, account: &str, job: &str, uid: u32) -> Vec<u8> {
    let mut r: Value = serde_json::from_slice(&once_report(node)).unwrap();
    r["jobs"] = json!([{"scheduler": "slurm", "id": job, "account": account, "user": user, "uid": uid,
                        "gpu_ids": [0, 1, 2, 3], "processes": 1}]);
    for (i, g) in r["gpus"].as_array_mut().unwrap().iter_mut().enumerate() {
        g["processes"] = if i < 4 {
            json!([{"pid": 40_000 + i, "uid": uid, "user": user, "job": job, "gpu_mem_bytes": 1_000_000}])
        } else {
            json!([])
        };
    }
    serde_json::to_vec(&r).unwrap()
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Nobody,
    Node,
    Admin,
    IbnSina,
    AlHaytham,
}

#[test]
fn every_route_and_every_token() {
    // Caps of 2 GPUs, and quota rules evaluated at once: both institutes get a finding.
    let cfg = std::fs::read_to_string(root().join("config/jazari.example.toml"))
        .unwrap()
        .replace("max_gpus = 96", "max_gpus = 2")
        .replace("max_gpus = 48", "max_gpus = 2");
    let cfg = with_alerts(&cfg, &[("evaluate_every", "\"200ms\""), ("quota_every", "\"200ms\"")]);
    let c = Collector::start_with_config(&cfg);
    let node = c.with_token(&c.node_token);
    // Both institutes run a job with the same id, 777001, on their own node.
    for (n, user, account, uid) in
        [("n-mark-a", "markeruserA", "nlp-lab", 3001), ("n-mark-b", "markeruserB", "vision-lab", 3002)]
    {
        let (status, body) = node.post_json("/api/v1/reports", &marked(n, user, account, "777001", uid), None).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    wait_until("a finding for each institute", std::time::Duration::from_secs(20), || {
        let f = c.get("/api/v1/findings").to_string();
        f.contains("cap_exceeded/ibn-sina") && f.contains("cap_exceeded/al-haytham")
    });
    let ibn = token_add(&c.config, &c.store, &["--institute", "ibn-sina"]);
    let hay = token_add(&c.config, &c.store, &["--institute", "al-haytham"]);
    let token = |w: Who| match w {
        Who::Nobody => None,
        Who::Node => Some(c.node_token.clone()),
        Who::Admin => Some(c.admin.clone()),
        Who::IbnSina => Some(ibn.clone()),
        Who::AlHaytham => Some(hay.clone()),
    };
    let wide = "from=2000-01-01&to=2100-01-01";
    // (path, what the admin must see there: both institutes' markers where it lists users or accounts)
    let users: &[&str] = &["markeruserA", "markeruserB"];
    let accounts: &[&str] = &["nlp-lab", "vision-lab"];
    let routes: Vec<(String, &[&str])> = vec![
        ("/api/v1/cluster".into(), users),
        ("/api/v1/nodes/n-mark-a".into(), &["markeruserA", "nlp-lab"]),
        ("/api/v1/nodes/n-mark-b".into(), &["markeruserB", "vision-lab"]),
        ("/api/v1/jobs".into(), users),
        (format!("/api/v1/usage?{wide}&group_by=user"), users),
        (format!("/api/v1/usage?{wide}&group_by=job"), &[]),
        (format!("/api/v1/usage?{wide}&group_by=account"), accounts),
        (format!("/api/v1/usage?{wide}&group_by=node"), &[]),
        (format!("/api/v1/usage?{wide}&group_by=gpu"), &[]),
        (format!("/api/v1/usage?{wide}&group_by=institute"), &[]),
        (format!("/api/v1/history?{wide}&node=n-mark-a"), &[]),
        (format!("/api/v1/coverage?{wide}"), &[]),
        ("/api/v1/history/cluster".into(), &[]),
        ("/api/v1/institutes".into(), &[]),
        ("/api/v1/quotas".into(), &[]),
        (format!("/api/v1/report?{wide}"), users),
        (format!("/api/v1/report?{wide}&anonymise=true"), &[]),
        ("/api/v1/findings".into(), &[]),
        ("/api/v1/scheduler".into(), &[]),
    ];
    let client = http();
    let get = |path: &str, who: Who| -> (u16, String) {
        let mut req = client.get(format!("{}{path}", c.url));
        if let Some(t) = token(who) {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    let (a_markers, b_markers) = (["markeruserA", "nlp-lab"], ["markeruserB", "vision-lab"]);
    let mut checked = 0;
    for (path, lists) in &routes {
        for who in [Who::Nobody, Who::Node, Who::Admin, Who::IbnSina, Who::AlHaytham] {
            let (status, body) = get(path, who);
            let want = match who {
                Who::Nobody => 401,
                Who::Node => 403,
                _ => 200,
            };
            assert_eq!(status, want, "{who:?} GET {path}: {body}");
            match who {
                Who::Admin => {
                    for m in *lists {
                        assert!(body.contains(m), "the admin sees {m} at {path}");
                    }
                }
                Who::IbnSina => {
                    for m in b_markers {
                        assert!(!body.contains(m), "ibn-sina sees al-haytham's {m} at {path}: {body}");
                    }
                    if lists.contains(&"markeruserA") && !path.contains("n-mark-b") {
                        assert!(body.contains("markeruserA"), "ibn-sina sees its own user at {path}");
                    }
                }
                Who::AlHaytham => {
                    for m in a_markers {
                        assert!(!body.contains(m), "al-haytham sees ibn-sina's {m} at {path}: {body}");
                    }
                }
                _ => {}
            }
            checked += 1;
        }
    }
    // Findings: each institute its own.
    let (_, mine) = get("/api/v1/findings", Who::IbnSina);
    assert!(mine.contains("cap_exceeded/ibn-sina") && !mine.contains("al-haytham"), "{mine}");
    let (_, theirs) = get("/api/v1/findings?cleared=true", Who::AlHaytham);
    assert!(theirs.contains("cap_exceeded/al-haytham") && !theirs.contains("ibn-sina"), "{theirs}");
    // Asking for another institute, or one that does not exist: refused, and
    // an institute token is not told which institutes there are.
    for path in ["/api/v1/quotas?institute=al-haytham", "/api/v1/usage?group_by=user&institute=al-haytham"] {
        assert_eq!(get(path, Who::IbnSina).0, 403, "{path}");
    }
    for path in ["/api/v1/quotas?institute=nope", "/api/v1/report?period=2026-Q1&institute=nope"] {
        let (status, body) = get(path, Who::Admin);
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("ibn-sina"), "the admin is told the known institutes: {body}");
    }
    let (_, body) = get("/api/v1/quotas?institute=nope", Who::IbnSina);
    assert!(!body.contains("al-haytham"), "{body}");
    // The shared job id is two jobs, not one, each with its own node only.
    let jobs: Value = serde_json::from_str(&get("/api/v1/jobs", Who::Admin).1).unwrap();
    let same: Vec<&Value> = jobs["jobs"].as_array().unwrap().iter().filter(|j| j["id"] == "777001").collect();
    assert_eq!(same.len(), 2, "{jobs}");
    for j in same {
        assert_eq!(j["nodes"].as_array().unwrap().len(), 1, "{j}");
    }
    let theirs: Value = serde_json::from_str(&get("/api/v1/jobs", Who::IbnSina).1).unwrap();
    let mine = &theirs["jobs"].as_array().unwrap()[0];
    assert_eq!(mine["nodes"], json!(["n-mark-a"]), "{theirs}");
    // No token needed, nothing about users or jobs.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, body) = get(path, Who::Nobody);
        assert_eq!(status, 200, "{path}");
        assert!(!body.contains("markeruser") && !body.contains("777001"), "{path}: {body}");
    }
    // Sending reports: node tokens only.
    for who in [Who::Admin, Who::IbnSina] {
        let c2 = c.with_token(&token(who).unwrap());
        assert_eq!(c2.post_json("/api/v1/reports", &once_report("n-x"), None).unwrap().0, 403);
    }
    eprintln!("{checked} route and token pairs checked");
}
