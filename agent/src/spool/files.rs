//! The spool's files besides records: segment names, the cursor, the lock,
//! and a summary of a segment's records.

use super::Pos;
use super::record::{Found, Scanner, SeqRange};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

pub(super) fn seg_name(n: u64) -> String {
    format!("{n:016}.seg")
}

/// The valid records of a segment from an offset: how many, first and last.
pub(super) fn summarize(path: &Path, from: u64) -> io::Result<SeqRange> {
    let mut range = SeqRange::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(range),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut scan = Scanner::new(&file, from, len);
    while let Some(found) = scan.next_found()? {
        if let Found::Record { payload, .. } = found {
            range.add(&payload);
        }
    }
    Ok(range)
}

pub(super) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

pub(super) fn read_cursor(dir: &Path) -> Option<Pos> {
    let t = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let (a, b) = t.trim().split_once(' ')?;
    Some(Pos { segment: a.parse().ok()?, offset: b.parse().ok()? })
}

pub(super) fn write_cursor(dir: &Path, pos: Pos) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{} {}", pos.segment, pos.offset)?;
        f.sync_data()?;
    }
    std::fs::rename(tmp, dir.join("cursor"))
}

/// Takes the spool's lock file (held until the file is closed), or says which process holds it.
pub fn lock(dir: &Path) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let path = dir.join("lock");
    let mut f = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let holder = holder.trim();
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                format!(
                    "the spool {} is in use by another jazari-agent{} (stop it first, or let it deliver)",
                    dir.display(),
                    if holder.is_empty() { String::new() } else { format!(" (pid {holder})") }
                )
            } else {
                format!("cannot lock the spool {}: {e}", dir.display())
            },
        ));
    }
    // The pid is only a hint for that message; a full disk must not stop the agent.
    let _ = f.set_len(0).and_then(|_| writeln!(f, "{}", std::process::id()));
    Ok(f)
}
