//! TLS between real processes, with certificates made in the test: the
//! collector with `[tls]` answers HTTPS only; clients trust a private CA;
//! mutual TLS lets a node's certificate stand for its token (for the node
//! it names only); certificates are reloaded on SIGHUP.

mod common;
use common::tls::Pki;
use common::*;
use jazari::client::Client;
use jazari::tls::ClientTls;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A collector with `[tls]` (and mutual TLS when `client_ca`), its URL https://localhost:PORT.
fn tls_collector(dir: &Path, pki: &Pki, client_ca: Option<&Path>, require: bool) -> Collector {
    let (cert, key) = pki.issue("collector", &["localhost", "127.0.0.1"], false);
    let mut tls = format!("\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n", cert.display(), key.display());
    if let Some(ca) = client_ca {
        tls +=
            &format!("client_ca = \"{}\"\nrequire_client_cert = {require}\nnode_names = [\"gpu-*\"]\n", ca.display());
    }
    let _ = dir;
    let cfg = std::fs::read_to_string(root().join("config/jazari.example.toml")).unwrap() + &tls;
    let mut c = Collector::start_with_config(&cfg);
    c.url = format!("https://localhost:{}", c.port);
    c
}

fn client(c: &Collector, token: &str, ca: Option<&Path>, cert: Option<(&Path, &Path)>) -> anyhow::Result<Client> {
    let tls = ClientTls {
        ca_file: ca.map(Path::to_path_buf),
        cert: cert.map(|c| c.0.to_path_buf()),
        key: cert.map(|c| c.1.to_path_buf()),
    };
    Client::with_tls(&c.url, token, Duration::from_secs(10), &tls)
}

