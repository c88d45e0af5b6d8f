//! The PostgreSQL store against a real PostgreSQL: every read answers as the
//! SQLite store's does for the same reports, and several collectors sharing
//! one database charge exactly what one collector would, whatever collector
//! each batch reaches, replays to another, or a collector killed mid-run.

mod common;

use common::{Collector, TempDir, http, pg};
use jazari::accounting::{Allocations, Amounts, Policy, gpu_charges, same_index};
use jazari::config::{Config, EXAMPLE};
use jazari::store::shared::amount_values;
use jazari::store::{Filter, GroupBy, Keep, Prepared, Resolution, Store, TokenRow};
use jazari_wire::{Gpu, Host, Job, Process, Report, WIRE_VERSION};
use std::collections::BTreeMap;
use std::time::Duration;

const MIN: i64 = 60_000;

/// Node `n`'s report `k` (one minute each from `t0`): GPU 0 held by a job,
/// GPU 1 used by a process outside any job on odd nodes, idle on even ones.
fn report(n: usize, k: i64, t0: i64, instance: &str) -> Report {
    let accounts = ["nlp-lab", "vision-lab", "climate"];
    let users = ["carol", "dave", "erin"];
    let gpu = |i: u32, util: u32, processes: Vec<Process>| Gpu {
        index: i,
        uuid: Some(format!("GPU-{n}-{i}")),
        util_gpu_pct: Some(util),
        power_mw: Some(100_000 + 1000 * n as u32 + k as u32),
        processes,
        ..Default::default()
    };
    let outsider = vec![Process { pid: 7, user: Some(users[(n + 1) % 3].into()), ..Default::default() }];
    Report {
        version: WIRE_VERSION,
        node: format!("pg{n:02}"),
        instance: instance.into(),
        seq: k as u64,
        interval_start_ms: t0 + k * MIN,
        interval_end_ms: t0 + (k + 1) * MIN,
        host: Host::default(),
        gpus: vec![gpu(0, 40 + (k % 50) as u32, vec![]), gpu(1, if n % 2 == 1 { 90 } else { 0 }, outsider)],
        jobs: vec![Job {
            scheduler: "slurm".into(),
            id: format!("{}", 4000 + n),
            account: Some(accounts[n % 3].into()),
            user: Some(users[n % 3].into()),
            gpu_ids: Some(vec![0]),
            processes: 1,
            ..Default::default()
        }],
        events: vec![],
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn same_amounts(what: &str, a: &Amounts, b: &Amounts) {
    for (x, y) in amount_values(a).into_iter().zip(amount_values(b)) {
        assert!(close(x, y), "{what}: SQLite {a:?} vs PostgreSQL {b:?}");
    }
}

#[test]
fn every_read_answers_as_the_sqlite_store_does() {
    let Some(url) = pg::database("reads") else { return };
    let dir = TempDir::new("pg-reads");
    let mut lite = jazari::store::open(&dir.path().join("s.sqlite")).unwrap();
    let mut pg = jazari::store::open(std::path::Path::new(&url)).unwrap();
    assert!(pg.shared() && !lite.shared());
    // Opening again (a second collector, a restart) finds the schema and keeps the data.
    drop(jazari::store::open(std::path::Path::new(&url)).unwrap());

    let cfg = Config::parse(EXAMPLE, std::path::Path::new("example")).unwrap();
    let map = cfg.institute_map();
    let policy = Policy { idle_threshold_pct: 5.0, mig_charge: Default::default() };
    // 2026-03-01T22:30Z: two hours and a half of 6 nodes cross an hour and a day boundary.
    let t0 = 1_772_404_200_000i64;
    let mut stream: Vec<Report> = (0..6).flat_map(|n| (0..150).map(move |k| report(n, k, t0, "a"))).collect();
    // Resends, and a restarted agent whose reports overlap time already charged.
    stream.extend((0..20).map(|k| report(1, k, t0, "a")));
    stream.extend((0..30).map(|k| report(2, k + 100, t0 + 30_000, "b")));
    let now = t0 + 48 * 3_600_000;
    for chunk in stream.chunks(37) {
        let batch = || {
            Prepared::batch(chunk.to_vec(), |r| {
                let allocs = Allocations::from_agent(r, same_index);
                let charges = gpu_charges(r, &map, policy, &allocs);
                (allocs, Some(charges))
            })
        };
        let a = lite.apply(&[batch()], now).unwrap();
        let b = pg.apply(&[batch()], now).unwrap();
        assert_eq!(a, b, "what a batch did differs");
    }
    let (from, to) = (t0 / 1000 - 86_400, t0 / 1000 + 2 * 86_400);
    for g in GroupBy::ALL {
        let (a, b) =
            (lite.usage(from, to, g, &Filter::default()).unwrap(), pg.usage(from, to, g, &Filter::default()).unwrap());
        assert_eq!(a.len(), b.len(), "usage by {g:?}");
        assert!(!a.is_empty());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.key, y.key, "usage by {g:?}: rows in the same order");
            same_amounts(&format!("usage by {g:?}, {}", x.key), &x.amounts, &y.amounts);
        }
    }
    let nodes = vec!["pg01".to_string(), "pg03".to_string()];
    let f = Filter { institute: Some("ibn-sina"), nodes: Some(&nodes) };
    let (a, b) = (lite.usage(from, to, GroupBy::Node, &f).unwrap(), pg.usage(from, to, GroupBy::Node, &f).unwrap());
    assert_eq!(a.iter().map(|r| &r.key).collect::<Vec<_>>(), b.iter().map(|r| &r.key).collect::<Vec<_>>());
    let (a, b) = (lite.ledger_rows(from, to).unwrap(), pg.ledger_rows(from, to).unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.hour, &x.key), (y.hour, &y.key));
        same_amounts("ledger", &x.amounts, &y.amounts);
    }
    let mut a = lite.day_rows(from, to, None).unwrap();
    let mut b = pg.day_rows(from, to, None).unwrap();
    let key =
        |d: &jazari::accounting::DayRow| (d.day, d.institute.clone(), d.account.clone(), d.user.clone(), d.job.clone());
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a.iter().map(key).collect::<Vec<_>>(), b.iter().map(key).collect::<Vec<_>>());
    for (x, y) in a.iter().zip(&b) {
        same_amounts("days", &x.amounts, &y.amounts);
    }
    let mut a = lite.hour_rows(from, to).unwrap();
    let mut b = pg.hour_rows(from, to).unwrap();
    a.sort_by(|x, y| (x.hour, &x.institute).cmp(&(y.hour, &y.institute)));
    b.sort_by(|x, y| (x.hour, &x.institute).cmp(&(y.hour, &y.institute)));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.hour, &x.institute), (y.hour, &y.institute));
        same_amounts("hours", &x.amounts, &y.amounts);
        assert!(close(x.peak_held_gpus, y.peak_held_gpus) && close(x.peak_busy_gpus, y.peak_busy_gpus), "peaks");
    }
    assert_eq!(format!("{:?}", lite.coverage(from, to).unwrap()), format!("{:?}", pg.coverage(from, to).unwrap()));
    let day = t0 / 1000 / 86_400 * 86_400;
    assert_eq!(
        format!("{:?}", lite.coverage_input(day, day + 2 * 86_400).unwrap()),
        format!("{:?}", pg.coverage_input(day, day + 2 * 86_400).unwrap())
    );
    assert_eq!(
        format!("{:?}", lite.coverage_hours(from, to).unwrap()),
        format!("{:?}", pg.coverage_hours(from, to).unwrap())
    );
    assert_eq!(lite.data_since().unwrap(), pg.data_since().unwrap());
    let limits = cfg.ingest.decode_limits();
    let newest = |s: &dyn Store| {
        let mut v: Vec<(String, i64)> =
            s.last_reports(limits).unwrap().into_iter().map(|(r, _)| (r.node, r.interval_end_ms)).collect();
        v.sort();
        v
    };
    assert_eq!(newest(lite.as_ref()), newest(pg.as_ref()));
    assert_eq!(newest(pg.as_ref()).len(), 6);

    // History: raw, then downsampled to minutes and hours and pruned.
    let (f_ms, t_ms) = (t0 - 3_600_000, t0 + 4 * 3_600_000);
    let raw = |s: &dyn Store| format!("{:?}", s.history(Resolution::Raw, f_ms, t_ms, Some("pg03"), None, 50).unwrap());
    assert_eq!(raw(lite.as_ref()), raw(pg.as_ref()));
    let keep =
        Keep { raw_ms: 3_600_000, minute_ms: 48 * 3_600_000, hour_ms: 400 * 86_400_000, dedup_ms: 30 * 86_400_000 };
    let prune_at = t0 + 4 * 3_600_000;
    assert_eq!(lite.downsample_and_prune(prune_at, &keep).unwrap(), pg.downsample_and_prune(prune_at, &keep).unwrap());
    for res in [Resolution::Minute, Resolution::Hour, Resolution::Raw] {
        let (a, b) = (
            lite.history(res, f_ms, t_ms, None, None, 100_000).unwrap(),
            pg.history(res, f_ms, t_ms, None, None, 100_000).unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{res:?} history");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.node, &x.gpu, x.ts_ms), (&y.node, &y.gpu, y.ts_ms));
            assert!(x.util.zip(y.util).is_none_or(|(p, q)| close(p, q)) && x.util.is_some() == y.util.is_some());
        }
        let series = |s: &dyn Store| s.cluster_series(res, f_ms, t_ms, 600_000).unwrap();
        let (a, b) = (series(lite.as_ref()), series(pg.as_ref()));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(x.ts_ms == y.ts_ms && x.gpus == y.gpus && close(x.power_w, y.power_w));
        }
    }
    assert!(!pg.history(Resolution::Hour, f_ms, t_ms, None, None, 10).unwrap().is_empty());

    // Tokens, the shared secret, the outbox.
    for s in [&lite, &pg] {
        let t = TokenRow {
            id: "jzt_0001".into(),
            hash: vec![1, 2, 3],
            role: "node".into(),
            scope: "*".into(),
            created_ms: 5,
            revoked_ms: None,
        };
        s.insert_token(&t).unwrap();
        assert!(s.revoke_token("jzt_0001", 9).unwrap());
        assert!(!s.revoke_token("jzt_0001", 10).unwrap(), "revoked once");
        assert_eq!(s.token("jzt_0001").unwrap().unwrap().revoked_ms, Some(9));
        assert_eq!(s.tokens().unwrap().len(), 1);
        assert_eq!(s.secret("hmac", "first").unwrap(), "first");
        assert_eq!(s.secret("hmac", "second").unwrap(), "first", "the first writer's secret stays");
    }
    for s in [&mut lite, &mut pg] {
        let items: Vec<(String, String)> = (0..5).map(|i| ("ops".to_string(), format!("body {i}"))).collect();
        assert_eq!(s.outbox_push(&items, 100, 4).unwrap(), 1, "the oldest dropped past the cap");
        let due = s.outbox_due(100, 10).unwrap();
        assert_eq!(due.iter().map(|i| i.body.as_str()).collect::<Vec<_>>(), ["body 1", "body 2", "body 3", "body 4"]);
        s.outbox_update(due[0].id, None, None).unwrap();
        s.outbox_update(due[1].id, Some(500), Some("refused")).unwrap();
        assert_eq!(s.outbox_len().unwrap(), 3);
    }
    // A collector that takes due notifications holds them: another does not send them too.
    let other = jazari::store::open(std::path::Path::new(&url)).unwrap();
    assert!(other.outbox_due(200, 10).unwrap().is_empty(), "taken by the first collector");
    assert_eq!(other.outbox_due(200 + 61_000, 10).unwrap().len(), 3, "due again once the lease ran out");
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(url) = pg::database("schema") else { return };
    drop(jazari::store::open(std::path::Path::new(&url)).unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", &[]).unwrap();
    let err = jazari::store::open(std::path::Path::new(&url)).err().expect("refused").to_string();
    assert!(err.contains("schema version 99") && err.contains("upgrade jazari"), "{err}");
    assert!(!url.contains(':') || !err.contains("password"), "{err}");
}

