//! The PostgreSQL store, for several collectors sharing one database: the
//! same tables and semantics as the SQLite store.
//!
//! - Exactly-once across collectors: an ingest transaction first takes a
//!   transaction-scoped advisory lock per node (in one order), then loads
//!   what was delivered and charged for those nodes, plans and writes; a
//!   batch acknowledged by one collector and replayed to another finds its
//!   record and charges nothing.
//! - Writes go in one statement per table (`INSERT … SELECT FROM UNNEST`
//!   of column arrays), rows sorted by key so concurrent writers lock rows
//!   in the same order; a deadlock or serialisation failure is retried.
//! - [`write`]: the ingest and settle transactions; [`reads`]: the ledger,
//!   coverage and tokens; [`history`]: history, downsampling and pruning;
//!   [`state`]: runs, findings and the outbox.

mod history;
mod reads;
mod state;
mod write;

use super::{
    Applied, CoverageRow, Filter, GroupBy, HistoryPoint, Keep, OutboxItem, Prepared, Resolution, Result, Settled,
    Store, StoreError, TokenRow, UsageRow,
};
use crate::accounting::{Charge, DayRow, GpuCharge, HourRow};
use crate::api::findings::Finding;
use crate::quota::UseRow;
use crate::report::CoverageInput;
use crate::report::coverage::CoveredHour;
use crate::scheduler::history::Run;
use jazari_wire::Report;
use postgres::error::SqlState;
use postgres::{Client, NoTls};
use std::cell::RefCell;
use std::path::PathBuf;

/// The version this build writes (the same numbering as the SQLite store's).
pub const SCHEMA_VERSION: i64 = 3;
const SCHEMA: &str = include_str!("schema.sql");

/// Advisory lock class of Jazari's locks (the other key is a hash of the node name).
const LOCK_CLASS: i32 = 0x4a5a;
/// The lock held while the schema is created or upgraded.
const SCHEMA_LOCK: i32 = 1;
/// The lock held while history is downsampled and pruned (one collector at a time).
const PRUNE_LOCK: i32 = 2;
/// The lock the collector that sends notifications and records findings holds.
const LEAD_LOCK: i32 = 3;

pub use crate::config::store_url::{is_url, redact};

/// One connection to the database.
pub struct PgStore {
    /// Always Some but in `drop`.
    client: RefCell<Option<Client>>,
    /// How to connect again after the connection is lost (a database restart).
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The URL without its password.
    shown: String,
    /// Whether this connection holds the leader's lock.
    leading: std::cell::Cell<bool>,
}

impl PgStore {
    /// Connects (10 s timeout unless the URL sets `connect_timeout`) and
    /// creates or upgrades the schema.
    pub fn open(url: &str) -> Result<Self> {
        let shown = redact(url);
        let err = |source| StoreError::Postgres { store: shown.clone(), source };
        let mut config: postgres::Config = url.parse().map_err(err)?;
        // As libpq does: a password not in the URL may come from PGPASSWORD.
        if config.get_password().is_none()
            && let Ok(p) = std::env::var("PGPASSWORD")
        {
            config.password(p);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("jazari");
        }
        let tls = tls_for(&config).map_err(|message| StoreError::Config { store: shown.clone(), message })?;
        let client = outside_runtime(|| connect(&config, &tls)).map_err(err)?;
        let s = PgStore { client: RefCell::new(Some(client)), config, tls, shown, leading: Default::default() };
        s.migrate()?;
        Ok(s)
    }

