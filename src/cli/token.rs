//! `jazari token add|list|revoke`: API tokens, made and listed on the collector host.

use crate::auth::{self, Role};
use crate::config::Config;
use crate::store::Store;
use crate::time::{format_rfc3339, now_ms};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// The collector configuration and store a command works on.
#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Collector configuration (TOML).
    #[arg(long, value_name = "FILE", default_value = crate::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Store: a SQLite file, or a postgres:// URL (overrides `store` in the config).
    #[arg(long, value_name = "STORE")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// The configuration and the store it names (or `--store`), opened.
    pub fn open(&self) -> Result<(Config, Box<dyn Store>)> {
        let cfg = Config::load(&self.config)?;
        let path = self.store.clone().unwrap_or_else(|| cfg.store.clone());
        let store = crate::store::open(&path).context("opening the store")?;
        Ok((cfg, store))
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token and print its secret once.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// A token for an agent: reports for this node only, or for any node with '*'.
        #[arg(long, value_name = "NAME", group = "role")]
        node: Option<String>,
        /// A token that reads everything.
        #[arg(long, group = "role")]
        admin: bool,
        /// A token that reads what concerns one institute.
        #[arg(long, value_name = "ID", group = "role")]
        institute: Option<String>,
        /// Write the secret to this file (created with mode 0600; never
        /// overwritten) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List tokens (ids and roles; secrets are never stored).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by id.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// Token id, as `token list` shows it.
        id: String,
    },
}

pub fn run(cmd: TokenCmd) -> Result<()> {
    let now = now_ms();
    match cmd {
        TokenCmd::Add { store, node, admin, institute, out } => {
            // The file first (so an existing one is refused before a token is made).
            let mut file = out.as_ref().map(|p| create_secret_file(p)).transpose()?;
            let cleanup = |p: &Option<PathBuf>| {
                if let Some(p) = p {
                    let _ = std::fs::remove_file(p);
                }
            };
            let made = add(&store, node, admin, institute, now);
            let (id, secret, what) = match made {
                Ok(x) => x,
                Err(e) => {
                    cleanup(&out);
                    return Err(e);
                }
            };
            match (&mut file, &out) {
                (Some(f), Some(p)) => {
                    use std::io::Write;
                    if let Err(e) = writeln!(f, "{secret}").and_then(|()| f.sync_all()) {
                        cleanup(&out);
                        bail!(
                            "writing {}: {e} (token {id} was made: revoke it with `jazari token revoke {id}`)",
                            p.display()
                        );
                    }
                    eprintln!("Created token {id} ({what}); its secret is in {} (mode 0600).", p.display());
                }
                _ => {
                    eprintln!(
                        "Created token {id} ({what}). Its secret is shown once; keep it in a file readable only by \
                         its user (or use --out FILE):"
                    );
                    println!("{secret}");
                }
            }
            Ok(())
        }
        TokenCmd::List { store } => {
            let (_, s) = store.open()?;
            println!("{:<10} {:<10} {:<24} {:<21} STATE", "ID", "ROLE", "SCOPE", "CREATED");
            for t in s.tokens()? {
                let state = match t.revoked_ms {
                    Some(ms) => format!("revoked {}", format_rfc3339(ms)),
                    None => "active".into(),
                };
                println!(
                    "{:<10} {:<10} {:<24} {:<21} {state}",
                    t.id,
                    t.role,
                    if t.scope.is_empty() { "-" } else { &t.scope },
                    format_rfc3339(t.created_ms)
                );
            }
            Ok(())
        }
        TokenCmd::Revoke { store, id } => {
            let (_, s) = store.open()?;
            if !s.revoke_token(&id, now)? {
                bail!("no active token `{id}`; `jazari token list` shows the ids");
            }
            println!("revoked {id}; collectors stop accepting it within a second");
            Ok(())
        }
    }
}

/// Creates a token file readable by its user only; refuses an existing one.
fn create_secret_file(p: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            anyhow::anyhow!("{} already exists: give another --out, or remove it first", p.display())
        }
        _ => anyhow::anyhow!("cannot create {}: {e}", p.display()),
    })
}

/// Makes the token: (id, secret, what it is for).
fn add(
    store: &StoreArgs,
    node: Option<String>,
    admin: bool,
    institute: Option<String>,
    now: i64,
) -> Result<(String, String, String)> {
    let (cfg, s) = store.open()?;
    let role = match (node, admin, institute) {
        (Some(n), false, None) => Role::Node(n),
        (None, true, None) => Role::Admin,
        (None, false, Some(i)) => {
            if cfg.institute(&i).is_none() {
                bail!("no institute `{i}` in {}; known institutes: {}", store.config.display(), cfg.institute_ids());
            }
            Role::Institute(i)
        }
        _ => bail!("say what the token is for: --node NAME, --admin or --institute ID"),
    };
    let (id, secret) = auth::create(s.as_ref(), &role, now)?;
    let (kind, scope) = role.parts();
    let what = if scope.is_empty() { kind.to_string() } else { format!("{kind} {scope}") };
    Ok((id, secret, what))
}