#[test]
fn https_only_with_a_private_ca() {
    let dir = TempDir::new("tls");
    let pki = Pki::new(dir.path(), "site");
    let c = tls_collector(dir.path(), &pki, None, false);
    // Trusting the CA: reads work.
    let admin = client(&c, &c.admin, Some(&pki.ca), None).unwrap();
    let v: Value = admin.get("/api/v1/cluster").unwrap();
    assert!(v["nodes"].is_array());
    // Without it: the certificate is refused, and the error says so.
    let e = client(&c, &c.admin, None, None).unwrap().get::<Value>("/api/v1/cluster").unwrap_err().to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = http().get(format!("http://127.0.0.1:{}/healthz", c.port)).send();
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // A report over TLS with a token.
    let node = client(&c, &c.node_token, Some(&pki.ca), None).unwrap();
    let (status, body) = node.post_json("/api/v1/reports", &once_report("gpu-tls"), Some(3)).unwrap();
    assert_eq!(status, 200, "{body}");
    // The `jazari quota` command over TLS, with --ca-file.
    let out = std::process::Command::new(jazari_bin())
        .args(["quota", "--url", &c.url, "--token-file"])
        .arg(&c.admin_file)
        .arg("--ca-file")
        .arg(&pki.ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ibn-sina"));
    // And without it, the command says why it cannot connect.
    let out = std::process::Command::new(jazari_bin())
        .args(["quota", "--url", &c.url, "--token-file"])
        .arg(&c.admin_file)
        .env_remove("JAZARI_CA_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).to_lowercase().contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_node_certificate_stands_for_its_token_for_its_own_node_only() {
    let dir = TempDir::new("mtls");
    let site = Pki::new(dir.path(), "site");
    let nodes = Pki::new(dir.path(), "nodes");
    let c = tls_collector(dir.path(), &site, Some(&nodes.ca), false);
    let (cert, key) = nodes.issue("gpu-7", &["gpu-7"], true);
    let with_cert = client(&c, "", Some(&site.ca), Some((&cert, &key))).unwrap();
    let (status, body) = with_cert.post_json("/api/v1/reports", &once_report("gpu-7"), None).unwrap();
    assert_eq!(status, 200, "{body}");
    // Its certificate does not name gpu-8.
    let (status, body) = with_cert.post_json("/api/v1/reports", &once_report("gpu-8"), None).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("gpu-8"), "{body}");
    // A certificate from another CA is refused at the handshake.
    let other = Pki::new(dir.path(), "other");
    let (oc, ok) = other.issue("gpu-9", &["gpu-9"], true);
    let e = client(&c, "", Some(&site.ca), Some((&oc, &ok))).unwrap().post_json(
        "/api/v1/reports",
        &once_report("gpu-9"),
        None,
    );
    assert!(e.is_err() || e.unwrap().0 == 401);
    // No certificate, no token: 401.
    let bare = client(&c, "", Some(&site.ca), None).unwrap();
    assert_eq!(bare.post_json("/api/v1/reports", &once_report("gpu-7"), None).unwrap().0, 401);
    // A certificate reads nothing: reads still need an admin or institute token.
    assert!(with_cert.get::<Value>("/api/v1/cluster").unwrap_err().to_string().contains("401"));
    let n: Value = client(&c, &c.admin, Some(&site.ca), None).unwrap().get("/api/v1/nodes/gpu-7").unwrap();
    assert_eq!(n["name"], "gpu-7");
}

#[test]
fn required_client_certificates_and_a_reload_on_sighup() {
    let dir = TempDir::new("mtls-req");
    let site = Pki::new(dir.path(), "site");
    let nodes = Pki::new(dir.path(), "nodes");
    let c = tls_collector(dir.path(), &site, Some(&nodes.ca), true);
    let (cert, key) = nodes.issue("gpu-1", &["gpu-1"], true);
    // Without a certificate the handshake fails, token or not.
    assert!(client(&c, &c.admin, Some(&site.ca), None).unwrap().get::<Value>("/api/v1/cluster").is_err());
    let admin = client(&c, &c.admin, Some(&site.ca), Some((&cert, &key))).unwrap();
    let _: Value = admin.get("/api/v1/cluster").unwrap();
    // A new server certificate from a new CA, then SIGHUP: new connections see it.
    let renewed = Pki::new(dir.path(), "renewed");
    let (nc, nk) = renewed.issue("collector-new", &["localhost", "127.0.0.1"], false);
    std::fs::copy(&nc, dir.path().join("collector.pem")).unwrap();
    std::fs::copy(&nk, dir.path().join("collector.key")).unwrap();
    let pid = c.proc.as_ref().unwrap().0.id() as i32;
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    wait_until("the new certificate served", Duration::from_secs(10), || {
        client(&c, &c.admin, Some(&renewed.ca), Some((&cert, &key))).unwrap().get::<Value>("/api/v1/cluster").is_ok()
    });
    assert!(
        client(&c, &c.admin, Some(&site.ca), Some((&cert, &key))).unwrap().get::<Value>("/api/v1/cluster").is_err()
    );
    // A broken file on SIGHUP keeps the certificate being served.
    std::fs::write(dir.path().join("collector.key"), "not a key").unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    std::thread::sleep(Duration::from_millis(500));
    let _: Value =
        client(&c, &c.admin, Some(&renewed.ca), Some((&cert, &key))).unwrap().get("/api/v1/cluster").unwrap();
}

#[test]
fn the_agent_pushes_to_the_collector_over_mutual_tls() {
    // The real agent and the real collector: HTTPS with a private CA, and a client
    // certificate the collector requires.
    let dir = TempDir::new("agent-tls");
    let site = Pki::new(dir.path(), "site");
    let nodes = Pki::new(dir.path(), "nodes");
    let c = tls_collector(dir.path(), &site, Some(&nodes.ca), true);
    let (cert, key) = nodes.issue("gpu-a7", &["gpu-a7"], true);
    let spool = TempDir::new("spool");
    let (ca, cert, key) = (site.ca.display().to_string(), cert.display().to_string(), key.display().to_string());
    let tls = ["--interval", "200ms", "--count", "3", "--ca-file", &ca, "--cert", &cert, "--key", &key];
    let out = agent_run(&c.url, &c.node_token_file, spool.path(), "gpu-a7", &tls).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The collector wants a certificate from everyone: the admin has one too.
    let (ops_cert, ops_key) = nodes.issue("ops", &["ops"], true);
    let admin = client(&c, &c.admin, Some(&site.ca), Some((&ops_cert, &ops_key))).unwrap();
    let cov: Value = admin.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01").unwrap();
    let node = cov["nodes"].as_array().unwrap().iter().find(|n| n["node"] == "gpu-a7").cloned();
    assert_eq!(node.map(|n| n["reports"].clone()), Some(serde_json::json!(3)), "{cov}");
    // Without its certificate the handshake fails, the agent says why, and the reports wait.
    let spool2 = TempDir::new("spool2");
    let out = agent_run(&c.url, &c.node_token_file, spool2.path(), "gpu-a8", &tls[..6])
        .arg("--linger")
        .arg("1s")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(log.contains("certificate") || log.contains("tls") || log.contains("handshake"), "{log}");
    let cov: Value = admin.get("/api/v1/coverage?from=2000-01-01&to=2100-01-01").unwrap();
    assert!(!cov["nodes"].as_array().unwrap().iter().any(|n| n["node"] == "gpu-a8"), "{cov}");
}