    fn err(&self) -> impl Fn(postgres::Error) -> StoreError + '_ {
        |source| StoreError::Postgres { store: self.shown.clone(), source }
    }

    /// Runs `f` on the connection, connecting again first when it was lost
    /// (the operation that found it lost failed; this one goes through).
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> std::result::Result<T, postgres::Error>) -> Result<T> {
        let mut guard = self.client.borrow_mut();
        let c = guard.as_mut().expect("the connection is there until the store is dropped");
        outside_runtime(|| {
            if c.is_closed() {
                self.leading.set(false);
                *c = connect(&self.config, &self.tls)?;
                tracing::info!(store = %self.shown, "connected to the store again");
            }
            f(c)
        })
        .map_err(self.err())
    }

    /// Takes the leader's lock if no other collector holds it (held while
    /// this connection lives); true while this connection holds it.
    pub(super) fn take_lead(&self) -> Result<bool> {
        if self.leading.get() {
            self.with(|c| c.simple_query("SELECT 1"))?;
            if self.leading.get() {
                return Ok(true);
            }
        }
        let got: bool =
            self.with(|c| c.query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LOCK_CLASS, &LEAD_LOCK]))?.get(0);
        self.leading.set(got);
        Ok(got)
    }

    /// Runs `f` in a transaction and commits; a deadlock or serialisation
    /// failure (another collector's transaction) rolls back and runs it again.
    fn transaction<T>(
        &self,
        mut f: impl FnMut(&mut postgres::Transaction) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = self.with(|c| {
                let mut tx = c.transaction()?;
                let out = f(&mut tx)?;
                tx.commit()?;
                Ok(out)
            });
            match res {
                Err(StoreError::Postgres { source, .. }) if attempt < 5 && retryable(&source) => {
                    tracing::debug!(attempt, "store transaction retried: {source}");
                    std::thread::sleep(std::time::Duration::from_millis(5 * attempt));
                }
                other => return other,
            }
        }
    }

    fn migrate(&self) -> Result<()> {
        let found = self.transaction(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1, $2)", &[&LOCK_CLASS, &SCHEMA_LOCK])?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);")?;
            let found: Option<i64> = tx
                .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])?
                .and_then(|r| r.get::<_, String>(0).parse().ok());
            if found.is_some_and(|v| v > SCHEMA_VERSION) {
                return Ok(found);
            }
            // Versions below 3 never existed for PostgreSQL; later steps go here, oldest first.
            tx.batch_execute(SCHEMA)?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', $1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                &[&SCHEMA_VERSION.to_string()],
            )?;
            Ok(found)
        })?;
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                Err(StoreError::TooNew { path: PathBuf::from(&self.shown), found: v, supported: SCHEMA_VERSION })
            }
            _ => Ok(()),
        }
    }
}

impl Store for PgStore {
    super::store_methods!();
    fn ping(&self) -> Result<()> {
        self.with(|c| c.simple_query("SELECT 1")).map(drop)
    }
    fn secret(&self, name: &str, random: &str) -> Result<String> {
        self.shared_secret(name, random)
    }
    fn pending_count(&self) -> Result<u64> {
        self.count("pending")
    }
    fn outbox_len(&self) -> Result<u64> {
        self.count("outbox")
    }
    fn last_reports(&self, limits: jazari_wire::DecodeLimits) -> Result<Vec<(Report, i64)>> {
        Ok(self.node_reports(limits, i64::MIN)?.0)
    }
    fn shared(&self) -> bool {
        true
    }
    fn lead(&self) -> Result<bool> {
        self.take_lead()
    }
    fn reports_stored_since(
        &self,
        limits: jazari_wire::DecodeLimits,
        since_ms: i64,
    ) -> Result<(Vec<(Report, i64)>, i64)> {
        self.node_reports(limits, since_ms)
    }
}

impl Drop for PgStore {
    /// The client closes its connection on its own runtime: off the
    /// collector's runtime threads (a store dropped at shutdown).
    fn drop(&mut self) {
        let client = self.client.get_mut().take();
        outside_runtime(move || drop(client));
    }
}

fn connect(
    config: &postgres::Config,
    tls: &Option<tokio_postgres_rustls::MakeRustlsConnect>,
) -> std::result::Result<Client, postgres::Error> {
    match tls {
        Some(tls) => config.connect(tls.clone()),
        None => config.connect(NoTls),
    }
}

/// TLS to the database with `sslmode=require`: the server's certificate is
/// checked (unlike libpq's `require`) against the CA file `PGSSLROOTCERT`
/// names, else the system's roots. Otherwise (`disable`, `prefer`, the
/// default) the connection is plain.
fn tls_for(config: &postgres::Config) -> std::result::Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    if config.get_ssl_mode() != postgres::config::SslMode::Require {
        return Ok(None);
    }
    crate::tls::install_provider();
    let builder = rustls::ClientConfig::builder();
    let tls = match std::env::var_os("PGSSLROOTCERT") {
        Some(file) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&file)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("PGSSLROOTCERT={}: {e}", file.to_string_lossy()))?;
            for c in certs {
                roots.add(c).map_err(|e| format!("PGSSLROOTCERT={}: {e}", file.to_string_lossy()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder
                .with_platform_verifier()
                .map_err(|e| format!("the system's CA certificates: {e}"))?
                .with_no_client_auth()
        }
    };
    Ok(Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
}

fn retryable(e: &postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
}

/// The blocking client runs its own small runtime: on a thread of the
/// collector's runtime it must first leave it (block_in_place).
fn outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Text sorted as SQLite sorts it (bytes), whatever the database's collation.
const C: &str = "COLLATE \"C\"";

/// A column name as PostgreSQL needs it (`user` is a reserved word).
fn col(name: &str) -> &str {
    if name == "user" { "\"user\"" } else { name }
}

/// Parameters of one statement.
type Params<'a> = Vec<&'a (dyn postgres::types::ToSql + Sync)>;
