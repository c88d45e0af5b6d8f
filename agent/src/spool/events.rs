//! Everything the spool tells the log, in one place: one function per
//! occurrence, called where the matching counter in [`SpoolStats`] moves.

use super::record::{Damage, Ident, SeqRange};
use super::{DropReason, SpoolStats};
use std::io;
use std::path::{Path, PathBuf};

/// A byte range skipped while reading, waiting for the report after it.
#[derive(Debug)]
pub struct DamagedRange {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub why: Damage,
    pub before: Option<Ident>,
}

fn or_edge(id: Option<&Ident>, edge: &str) -> String {
    id.map_or_else(|| edge.to_string(), Ident::to_string)
}

pub fn torn_tail_cut(path: &Path, offset: u64, len: u64, why: Damage, after: Option<&Ident>) {
    tracing::warn!(
        segment = %path.display(),
        offset,
        cut_bytes = len,
        "spool: cut {len} bytes holding no whole record ({why}) off the end of the segment, after {}; \
         every record before them is kept",
        or_edge(after, "its start")
    );
}

pub fn damage_skipped(d: &DamagedRange, after: Option<&Ident>, stats: &SpoolStats) {
    tracing::warn!(
        segment = %d.path.display(),
        offset = d.offset,
        bytes = d.len,
        damaged_ranges = stats.damaged_ranges,
        damaged_bytes = stats.damaged_bytes,
        "spool: skipped {} damaged bytes ({}) between {} and {}; the reports after them are delivered",
        d.len,
        d.why,
        or_edge(d.before.as_ref(), "the start"),
        or_edge(after, "the end")
    );
}

pub fn segment_dropped(path: &Path, gone: &SeqRange, reason: DropReason, max_bytes: u64, stats: &SpoolStats) {
    let why = match reason {
        DropReason::OverBound => format!("the spool is over its bound of {} MiB", max_bytes >> 20),
        DropReason::DiskFull => "the disk is full".to_string(),
    };
    tracing::warn!(
        segment = %path.display(),
        records = gone.records,
        total_dropped = stats.dropped,
        "spool: {why}: dropped the oldest segment with {} undelivered reports ({gone})",
        gone.records
    );
}

pub fn write_failed(dir: &Path, e: &io::Error, in_memory: usize, stats: &SpoolStats) {
    tracing::error!(
        spool = %dir.display(),
        in_memory,
        write_errors = stats.write_errors,
        "spool: cannot write a report ({e}); the segment is cut back to its last whole record and \
         reports wait in memory until the disk takes them"
    );
}

pub fn writing_again(dir: &Path, stats: &SpoolStats) {
    tracing::info!(spool = %dir.display(), write_errors = stats.write_errors, "spool: the disk takes writes again; reports held in memory are written");
}

pub fn rollback_failed(path: &Path, at: u64, e: &io::Error) {
    tracing::error!(
        segment = %path.display(),
        "spool: cannot cut a failed write off at offset {at} ({e}); going on in a new segment \
         (readers skip the damaged bytes)"
    );
}

pub fn memory_dropped(gone: &SeqRange, why: &io::Error, bound: usize, stats: &SpoolStats) {
    tracing::error!(
        records = gone.records,
        total_dropped_memory = stats.dropped_memory,
        "spool: the disk refuses writes ({why}); dropped the {} oldest reports held in memory ({gone}) \
         to stay within {} KiB",
        gone.records,
        bound >> 10
    );
}

pub fn lost_at_exit(gone: &SeqRange, why: &io::Error, stats: &SpoolStats) {
    tracing::error!(
        records = gone.records,
        total_dropped_memory = stats.dropped_memory,
        "spool: stopping with {} reports the disk refused ({why}); they are lost ({gone})",
        gone.records
    );
}
