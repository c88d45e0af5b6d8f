//! The real agent pushing over HTTPS to a rustls stand-in collector whose
//! certificates come from a CA made for the test: a private CA, mutual TLS,
//! and the failures an operator has to see.

mod common;
use common::collector::{Answer, Collector};
use common::process::{Agent, TempDir, agent_command};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;

/// A CA, a server certificate for `localhost` and a client certificate, on disk
/// (PEM) and as server configurations.
struct Pki {
    dir: TempDir,
    /// Server configuration without and with client certificates required.
    server: Arc<rustls::ServerConfig>,
    mutual: Arc<rustls::ServerConfig>,
}

impl Pki {
    fn new() -> Self {
        let dir = TempDir::new("tls");
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "Jazari test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, name);
            p.extended_key_usages = vec![usage];
            (p.signed_by(&key, &ca).unwrap(), key)
        };
        let (server_cert, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf("node-01", ExtendedKeyUsagePurpose::ClientAuth);
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("node.pem"), client_cert.pem()).unwrap();
        std::fs::write(dir.join("node.key"), client_key.serialize_pem()).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone()];
        let key = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = || {
            rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap()
        };
        let server = builder().with_no_client_auth().with_single_cert(chain.clone(), key()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
        let mutual = builder().with_client_cert_verifier(verifier).with_single_cert(chain, key()).unwrap();
        std::fs::write(dir.join("token"), "tls-token\n").unwrap();
        Self { dir, server: Arc::new(server), mutual: Arc::new(mutual) }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn spool(&self) -> String {
        self.file("spool")
    }

    /// `run --count N` towards `url` with these extra arguments.
    fn run(&self, url: &str, n: u32, extra: &[&str]) -> Agent {
        let (tok, spool, n) = (self.file("token"), self.spool(), n.to_string());
        let mut args = vec![
            "run",
            "--collector",
            url,
            "--token-file",
            &tok,
            "--spool-dir",
            &spool,
            "--count",
            &n,
            "--interval",
            "50ms",
        ];
        args.extend_from_slice(extra);
        Agent::spawn(&args)
    }

    /// Reports waiting in the spool, as `spool inspect` says.
    fn waiting(&self) -> u64 {
        let out = agent_command().args(["spool", "inspect", "--json", "--spool-dir", &self.spool()]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["waiting"].as_u64().unwrap()
    }
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

#[test]
fn pushes_over_https_to_a_collector_with_a_private_ca() {
    let pki = Pki::new();
    let c = Collector::start_tls(pki.server.clone(), |_| Answer::ok());
    let ca = pki.file("ca.pem");
    let (exit, log) = pki.run(&c.https_url(), 3, &["--ca-file", &ca, "--linger", "20s"]).wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    assert_eq!(sorted(c.accepted()), [0, 1, 2], "{log}");
    assert!(c.tls_failures().is_empty(), "{:?}", c.tls_failures());
    assert_eq!(pki.waiting(), 0);
}

#[test]
fn mutual_tls_with_the_files_from_the_agent_config() {
    let pki = Pki::new();
    let c = Collector::start_tls(pki.mutual.clone(), |_| Answer::ok());
    let config = pki.dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "collector = {:?}\ntoken_file = {:?}\nspool_dir = {:?}\nca_file = {:?}\ncert = {:?}\nkey = {:?}\n",
            c.https_url(),
            pki.file("token"),
            pki.spool(),
            pki.file("ca.pem"),
            pki.file("node.pem"),
            pki.file("node.key")
        ),
    )
    .unwrap();
    let agent = Agent::spawn(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--count",
        "2",
        "--interval",
        "50ms",
        "--linger",
        "20s",
    ]);
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    assert_eq!(sorted(c.accepted()), [0, 1], "{log}");
}

#[test]
fn an_untrusted_collector_is_refused_said_once_and_reports_stay_in_the_spool() {
    let pki = Pki::new();
    let c = Collector::start_tls(pki.server.clone(), |_| Answer::ok());
    // No --ca-file: the system's CAs do not know the test CA.
    let agent = pki.run(&c.https_url(), 3, &["--max-backoff", "500ms", "--linger", "3s"]);
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    assert!(c.accepted().is_empty());
    assert!(c.tls_failures().len() >= 2, "tried more than once: {:?}", c.tls_failures());
    let said: Vec<_> = log.lines().filter(|l| l.contains("TLS handshake with")).collect();
    assert_eq!(said.len(), 1, "once per change of state:\n{log}");
    assert!(said[0].contains("UnknownIssuer") && said[0].contains("give --ca-file"), "{}", said[0]);
    assert_eq!(pki.waiting(), 3, "reports stay in the spool");
    // Once trusted, the same spool is delivered.
    let ca = pki.file("ca.pem");
    let (exit, log) = pki.run(&c.https_url(), 1, &["--ca-file", &ca, "--linger", "20s"]).wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    assert_eq!(c.accepted().len(), 4, "{log}");
}

#[test]
fn a_collector_that_wants_a_client_certificate_says_so() {
    let pki = Pki::new();
    let c = Collector::start_tls(pki.mutual.clone(), |_| Answer::ok());
    let ca = pki.file("ca.pem");
    let agent = pki.run(&c.https_url(), 2, &["--ca-file", &ca, "--max-backoff", "500ms", "--linger", "2s"]);
    let (exit, log) = agent.wait(Duration::from_secs(60));
    assert!(exit.success(), "{log}");
    assert!(c.accepted().is_empty());
    assert!(log.contains("give --cert and --key"), "{log}");
    assert_eq!(pki.waiting(), 2);
}

#[test]
fn tls_files_that_cannot_be_used_are_named() {
    let pki = Pki::new();
    std::fs::write(pki.dir.join("empty.pem"), "not a certificate\n").unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--ca-file", "/nonexistent/ca.pem"], "cannot read the CA file /nonexistent/ca.pem"),
        (&["--ca-file", &pki.file("empty.pem")], "holds no PEM certificate"),
        (&["--cert", &pki.file("node.pem")], "needs both --cert and --key"),
        (&["--cert", &pki.file("node.pem"), "--key", &pki.file("ca.pem")], "do not make a TLS identity"),
    ];
    for (args, want) in cases {
        let out = agent_command()
            .args(["run", "--collector", "https://localhost:1", "--token-file", &pki.file("token")])
            .args(["--spool-dir", &pki.spool()])
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    // The same from the environment.
    let out = agent_command()
        .args(["run", "--collector", "https://localhost:1", "--token-file", &pki.file("token")])
        .args(["--spool-dir", &pki.spool()])
        .env("JAZARI_CA_FILE", "/nonexistent/env-ca.pem")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/env-ca.pem"));
}
