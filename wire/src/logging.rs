//! The logging set-up of both binaries: a filter from `JAZARI_LOG` (default
//! `info`), to stderr (coloured on a terminal unless `NO_COLOR`; one JSON
//! object per line with `JAZARI_LOG_FORMAT=json`, for journald and log
//! shippers), or to a file for a program that owns the terminal.

use std::path::Path;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. With `file`, logs are appended there (the
/// folder is created; if it cannot be opened, logs are dropped rather than
/// drawn over a full-screen program).
pub fn init(file: Option<&Path>) {
    let filter = EnvFilter::try_from_env("JAZARI_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if let Some(path) = file {
        let opened = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|_| std::fs::OpenOptions::new().create(true).append(true).open(path));
        let writer = match opened {
            Ok(f) => std::sync::Mutex::new(Box::new(f) as Box<dyn std::io::Write + Send>),
            Err(_) => std::sync::Mutex::new(Box::new(std::io::sink()) as Box<dyn std::io::Write + Send>),
        };
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_target(false)
            .with_ansi(false)
            .init();
        return;
    }
    if std::env::var("JAZARI_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
        return;
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}
