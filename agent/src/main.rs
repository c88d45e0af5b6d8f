//! `jazari-agent`: the node agent binary. The commands live in `cli/`.

mod cli;

/// This build's version and commit (`--version`, the start-up line).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("JAZARI_AGENT_COMMIT"), ")");

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use jazari_agent::sampler::{Sampler, SamplerOptions};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Jazari node agent: reads the GPUs (NVML), the host and the jobs on this
/// node and reports them to the Jazari collector.
#[derive(Parser, Debug)]
#[command(name = "jazari-agent", version = VERSION, about, long_about = None)]
#[command(after_help = "\
Environment:
  JAZARI_NVML_LIB    NVML library to load (same as --nvml-lib)
  JAZARI_PROC_ROOT   process table to read (same as --proc-root)
  JAZARI_CA_FILE, JAZARI_CERT, JAZARI_KEY   TLS files (same as --ca-file, --cert, --key)
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY         proxy towards the collector
  JAZARI_LOG         log filter, for example `info` or `jazari_agent=debug` (default: info)
  JAZARI_LOG_FORMAT  `json` for one JSON object per log line

Logs go to stderr. Reports go to stdout (`once`, `run --stdout`) or to the collector (`run`).
Example: jazari-agent run --collector https://collector:9470 --token-file /etc/jazari/node.token --ca-file /etc/jazari/ca.pem")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// NVML library to load instead of the system's libnvidia-ml.so.
    #[arg(long, global = true, env = "JAZARI_NVML_LIB", value_name = "PATH")]
    nvml_lib: Option<OsString>,
    /// Node name to report (default: the host name without its domain).
    #[arg(long, global = true, value_name = "NAME")]
    node: Option<String>,
    /// Root of the process table used to attribute GPU processes to users and jobs.
    #[arg(long, global = true, env = "JAZARI_PROC_ROOT", value_name = "DIR", default_value = "/proc")]
    proc_root: PathBuf,
    /// Which processes' jobs the agent reports: every process's (a real node), or only
    /// its own descendants' (tests, which must not see other jobs of the host they run on).
    #[arg(long, global = true, env = "JAZARI_PROC_SCOPE", value_enum, default_value = "all")]
    proc_scope: ProcScope,
}

/// `--proc-scope`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ProcScope {
    /// Every process on the node.
    All,
    /// The agent's own descendants only.
    Descendants,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Take one sample and print it as a JSON report on stdout.
    Once {
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
    },
    /// Sample on a fixed schedule and push each report to the collector (or print it with --stdout).
    Run(cli::run::RunArgs),
    /// Look into the on-disk spool, or send what it holds now.
    #[command(subcommand)]
    Spool(cli::spool::SpoolCommand),
    /// Print the shell completion script on stdout (for example
    /// `jazari-agent completions bash > /usr/share/bash-completion/completions/jazari-agent`).
    Completions {
        /// The shell to complete for.
        shell: jazari_wire::cli_docs::Shell,
    },
    /// Write a man page for every command into a folder (jazari-agent.1, jazari-agent-run.1, ...).
    Man {
        /// Folder to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    // One malloc arena for the sampler, the sender and the runtime's threads:
    // glibc's default of one per thread costs resident memory on every node for
    // no speed the agent needs.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator tunable; no allocation is live on another thread yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let cli = Cli::parse();
    jazari_wire::logging::init(None);
    let done = match &cli.command {
        Command::Once { pretty } => once(&cli.common, *pretty),
        Command::Run(args) => cli::run::run(&cli.common, args),
        Command::Spool(cmd) => cli::spool::spool(cmd),
        Command::Completions { shell } => {
            jazari_wire::cli_docs::completions(
                <Cli as clap::CommandFactory>::command(),
                *shell,
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man { out } => jazari_wire::cli_docs::man_pages(<Cli as clap::CommandFactory>::command(), out)
            .map(|files| eprintln!("wrote {} man pages into {}", files.len(), out.display()))
            .map_err(Into::into),
    };
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, each cause once, like `jazari: ...`.
            eprintln!("jazari-agent: {}", jazari_wire::errors::one_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn once(common: &Common, pretty: bool) -> Result<()> {
    let mut sampler = Sampler::new(SamplerOptions {
        node: common.node.clone().unwrap_or_else(jazari_agent::host::node_name),
        nvml_lib: common.nvml_lib.clone(),
        proc_root: common.proc_root.clone(),
        interval: Duration::from_secs(10),
        resume_from_ms: None,
        own_descendants_only: common.proc_scope == ProcScope::Descendants,
    });
    sampler.settle();
    let report = sampler.sample();
    let mut out = std::io::stdout().lock();
    if pretty {
        serde_json::to_writer_pretty(&mut out, &report)?;
    } else {
        serde_json::to_writer(&mut out, &report)?;
    }
    writeln!(out).context("writing the report to stdout")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_option_and_command_has_help() {
        let missing = jazari_wire::cli_docs::undocumented(<super::Cli as clap::CommandFactory>::command());
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
