//! On-disk spool: every report is appended here before it is sent, and leaves
//! only when the collector has acknowledged it.
//!
//! Layout: a folder of append-only segment files `NNNNNNNNNNNNNNNN.seg` (the
//! record format is in `record.rs`), a file `cursor` holding the segment
//! number and offset of the first record not yet acknowledged (written to a
//! temporary file, then renamed), and a file `lock` that keeps a second agent
//! (or `spool replay`) off a spool in use.
//!
//! What can go wrong, and what the spool does:
//! - a write fails (disk full, I/O error, short write): the segment is cut
//!   back to its last whole record and the report is kept in memory (bounded)
//!   and written again at the next append or acknowledgement;
//! - the disk is full: the oldest segments are dropped to make room for new
//!   reports (the drop policy); reports held in memory over the bound drop the
//!   oldest on-disk data first, then the oldest in memory;
//! - over the size bound: the oldest segments are dropped;
//! - bytes that hold no valid record (a corrupt length or payload, a write torn
//!   by a crash): the reader skips to the next valid record and delivers it; at
//!   start, bytes after the last valid record of the last segment are cut off.
//!
//! Every report dropped and every byte range skipped is counted in
//! [`SpoolStats`] and logged with the sequence numbers concerned
//! (`events.rs` holds every log line).
//!
//! Files: `record.rs` the record format and the scanner, `write.rs` appends
//! and the drop policy, `read.rs` reading and acknowledging, `files.rs` the
//! cursor, lock and segment names, `inspect.rs` the read-only inspection,
//! `dead_letter.rs` the reports refused for good.

mod dead_letter;
mod events;
mod files;
pub mod inspect;
mod read;
mod record;
#[cfg(test)]
mod tests;
mod write;

pub use dead_letter::DeadLetters;
pub use files::lock;
pub use record::{Damage, Ident};

use files::{list_segments, read_cursor, seg_name, summarize, write_cursor};
#[cfg(test)]
use record::HEADER;
use record::{Found, Scanner, SeqRange};
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
#[cfg(test)]
use write::Fault;

/// Reports kept in memory while the disk refuses writes, at most.
pub const MEMORY_BOUND_BYTES: usize = 2 << 20;

/// Counters a spool keeps for the log and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Reports written to disk.
    pub written: u64,
    /// Writes that failed (each attempt).
    pub write_errors: u64,
    /// Bytes cut off the end of the last segment at start (a torn last write).
    pub torn_bytes: u64,
    /// Byte ranges skipped while reading because they held no valid record.
    pub damaged_ranges: u64,
    pub damaged_bytes: u64,
    /// Reports dropped with their segment: over the size bound, or the disk full.
    pub dropped: u64,
    /// Reports that never reached the disk: over the memory bound, or at exit.
    pub dropped_memory: u64,
}

impl std::fmt::Display for SpoolStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "written={} write_errors={} torn_bytes={} damaged_ranges={} damaged_bytes={} dropped={} dropped_memory={}",
            self.written,
            self.write_errors,
            self.torn_bytes,
            self.damaged_ranges,
            self.damaged_bytes,
            self.dropped,
            self.dropped_memory
        )
    }
}

/// Position of a record: segment number and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

/// Why segments are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropReason {
    OverBound,
    DiskFull,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    memory_bytes: usize,
    /// First record not yet acknowledged.
    head: Pos,
    /// Segment appended to, its length, and its file once opened.
    tail: u64,
    tail_len: u64,
    file: Option<File>,
    /// Every segment from the head's on, with its length.
    sizes: BTreeMap<u64, u64>,
    /// Reports not yet on disk, oldest first.
    backlog: VecDeque<Vec<u8>>,
    backlog_bytes: usize,
    /// Whether writes are failing (said once, and once when they work again).
    failing: bool,
    /// Damage before this position has been counted and logged.
    scanned: Pos,
    /// The last report read, to name where a damaged range starts.
    last_read: Option<Ident>,
    _lock: File,
    #[cfg(test)]
    fault: Option<Fault>,
    pub stats: SpoolStats,
}

fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG))
        || e.kind() == io::ErrorKind::StorageFull
}

