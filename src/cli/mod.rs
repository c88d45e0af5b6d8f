//! The `jazari` command line: the definition of every command and its
//! arguments, one file each, and the dispatcher `main.rs` calls.
//!
//! - [`serve`]: the collector; [`token`]: API tokens; [`config`]: `check-config`, `gen-config`;
//! - [`top`]: the dashboard; [`demo`]: a collector, a simulated cluster and the dashboard;
//! - [`quota`]: burn-downs; [`report`]: usage reports; [`sim`]: simulated agents.

pub mod config;
pub mod demo;
pub mod quota;
pub mod quota_network;
pub mod quota_table;
pub mod report;
pub mod serve;
pub mod sim;
pub mod token;
pub mod top;

use crate::client::ClientError;
use crate::client::network::Target;
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Jazari: watch and account for shared GPU clusters.
#[derive(Parser, Debug)]
#[command(name = "jazari", version = crate::api::VERSION, about, long_about = None)]
#[command(after_help = "\
Environment:
  JAZARI_LOG         log filter, for example `info` or `jazari=debug` (default: info)
  JAZARI_LOG_FORMAT  `json` for one JSON object per log line
Clients also read JAZARI_URL, JAZARI_TOKEN_FILE, JAZARI_CA_FILE, JAZARI_CERT, JAZARI_KEY,
then $XDG_CONFIG_HOME/jazari/client.toml, then /etc/jazari/client.toml.
With several collectors (--url repeated, or [[collector]] tables in the client file),
top, quota and report show every cluster and the network's totals; quota and report
exit with status 3 when a cluster did not answer, after printing the others.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the collector.
    Serve(serve::ServeArgs),
    /// Manage API tokens (node, admin, institute).
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Validate a collector configuration file.
    CheckConfig(config::CheckArgs),
    /// Print a commented example configuration.
    GenConfig,
    /// Simulated agents pushing real reports to a collector (load tests, demos).
    Sim(sim::SimArgs),
    /// Quota burn-down per institute: granted, used, in flight, projection.
    Quota(quota::QuotaArgs),
    /// The dashboard: nodes, GPUs, jobs, institutes and history, live.
    Top(top::TopArgs),
    /// A collector, a simulated cluster and the dashboard on it; no set-up needed.
    Demo(demo::DemoArgs),
    /// Usage summary for a period (funding reviews): csv, json, md or html.
    Report(report::ReportArgs),
    /// Print the shell completion script on stdout (for example
    /// `jazari completions bash > /usr/share/bash-completion/completions/jazari`).
    Completions {
        /// The shell to complete for.
        shell: jazari_wire::cli_docs::Shell,
    },
    /// Write a man page for every command into a folder (jazari.1, jazari-serve.1, ...).
    Man {
        /// Folder to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Where a client finds the collectors (else in `$XDG_CONFIG_HOME/jazari/client.toml`
/// or `/etc/jazari/client.toml`: `url`, `token_file`, `ca_file`, `cert`, `key`,
/// or a `[[collector]]` table for each of several).
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Collector URL; repeat it for several clusters at once (default: the client
    /// file's collectors, else http://127.0.0.1:9470).
    #[arg(long, value_name = "URL", env = "JAZARI_URL")]
    pub url: Vec<String>,
    /// File holding an admin or institute token, for every collector (default: the client file's).
    #[arg(long, value_name = "FILE", env = "JAZARI_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ClientArgs {
    /// Every collector to ask, each with its token and TLS files.
    pub fn targets(&self) -> Result<Vec<Target>> {
        crate::client::network::targets(&self.url, self.token_file.as_deref(), &self.tls.files())
    }
}

/// Some collectors answered and some did not: what was printed holds the
/// others; each line names one that did not. The exit status is
/// [`EXIT_INCOMPLETE`].
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct Incomplete(pub Vec<String>);

/// Exit status of a command for several clusters when one of them did not answer.
pub const EXIT_INCOMPLETE: u8 = 3;

/// The line that names a collector that did not answer:
/// `cluster NAME unreachable: WHY` or `cluster NAME refused: STATUS MESSAGE`.
pub fn failed_line(t: &Target, e: &ClientError) -> String {
    match e {
        ClientError::Unreachable { why, .. } => format!("cluster {} unreachable: {why}", t.label()),
        ClientError::Refused { status, message, .. } => {
            format!("cluster {} refused the request: {status} {}", t.label(), message.trim())
        }
    }
}

/// TLS files of a client (for an https:// collector with a private CA, or mutual TLS).
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PEM CA certificates to trust besides the system's.
    #[arg(long, value_name = "FILE", env = "JAZARI_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key", env = "JAZARI_CERT")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert", env = "JAZARI_KEY")]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn files(&self) -> crate::tls::ClientTls {
        crate::tls::ClientTls::from_args(self.ca_file.as_deref(), self.cert.as_deref(), self.key.as_deref())
    }
}

/// Parses the command line, sets up logging and runs the command.
/// Runs the command line; `dashboard` first when the command draws the
/// dashboard (the binary tunes its allocator there).
pub fn main(dashboard: impl FnOnce()) -> std::process::ExitCode {
    let cli = Cli::parse();
    let draws = matches!(cli.command, Command::Top(_) | Command::Demo(_));
    if draws {
        dashboard();
    }
    // The dashboard owns the terminal: it logs to a file.
    let log_file = draws.then(crate::tui::log_path);
    jazari_wire::logging::init(log_file.as_deref());
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Incomplete>() {
            Some(Incomplete(lines)) => {
                for l in lines {
                    eprintln!("jazari: {l}");
                }
                std::process::ExitCode::from(EXIT_INCOMPLETE)
            }
            None => {
                eprintln!("jazari: {}", jazari_wire::errors::one_line(e.as_ref()));
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Token(t) => token::run(t),
        Command::CheckConfig(a) => config::check(a),
        Command::GenConfig => config::generate(),
        Command::Sim(a) => sim::run(a),
        Command::Quota(a) => quota::run(a),
        Command::Top(a) => top::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Report(a) => report::run(a),
        Command::Completions { shell } => {
            jazari_wire::cli_docs::completions(<Cli as clap::CommandFactory>::command(), shell, &mut std::io::stdout());
            Ok(())
        }
        Command::Man { out } => {
            let files = jazari_wire::cli_docs::man_pages(<Cli as clap::CommandFactory>::command(), &out)?;
            eprintln!("wrote {} man pages into {}", files.len(), out.display());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_option_and_command_has_help() {
        let missing = jazari_wire::cli_docs::undocumented(<super::Cli as clap::CommandFactory>::command());
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
