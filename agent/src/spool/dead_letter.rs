//! Reports the collector will never accept (invalid, or too large even
//! alone), kept aside in `dead-letter.ndjson` beside the spool for a person to
//! look at and `jazari-agent spool replay --dead-letters` to send again.
//!
//! One JSON line per report: `{"status":400,"error":"...","time_ms":...,"report":{...}}`
//! (a line that is a bare report, as older agents wrote, is read too). The
//! file is bounded: a new line that would take it over the bound first drops
//! the oldest lines, down to three quarters of the bound, counted and logged.

use super::record::SeqRange;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A dead-letter file and its bound.
pub struct DeadLetters {
    path: PathBuf,
    max_bytes: u64,
    /// Dead letters dropped over the bound since start.
    pub dropped: u64,
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Letter {
    /// The report as sent.
    pub report: Vec<u8>,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(serde::Serialize)]
struct LineOut<'a> {
    status: u16,
    error: &'a str,
    time_ms: i64,
    report: &'a serde_json::value::Value,
}

impl DeadLetters {
    pub const FILE: &'static str = "dead-letter.ndjson";

    pub fn new(spool_dir: &Path, max_bytes: u64) -> Self {
        Self { path: spool_dir.join(Self::FILE), max_bytes, dropped: 0 }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps a report aside with the collector's answer.
    pub fn put(&mut self, report: &[u8], status: u16, why: &str) -> io::Result<()> {
        let value: serde_json::Value = serde_json::from_slice(report)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(report).into_owned()));
        let mut line =
            serde_json::to_vec(&LineOut { status, error: why, time_ms: jazari_wire::now_ms(), report: &value })?;
        line.push(b'\n');
        let size = self.path.metadata().map(|m| m.len()).unwrap_or(0);
        if size + line.len() as u64 > self.max_bytes {
            let keep = (self.max_bytes / 4 * 3).saturating_sub(line.len() as u64);
            self.trim(keep)?;
        }
        let mut f = OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.write_all(&line)?;
        f.sync_data()
    }

    /// Drops the oldest lines until at most `keep` bytes are left.
    fn trim(&mut self, keep: u64) -> io::Result<()> {
        let size = self.path.metadata()?.len();
        let mut r = BufReader::new(File::open(&self.path)?);
        let mut gone = SeqRange::default();
        let mut skipped = 0u64;
        let mut line = Vec::new();
        while size - skipped > keep {
            line.clear();
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            skipped += n as u64;
            gone.add(&parse(&line).report);
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut w = BufWriter::new(File::create(&tmp)?);
            io::copy(&mut r, &mut w)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.dropped += gone.records;
        tracing::warn!(
            dead_letter = %self.path.display(),
            records = gone.records,
            total_dropped = self.dropped,
            "dead-letter file over its bound of {} MiB: dropped its {} oldest reports ({gone})",
            self.max_bytes >> 20,
            gone.records
        );
        Ok(())
    }

    /// Reads every letter, in order; `None` when there is no file.
    pub fn read(&self) -> io::Result<Option<Vec<Letter>>> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for line in BufReader::new(f).split(b'\n') {
            let line = line?;
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push(parse(&line));
            }
        }
        Ok(Some(out))
    }

    /// Replaces the file's content with `letters` (those still refused after a replay).
    pub fn rewrite(&self, letters: &[Letter]) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        {
            let mut w = BufWriter::new(File::create(&tmp)?);
            for l in letters {
                let report: serde_json::Value = serde_json::from_slice(&l.report).unwrap_or_default();
                let out = LineOut {
                    status: l.status.unwrap_or(0),
                    error: l.error.as_deref().unwrap_or(""),
                    time_ms: jazari_wire::now_ms(),
                    report: &report,
                };
                serde_json::to_writer(&mut w, &out)?;
                w.write_all(b"\n")?;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        }
        std::fs::rename(tmp, &self.path)
    }
}

/// Reads one line: the wrapped form, or a bare report.
fn parse(line: &[u8]) -> Letter {
    #[derive(serde::Deserialize)]
    struct Wrapped {
        status: Option<u16>,
        error: Option<String>,
        report: serde_json::Value,
    }
    let line = line.trim_ascii();
    match serde_json::from_slice::<Wrapped>(line) {
        Ok(w) => Letter { report: serde_json::to_vec(&w.report).unwrap_or_default(), status: w.status, error: w.error },
        Err(_) => Letter { report: line.to_vec(), status: None, error: None },
    }
}