impl Spool {
    /// Opens (creating) a spool in `dir`, bounded to `max_bytes` on disk, and
    /// locks it for this process.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create spool folder {}: {e}", dir.display())))?;
        let lock = lock(dir)?;
        let mut segs = list_segments(dir)?;
        let mut head = read_cursor(dir).unwrap_or_default();
        // Segments before the cursor are delivered.
        segs.retain(|&n| {
            if n < head.segment {
                let _ = std::fs::remove_file(dir.join(seg_name(n)));
            }
            n >= head.segment
        });
        if let Some(&first) = segs.first().filter(|&&n| n > head.segment) {
            head = Pos { segment: first, offset: 0 };
        }
        let mut sizes = BTreeMap::new();
        for &n in &segs {
            sizes.insert(n, dir.join(seg_name(n)).metadata()?.len());
        }
        let tail = segs.last().copied().unwrap_or(head.segment);
        let mut spool = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(64 << 10, 16 << 20),
            memory_bytes: MEMORY_BOUND_BYTES,
            head,
            tail,
            tail_len: sizes.get(&tail).copied().unwrap_or(0),
            file: None,
            sizes,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            failing: false,
            scanned: Pos::default(),
            last_read: None,
            _lock: lock,
            #[cfg(test)]
            fault: None,
            stats: SpoolStats::default(),
        };
        if spool.sizes.contains_key(&tail) {
            spool.cut_torn_tail()?;
        }
        if spool.head.segment == tail {
            spool.head.offset = spool.head.offset.min(spool.tail_len);
        }
        Ok(spool)
    }

    /// Cuts bytes after the last valid record of the last segment (a write
    /// torn by a crash); records before them stay, whatever damage lies between.
    fn cut_torn_tail(&mut self) -> io::Result<()> {
        let path = self.dir.join(seg_name(self.tail));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let from = if self.head.segment == self.tail { self.head.offset } else { 0 };
        let mut scan = Scanner::new(&file, from, self.tail_len);
        let mut last = None;
        while let Some(found) = scan.next_found()? {
            match found {
                Found::Record { payload, .. } => last = Some(payload),
                Found::Damaged { .. } => {}
                Found::Tail { offset, len, why } => {
                    file.set_len(offset)?;
                    file.sync_all()?;
                    self.tail_len = offset;
                    self.sizes.insert(self.tail, offset);
                    self.stats.torn_bytes += len;
                    let after = last.as_deref().and_then(Ident::of);
                    events::torn_tail_cut(&path, offset, len, why, after.as_ref());
                }
            }
        }
        Ok(())
    }

    /// Bounds the reports kept in memory while the disk refuses writes (tests).
    pub fn set_memory_bound(&mut self, bytes: usize) {
        self.memory_bytes = bytes;
    }

    /// Whether nothing is waiting, on disk or in memory.
    pub fn is_empty(&self) -> bool {
        self.backlog.is_empty()
            && self
                .sizes
                .iter()
                .all(|(&n, &len)| if n == self.head.segment { len <= self.head.offset } else { len == 0 })
    }

    /// Reports held in memory because the disk refused them.
    pub fn in_memory(&self) -> usize {
        self.backlog.len()
    }

    /// Number of reports waiting (reads the whole spool).
    pub fn pending(&mut self) -> io::Result<u64> {
        let mut n = self.backlog.len() as u64;
        for &seg in self.sizes.keys() {
            let from = if seg == self.head.segment { self.head.offset } else { 0 };
            n += summarize(&self.dir.join(seg_name(seg)), from)?.records;
        }
        Ok(n)
    }

    /// Writes what memory still holds; what cannot be written is counted and logged as lost.
    pub fn close(&mut self) {
        if self.backlog.is_empty() {
            return;
        }
        let why = match self.flush() {
            Ok(()) => return,
            Err(e) => e,
        };
        let mut gone = SeqRange::default();
        for p in self.backlog.drain(..) {
            gone.add(&p);
        }
        self.backlog_bytes = 0;
        self.stats.dropped_memory += gone.records;
        events::lost_at_exit(&gone, &why, &self.stats);
    }
}
