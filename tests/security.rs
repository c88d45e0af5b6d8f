//! A collector no node can take down, against real processes over real
//! HTTP: amplified bodies refused with memory bounded, `/healthz` answered
//! while hostile posts run, slow clients closed, refusals answered and
//! counted, revocation within a second, node names bounded, reserved
//! institute ids, times out of range.

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn pid(c: &Collector) -> u32 {
    c.proc.as_ref().unwrap().0.id()
}

/// Peak resident memory of a process, MiB.
fn peak_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 =
        s.lines().find(|l| l.starts_with("VmHWM:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    kb / 1024.0
}

/// A valid report of `node` whose first GPU lists `n` processes `{"pid":1}`.
fn amplified(node: &str, n: usize) -> Vec<u8> {
    let mut r: Value = serde_json::from_slice(&once_report(node)).unwrap();
    r["gpus"][0]["processes"] = Value::Array(vec![]);
    let text = serde_json::to_string(&r).unwrap();
    let procs = vec![r#"{"pid":1}"#; n].join(",");
    text.replacen(r#""processes":[]"#, &format!(r#""processes":[{procs}]"#), 1).into_bytes()
}

/// POSTs a body with `token`; returns status and text.
fn post(url: &str, token: &str, body: Vec<u8>, encoding: Option<&str>) -> (u16, String) {
    let mut req = http().post(format!("{url}/api/v1/reports")).header("Authorization", format!("Bearer {token}"));
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    let resp = req.body(body).send().unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn amplified_bodies_are_refused_with_memory_bounded() {
    let c = Collector::start();
    // 6 million processes in a few KB of zstd: over the decompressed limit.
    let huge = zstd::encode_all(&amplified("n-amp", 6_000_000)[..], 19).unwrap();
    // 1.5 million: under the decompressed limit (16 MiB), over the process count.
    let counted = zstd::encode_all(&amplified("n-amp", 1_500_000)[..], 19).unwrap();
    eprintln!("bodies: {} and {} bytes of zstd", huge.len(), counted.len());
    let before = peak_mib(pid(&c));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (url, token) = (c.url.clone(), c.node_token.clone());
            let body = if i % 2 == 0 { huge.clone() } else { counted.clone() };
            std::thread::spawn(move || post(&url, &token, body, Some("zstd")))
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let (status, text) = t.join().unwrap();
        if i % 2 == 0 {
            assert_eq!(status, 413, "{text}");
            assert!(text.contains("ingest.max_decompressed_bytes"), "{text}");
        } else {
            assert_eq!(status, 400, "{text}");
            assert!(text.contains("ingest.max_processes_per_gpu") && text.contains("gpus[0].processes"), "{text}");
        }
    }
    // A report with 100,000 jobs.
    let mut r: Value = serde_json::from_slice(&once_report("n-amp")).unwrap();
    let job = r["jobs"][0].clone();
    r["jobs"] = Value::Array(vec![job; 100_000]);
    let (status, text) = post(&c.url, &c.node_token, serde_json::to_vec(&r).unwrap(), None);
    assert_eq!(status, 413, "over max_body_bytes? {text}");
    let body = zstd::encode_all(&serde_json::to_vec(&r).unwrap()[..], 3).unwrap();
    let (status, text) = post(&c.url, &c.node_token, body, Some("zstd"));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("ingest.max_jobs_per_report"), "{text}");
    let peak = peak_mib(pid(&c));
    eprintln!("collector peak RSS: {before:.0} MiB before, {peak:.0} MiB after the amplified bodies");
    assert!(peak < 200.0, "peak RSS {peak:.0} MiB");
    // Nothing was kept; the refusals are counted.
    assert!(c.get("/api/v1/cluster")["nodes"].as_array().unwrap().is_empty());
    let m = metrics(&c.url);
    assert!(m.contains(r#"jazari_reports_refused_total{reason="too_large",node="unknown"} 3"#), "{m}");
    assert!(m.contains(r#"jazari_reports_refused_total{reason="invalid",node="unknown"} 3"#), "{m}");
    // The collector still takes a normal report.
    assert_eq!(post(&c.url, &c.node_token, once_report("n-amp"), None).0, 200);
}

#[test]
fn healthz_answers_within_100ms_while_hostile_posts_run() {
    let cfg = std::fs::read_to_string(root().join("config/jazari.example.toml"))
        .unwrap()
        .replace("workers = 0", "workers = 1");
    let c = Collector::start_with_config(&cfg);
    // Bodies at the limits: 1024 processes of 1024 distinct users on each of 8 GPUs.
    let mut r: Value = serde_json::from_slice(&once_report("n-hostile")).unwrap();
    let procs: Vec<Value> = (0..1024)
        .map(|u| serde_json::json!({"pid": 10_000 + u, "uid": 50_000 + u, "user": format!("user{u}"), "gpu_mem_bytes": 1}))
        .collect();
    for g in r["gpus"].as_array_mut().unwrap() {
        g["processes"] = Value::Array(procs.clone());
    }
    let body = zstd::encode_all(&serde_json::to_vec(&r).unwrap()[..], 3).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posters: Vec<_> = (0..3)
        .map(|_| {
            let (url, token, body, stop) = (c.url.clone(), c.node_token.clone(), body.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, _) = post(&url, &token, body.clone(), Some("zstd"));
                    assert!(status == 400 || status == 200, "{status}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let client = http();
    let mut worst = Duration::ZERO;
    let mut times = vec![];
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let t = Instant::now();
        let resp = client.get(format!("{}/healthz", c.url)).send().unwrap();
        assert_eq!(resp.status(), 200);
        let d = t.elapsed();
        worst = worst.max(d);
        times.push(d);
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let posted: usize = posters.into_iter().map(|p| p.join().unwrap()).sum();
    times.sort();
    eprintln!(
        "{posted} hostile posts; /healthz over {} probes: median {:?}, worst {worst:?}",
        times.len(),
        times[times.len() / 2]
    );
    assert!(posted >= 3, "the posts ran");
    assert!(worst < Duration::from_millis(100), "/healthz took {worst:?}");
}

/// Reads from `s` until it is closed; returns how long that took (None: still open at `limit`).
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = [0u8; 4096];
    while t.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(t.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(t.elapsed()),
        }
    }
    None
}

#[test]
fn slow_and_idle_clients_are_closed_and_do_not_crowd_out_agents() {
    let cfg = std::fs::read_to_string(root().join("config/jazari.example.toml"))
        .unwrap()
        .replace("max_connections = 4096", "max_connections = 32")
        .replace("header_timeout = \"15s\"", "header_timeout = \"1s\"")
        .replace("body_timeout = \"30s\"", "body_timeout = \"1s\"");
    let c = Collector::start_with_config(&cfg);
    let addr = ("127.0.0.1", c.port);
    // Slowloris: a header byte every 200 ms.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let writer = {
        let mut s = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..30 {
                if s.write_all(b"X").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let t = closed_within(&mut slow, Duration::from_secs(5)).expect("slowloris still open after 5 s");
    assert!(t < Duration::from_secs(3), "closed after {t:?}");
    writer.join().unwrap();
    // A stalled body: headers, 10 of 1,000 bytes, then nothing.
    let mut stalled = TcpStream::connect(addr).unwrap();
    write!(
        stalled,
        "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n0123456789",
        c.node_token
    )
    .unwrap();
    let mut answer = String::new();
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("server.body_timeout"), "{answer}");
    // More idle connections than the cap: an agent still gets in once their timeout passes.
    let idle: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let t = Instant::now();
    let resp = http().get(format!("{}/healthz", c.url)).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(4), "waited {:?}", t.elapsed());
    drop(idle);
}

#[test]
fn a_body_refused_for_its_size_is_answered_not_reset() {
    let c = Collector::start();
    let mut s = TcpStream::connect(("127.0.0.1", c.port)).unwrap();
    write!(
        s,
        "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        c.node_token
    )
    .unwrap();
    // The client goes on sending (it does not wait for an early answer), 64 KiB at a time, for a while.
    let chunk = vec![b' '; 64 << 10];
    for _ in 0..16 {
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut answer = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(answer.contains("ingest.max_body_bytes"), "{answer}");
}

#[test]
fn a_revoked_token_is_refused_within_a_second() {
    let c = Collector::start();
    let secret = token_add(&c.config, &c.store, &["--node", "n-rev"]);
    let report = |seq: u64| {
        let mut r: Value = serde_json::from_slice(&once_report("n-rev")).unwrap();
        r["seq"] = seq.into();
        r["interval_start_ms"] = (r["interval_start_ms"].as_i64().unwrap() + seq as i64 * 1000).into();
        r["interval_end_ms"] = (r["interval_end_ms"].as_i64().unwrap() + seq as i64 * 1000).into();
        serde_json::to_vec(&r).unwrap()
    };
    assert_eq!(post(&c.url, &secret, report(1), None).0, 200);
    let id = secret.trim_start_matches("jzr_").split('_').next().unwrap().to_string();
    let out = Command::new(jazari_bin())
        .args(["token", "revoke", &id, "--config"])
        .arg(&c.config)
        .arg("--store")
        .arg(&c.store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked = Instant::now();
    let mut seq = 2;
    loop {
        let (status, _) = post(&c.url, &secret, report(seq), None);
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(revoked.elapsed() < Duration::from_secs(1), "still accepted {:?} after revoking", revoked.elapsed());
        seq += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("revoked token refused after {:?}", revoked.elapsed());
}

#[test]
fn node_names_are_bounded_by_pattern_and_count() {
    let cfg = std::fs::read_to_string(root().join("config/jazari.example.toml"))
        .unwrap()
        .replace("names = [\"*\"]\nmax_nodes = 20000", "names = [\"gpu-*\", \"dgx?\"]\nmax_nodes = 3");
    let c = Collector::start_with_config(&cfg);
    for n in ["gpu-a1", "gpu-a2", "dgx1"] {
        assert_eq!(post(&c.url, &c.node_token, once_report(n), None).0, 200, "{n}");
    }
    let (status, text) = post(&c.url, &c.node_token, once_report("login1"), None);
    assert_eq!(status, 403);
    assert!(text.contains("nodes.names"), "{text}");
    let (status, text) = post(&c.url, &c.node_token, once_report("gpu-a3"), None);
    assert_eq!(status, 403);
    assert!(text.contains("nodes.max_nodes (3)"), "{text}");
    // Known nodes still report.
    let mut r: Value = serde_json::from_slice(&once_report("gpu-a1")).unwrap();
    r["seq"] = 99.into();
    assert_eq!(post(&c.url, &c.node_token, serde_json::to_vec(&r).unwrap(), None).0, 200);
    let m = metrics(&c.url);
    assert!(m.contains(r#"jazari_reports_refused_total{reason="node_limit",node="unknown"} 1"#), "{m}");
    assert!(m.contains(r#"jazari_reports_refused_total{reason="forbidden",node="unknown"} 1"#), "{m}");
}

#[test]
fn reserved_institute_ids_and_inconsistent_limits_are_refused_at_load() {
    let dir = TempDir::new("reserved");
    let example = std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap();
    let check = |text: String| {
        let f = dir.path().join("c.toml");
        std::fs::write(&f, text).unwrap();
        let out = Command::new(jazari_bin()).arg("check-config").arg(&f).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, err) = check(example.replace("id = \"al-jazari\"", "id = \"unassigned\""));
    assert!(!ok && err.contains("`unassigned` is reserved"), "{err}");
    let (ok, err) = check(example.replace("max_body_bytes = 8388608", "max_body_bytes = 0"));
    assert!(!ok && err.contains("ingest.max_body_bytes"), "{err}");
    let (ok, err) = check(example.replace("max_interval = \"1h\"", "max_interval = \"400d\""));
    assert!(!ok && err.contains("ingest.max_interval"), "{err}");
    let (ok, err) =
        check(example.replace("max_decompressed_bytes = 16777216", "max_decompressed_bytes = 1099511627776"));
    assert!(!ok && err.contains("ingest.max_decompressed_bytes"), "{err}");
}

#[test]
fn times_out_of_range_are_refused_not_wrapped() {
    let c = Collector::start();
    let e = c.admin().get::<Value>(&format!("/api/v1/quotas?at={}", i64::MAX)).unwrap_err().to_string();
    assert!(e.contains("400") && e.contains("outside"), "{e}");
    let mut r: Value = serde_json::from_slice(&once_report("n-time")).unwrap();
    r["interval_start_ms"] = i64::MIN.into();
    let (status, text) = post(&c.url, &c.node_token, serde_json::to_vec(&r).unwrap(), None);
    assert_eq!(status, 400);
    assert!(text.contains("interval_start_ms"), "{text}");
}