/// Usage by node, job and user, rounded to the GPU-second.
fn usage(c: &Collector) -> BTreeMap<String, Vec<i64>> {
    let mut out = BTreeMap::new();
    for g in ["node", "job", "user", "institute"] {
        for (k, row) in c.usage(g) {
            let fields =
                ["allocated_gpu_seconds", "busy_gpu_seconds", "idle_allocated_gpu_seconds", "unscheduled_gpu_seconds"];
            out.insert(
                format!("{g}={k}"),
                fields.iter().map(|f| row[*f].as_f64().unwrap_or(0.0).round() as i64).collect(),
            );
        }
    }
    out
}

fn post(c: &Collector, reports: &[Report]) -> bool {
    http()
        .post(format!("{}/api/v1/reports", c.url))
        .bearer_auth(&c.node_token)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(reports).unwrap())
        .send()
        .is_ok_and(|r| r.status().is_success())
}

#[test]
fn two_collectors_on_one_database_charge_what_one_collector_would() {
    let Some(url) = pg::database("two") else { return };
    let config = std::fs::read_to_string(common::root().join("config/jazari.example.toml")).unwrap();
    let mut one = Collector::start_on(TempDir::new("pg-one"), &config, url.into());
    let two = one.beside();
    let lone_dir = TempDir::new("pg-lone");
    let lone_store = lone_dir.path().join("s.sqlite");
    let lone = Collector::start_on(lone_dir, &config, lone_store);

    // Ten nodes, two hours of one-minute reports; even nodes send to the first
    // collector, odd ones to the second; batches of 20.
    let t0 = (jazari::time::now_ms() - 3 * 3_600_000) / MIN * MIN;
    let batches: Vec<(usize, Vec<Report>)> = (0..10)
        .flat_map(|n| (0..6).map(move |b| (n, (b * 20..b * 20 + 20).map(|k| report(n, k, t0, "a")).collect())))
        .collect();
    for (i, (n, batch)) in batches.iter().enumerate() {
        assert!(post(&lone, batch));
        if i == 25 {
            // The first collector is killed mid-run; its nodes send to the second meanwhile.
            one.stop();
        }
        if one.proc.is_none() {
            assert!(post(&two, batch), "batch {i} to the second collector while the first is down");
            if i == 35 {
                one.restart();
            }
            continue;
        }
        let (to, other) = if n % 2 == 0 { (&one, &two) } else { (&two, &one) };
        assert!(post(to, batch), "batch {i}");
        if i % 7 == 3 {
            // Acknowledged by one, replayed to the other (an agent behind a load balancer).
            assert!(post(other, batch), "replay of batch {i}");
        }
    }
    // Both collectors show every node, whichever collector took its reports.
    for c in [&one, &two] {
        common::wait_until("both collectors show the ten nodes", Duration::from_secs(15), || {
            let v = c.get("/api/v1/cluster");
            let names = v.to_string();
            (0..10).all(|n| names.contains(&format!("\"pg{n:02}\"")))
        });
    }
    let want = usage(&lone);
    assert!(want.len() > 20, "{want:?}");
    assert_eq!(usage(&one), want, "the first collector's usage equals one SQLite collector's fed the same reports");
    assert_eq!(usage(&two), want, "and so does the second's");

    // A token revoked on the shared store is refused by both collectors within seconds.
    let secret = common::token_add(&one.config, &one.store, &["--node", "pg-revoked"]);
    let mut r = report(0, 170, t0, "rev");
    r.node = "pg-revoked".into();
    for c in [&one, &two] {
        let sent = c.with_token(&secret).post_json("/api/v1/reports", &serde_json::to_vec(&[&r]).unwrap(), None);
        assert!(matches!(sent, Ok((200, _))), "{sent:?}");
    }
    let id = secret.trim_start_matches("jzr_").split('_').next().unwrap().to_string();
    let out = std::process::Command::new(common::jazari_bin())
        .args(["token", "revoke", &id, "--config"])
        .arg(&one.config)
        .arg("--store")
        .arg(&one.store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked = std::time::Instant::now();
    for c in [&one, &two] {
        common::wait_until("the revoked token is refused", Duration::from_secs(5), || {
            r.seq += 1;
            let body = serde_json::to_vec(&[&r]).unwrap();
            matches!(c.with_token(&secret).post_json("/api/v1/reports", &body, None), Ok((401, _)))
        });
    }
    assert!(revoked.elapsed() < Duration::from_secs(3), "{:?}", revoked.elapsed());
}

#[test]
fn one_collector_leads_and_a_lost_connection_is_made_again() {
    let Some(url) = pg::database("lead") else { return };
    let path = std::path::Path::new(&url);
    let a = jazari::store::open(path).unwrap();
    let b = jazari::store::open(path).unwrap();
    assert!(a.lead().unwrap(), "the first to ask leads");
    assert!(a.lead().unwrap(), "and keeps leading");
    assert!(!b.lead().unwrap(), "a second collector does not");
    drop(a);
    // The server lets the lock go once its backend sees the connection closed: soon, not at once.
    common::wait_until("the lock goes with the leader's connection", Duration::from_secs(10), || b.lead().unwrap());

    // The database drops the connection (a restart, an admin): the next use connects again.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let n = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'jazari' AND datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    assert_eq!(n, 1);
    let first = b.ping();
    std::thread::sleep(Duration::from_millis(100));
    b.ping().unwrap_or_else(|e| panic!("connected again after {first:?}: {e}"));
    assert!(b.lead().unwrap(), "and takes the lead again, no one else holding it");
}

#[test]
fn a_collector_on_postgresql_stops_cleanly() {
    let Some(url) = pg::database("stop") else { return };
    let dir = TempDir::new("pg-stop");
    let config = dir.path().join("jazari.toml");
    std::fs::copy(common::root().join("config/jazari.example.toml"), &config).unwrap();
    let port = common::free_port();
    let child = std::process::Command::new(common::jazari_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--store", &url, "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until("the collector answers", Duration::from_secs(15), || {
        http().get(format!("http://127.0.0.1:{port}/readyz")).send().is_ok_and(|r| r.status().is_success())
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !log.contains("panicked"), "{:?}\n{log}", out.status);
    assert!(log.contains("collector stopped"), "{log}");
}

#[test]
fn tls_to_postgresql_checks_the_servers_certificate() {
    let Some(url) = pg::database("tls") else { return };
    let Some(ca) = pg::ca_file() else {
        common::skip("the test PostgreSQL was given (JAZARI_TEST_POSTGRES), without a CA of its TLS certificate");
        return;
    };
    let dir = TempDir::new("pg-tls");
    let list = |store: &str, root: &std::path::Path| {
        std::process::Command::new(common::jazari_bin())
            .args(["token", "list", "--config"])
            .arg(common::root().join("config/jazari.example.toml"))
            .args(["--store", store])
            .env("PGSSLROOTCERT", root)
            .output()
            .unwrap()
    };
    let out = list(&format!("{url}?sslmode=require"), &ca);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A CA that did not sign the server's certificate: refused, and said so.
    let other = common::tls::Pki::new(dir.path(), "other");
    let out = list(&format!("{url}?sslmode=require"), &other.ca);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.to_lowercase().contains("certificate"), "{err}");
    // A CA file that is not there: named.
    let out = list(&format!("{url}?sslmode=require"), &dir.path().join("none.pem"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("PGSSLROOTCERT"), "{err}");
}
