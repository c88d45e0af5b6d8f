//! The write side of the spool: appending, rolling back a failed write,
//! the memory backlog, and the drop policy (size bound, full disk).

use super::record::{self, SeqRange};
use super::{DropReason, Pos, Spool, events, is_no_space, seg_name, summarize, write_cursor};
use std::fs::OpenOptions;
use std::io::{self, Write};

/// A write failure made on purpose (tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(super) enum Fault {
    /// Every write writes this many bytes, then fails so.
    Always(usize, io::ErrorKind),
    /// Segments live on a disk of this many bytes: a write past it is short, then "no space".
    DiskOf(u64),
}

#[cfg(test)]
impl Fault {
    /// How many bytes of a `len`-byte write land before it fails, and how; `None` when it succeeds.
    pub(super) fn short_write(self, len: usize, used: u64) -> Option<(usize, io::ErrorKind)> {
        match self {
            Fault::Always(n, kind) => Some((n.min(len), kind)),
            Fault::DiskOf(cap) => {
                let room = cap.saturating_sub(used) as usize;
                (room < len).then_some((room, io::ErrorKind::StorageFull))
            }
        }
    }
}

impl Spool {
    /// Appends one report (a JSON object) and syncs it to disk. When the disk
    /// refuses it, the report stays in memory and the error is returned; it is
    /// written at the next append or acknowledgement.
    pub fn append(&mut self, payload: Vec<u8>) -> io::Result<()> {
        record::encode(&payload)?;
        self.backlog_bytes += payload.len();
        self.backlog.push_back(payload);
        self.flush()
    }

    /// Writes what is held in memory, oldest first.
    pub fn flush(&mut self) -> io::Result<()> {
        while let Some(payload) = self.backlog.front() {
            let res = self.write_record(&record::encode(payload)?);
            match res {
                Ok(()) => {
                    let p = self.backlog.pop_front().unwrap_or_default();
                    self.backlog_bytes -= p.len();
                    self.stats.written += 1;
                }
                Err(e) => {
                    self.stats.write_errors += 1;
                    if is_no_space(&e) && self.make_room()? {
                        continue;
                    }
                    if !self.failing {
                        self.failing = true;
                        events::write_failed(&self.dir, &e, self.backlog.len(), &self.stats);
                    }
                    self.bound_memory(&e);
                    return Err(e);
                }
            }
        }
        if std::mem::take(&mut self.failing) {
            events::writing_again(&self.dir, &self.stats);
        }
        self.enforce_bound()
    }

    /// Writes one encoded record at the end of the tail segment; on failure,
    /// cuts the segment back to where it was (or leaves it for a new one).
    pub(super) fn write_record(&mut self, rec: &[u8]) -> io::Result<()> {
        if self.tail_len > 0 && self.tail_len + rec.len() as u64 > self.segment_bytes {
            self.seal_tail();
        }
        if self.file.is_none() {
            let path = self.dir.join(seg_name(self.tail));
            self.file = Some(OpenOptions::new().create(true).read(true).append(true).open(path)?);
            self.sizes.entry(self.tail).or_insert(0);
        }
        let start = self.tail_len;
        let res = self.write_synced(rec);
        let Some(file) = &self.file else { return res };
        if let Err(e) = res {
            if let Err(cut) = file.set_len(start) {
                let len = file.metadata().map(|m| m.len()).unwrap_or(start + rec.len() as u64);
                self.sizes.insert(self.tail, len);
                events::rollback_failed(&self.dir.join(seg_name(self.tail)), start, &cut);
                self.seal_tail();
            }
            return Err(e);
        }
        self.tail_len += rec.len() as u64;
        self.sizes.insert(self.tail, self.tail_len);
        Ok(())
    }

    pub(super) fn write_synced(&mut self, rec: &[u8]) -> io::Result<()> {
        #[cfg(test)]
        let fault = self.fault.and_then(|f| f.short_write(rec.len(), self.sizes.values().sum()));
        let Some(file) = self.file.as_mut() else { return Err(io::Error::other("no segment open")) };
        #[cfg(test)]
        if let Some((n, kind)) = fault {
            file.write_all(&rec[..n])?;
            return Err(io::Error::new(kind, "injected write failure"));
        }
        file.write_all(rec)?;
        file.sync_data()
    }

    /// Starts a new segment at the next write.
    pub(super) fn seal_tail(&mut self) {
        self.file = None;
        self.tail += 1;
        self.tail_len = 0;
    }

    /// The drop policy on a full disk: the oldest sealed segment goes; when
    /// memory is over its bound too, the tail segment goes as well. Whether
    /// anything was freed.
    pub(super) fn make_room(&mut self) -> io::Result<bool> {
        if let Some(&oldest) = self.sizes.keys().next().filter(|&&n| n < self.tail) {
            self.drop_segment(oldest, DropReason::DiskFull)?;
            return Ok(true);
        }
        if self.backlog_bytes > self.memory_bytes && self.tail_len > 0 {
            let full = self.tail;
            self.seal_tail();
            self.drop_segment(full, DropReason::DiskFull)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Drops the oldest reports held in memory while over the memory bound (the newest stays).
    pub(super) fn bound_memory(&mut self, why: &io::Error) {
        let mut gone = SeqRange::default();
        while self.backlog_bytes > self.memory_bytes && self.backlog.len() > 1 {
            let p = self.backlog.pop_front().unwrap_or_default();
            self.backlog_bytes -= p.len();
            gone.add(&p);
        }
        if gone.records > 0 {
            self.stats.dropped_memory += gone.records;
            events::memory_dropped(&gone, why, self.memory_bytes, &self.stats);
        }
    }

    /// Drops the oldest segments while the spool is over its bound.
    pub(super) fn enforce_bound(&mut self) -> io::Result<()> {
        while self.sizes.values().sum::<u64>() > self.max_bytes {
            let Some(&oldest) = self.sizes.keys().next().filter(|&&n| n < self.tail) else { break };
            self.drop_segment(oldest, DropReason::OverBound)?;
        }
        Ok(())
    }

    /// Removes a segment not yet delivered, counting and logging its reports.
    pub(super) fn drop_segment(&mut self, n: u64, reason: DropReason) -> io::Result<()> {
        let path = self.dir.join(seg_name(n));
        let from = if n == self.head.segment { self.head.offset } else { 0 };
        let gone = summarize(&path, from)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.sizes.remove(&n);
        self.stats.dropped += gone.records;
        events::segment_dropped(&path, &gone, reason, self.max_bytes, &self.stats);
        if self.head.segment <= n {
            let next = self.sizes.keys().next().copied().unwrap_or(self.tail).max(n + 1);
            self.set_head(Pos { segment: next, offset: 0 });
        }
        Ok(())
    }

    /// Moves the head (and the cursor file) forward over segments done with.
    pub(super) fn set_head(&mut self, pos: Pos) {
        for n in self.head.segment..pos.segment {
            if self.sizes.remove(&n).is_some() {
                let _ = std::fs::remove_file(self.dir.join(seg_name(n)));
            }
        }
        self.head = pos;
        if let Err(e) = write_cursor(&self.dir, pos) {
            tracing::warn!("spool: cannot update the cursor in {}: {e}", self.dir.display());
        }
    }
}
