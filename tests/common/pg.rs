//! A real PostgreSQL for tests: the server named by `JAZARI_TEST_POSTGRES`
//! (a URL whose user may create databases), else a private one started from
//! Debian's `postgresql` binaries in a temporary folder (stopped when the
//! test process exits), else none (the caller skips; CI=true fails).
//! Every call gives a new, empty database.

use super::{TempDir, free_port, is_root, skip};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The server's base URL (without database), or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("JAZARI_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Ok(url.trim_end_matches('/').to_string()),
        _ => start_private(),
    })
}

/// A URL of a new, empty database, or None (skipped, with the reason shown).
pub fn database(tag: &str) -> Option<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let base = match server() {
        Ok(b) => b,
        Err(why) => {
            skip(&format!("no PostgreSQL: {why}"));
            return None;
        }
    };
    let name = format!("jz_{tag}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    Some(format!("{base}/{name}"))
}

/// The store location tests use: a fresh PostgreSQL database when
/// `JAZARI_TEST_STORE=postgres` (the suite run against PostgreSQL), else a
/// SQLite file in `dir`.
pub fn store_in(dir: &Path, tag: &str) -> PathBuf {
    if std::env::var("JAZARI_TEST_STORE").as_deref() == Ok("postgres") {
        let url = database(tag).expect("JAZARI_TEST_STORE=postgres needs a PostgreSQL");
        return PathBuf::from(url);
    }
    dir.join("store.sqlite")
}

fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    dirs.sort_by_key(|d| d.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0));
    dirs.into_iter().rev().map(|d| d.join("bin")).find(|b| b.join("initdb").exists())
}

/// Runs a PostgreSQL tool, as the `postgres` user when root (PostgreSQL refuses to run as root).
fn run_pg(bin: &Path, tool: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    let out = cmd.args(args).output().map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{tool} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

static DATA: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
static CA: OnceLock<PathBuf> = OnceLock::new();

/// The CA of the private server's TLS certificate (None for a server given
/// by `JAZARI_TEST_POSTGRES`, or none).
pub fn ca_file() -> Option<PathBuf> {
    server().as_ref().ok()?;
    CA.get().cloned()
}

extern "C" fn stop_private() {
    if let Some((bin, data)) = DATA.get() {
        let _ = run_pg(bin, "pg_ctl", &["-D", &data.to_string_lossy(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(data.parent().unwrap());
    }
}

fn start_private() -> Result<String, String> {
    let bin = pg_bin().ok_or("PostgreSQL is not installed (Debian: postgresql)")?;
    let dir = TempDir::new("pg");
    let root = dir.path().to_path_buf();
    std::mem::forget(dir); // removed by stop_private at exit
    let data = root.join("data");
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ok = Command::new("chown").args(["postgres:postgres"]).arg(&root).status().map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("cannot hand the test folder to the postgres user".into());
        }
    }
    let d = data.to_string_lossy().to_string();
    run_pg(&bin, "initdb", &["-D", &d, "-A", "trust", "-U", "jazari", "--no-sync"])?;
    // TLS offered (sslmode=require), with a certificate of a CA made here.
    let pki = super::tls::Pki::new(&root, "pg");
    let (cert, key) = pki.issue("pg-server", &["127.0.0.1", "localhost"], false);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            Command::new("chown").arg("postgres:postgres").args([&cert, &key]).status().map_err(|e| e.to_string())?;
        }
    }
    CA.set(pki.ca.clone()).ok();
    let port = free_port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c ssl=on \
         -c ssl_cert_file={} -c ssl_key_file={}",
        root.display(),
        cert.display(),
        key.display()
    );
    let log = root.join("log").to_string_lossy().to_string();
    DATA.set((bin.clone(), data.clone())).ok();
    // SAFETY: registering a plain extern "C" function with no arguments.
    unsafe { libc::atexit(stop_private) };
    run_pg(&bin, "pg_ctl", &["-D", &d, "-o", &opts, "-l", &log, "-w", "start"])?;
    Ok(format!("postgres://jazari@127.0.0.1:{port}"))
}

/// The text value of a one-row, one-column query on a store, SQLite or PostgreSQL.
pub fn query_text(store: &Path, sql: &str) -> String {
    let location = store.to_string_lossy();
    if location.starts_with("postgres://") {
        let mut c = postgres::Client::connect(&location, postgres::NoTls).unwrap();
        return c.query_one(sql, &[]).unwrap().get(0);
    }
    rusqlite::Connection::open(store).unwrap().query_row(sql, [], |r| r.get(0)).unwrap()
}
