//! Shell completions and man pages, generated from a binary's clap definition
//! (`jazari completions bash`, `jazari-agent man --out DIR`; the packages ship both).

use std::io::Write;
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// Prints the completion script of `cmd` for `shell` on `out`.
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes one man page per command and subcommand into `dir` (`jazari.1`,
/// `jazari-serve.1`, `jazari-token-add.1`, ...), creating `dir`; returns the files written.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd;
    cmd.build();
    let mut written = vec![];
    write_page(&cmd, cmd.get_name(), dir, &mut written)?;
    Ok(written)
}

fn write_page(cmd: &clap::Command, name: &str, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let page = cmd.clone().name(name.to_string());
    let path = dir.join(format!("{name}.1"));
    let mut buf = vec![];
    clap_mangen::Man::new(page).render(&mut buf)?;
    std::fs::write(&path, buf)
        .map_err(|e| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            write_page(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
        }
    }
    Ok(())
}

/// Options and arguments of `cmd` and its subcommands without help text, as
/// `command sub --option` (a test of each binary wants none).
pub fn undocumented(cmd: clap::Command) -> Vec<String> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let builtin = matches!(a.get_id().as_str(), "help" | "version");
            if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                let name = a.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| a.get_id().to_string());
                out.push(format!("{path} {name}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            if sub.get_about().is_none() {
                out.push(format!("{path} {} (no about)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut cmd = cmd;
    cmd.build();
    let mut out = vec![];
    walk(&cmd, cmd.get_name(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use clap::{Arg, Command};

    fn cmd() -> Command {
        Command::new("tool")
            .about("A tool")
            .subcommand(Command::new("run").about("Runs").arg(Arg::new("fast").long("fast").help("Fast")))
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn options_without_help_are_named() {
        let cmd = cmd().arg(Arg::new("bare").long("bare"));
        assert_eq!(super::undocumented(cmd), ["tool --bare", "tool secret (no about)"]);
    }

    #[test]
    fn a_page_per_visible_subcommand_and_a_completion_script() {
        let dir = std::env::temp_dir().join(format!("jazari-man-{}", std::process::id()));
        let files = super::man_pages(cmd(), &dir).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["tool.1", "tool-run.1"]);
        assert!(std::fs::read_to_string(dir.join("tool-run.1")).unwrap().contains("fast"));
        std::fs::remove_dir_all(&dir).unwrap();
        let mut out = vec![];
        super::completions(cmd(), super::Shell::Bash, &mut out);
        let script = String::from_utf8(out).unwrap();
        assert!(script.contains("complete") && script.contains("run"), "{script}");
    }
}
