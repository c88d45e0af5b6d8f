//! On-disk spool: every report is appended here before it is sent, and leaves
//! only when the collector has acknowledged it.
//!
//! Layout: a folder of append-only segment files `NNNNNNNNNNNNNNNN.seg`, each a
//! sequence of records `[len: u32 LE][crc32: u32 LE][payload: len bytes]`, and
//! a file `cursor` holding the segment number and offset of the first record
//! not yet acknowledged (written to a temporary file, then renamed).
//!
//! - A torn last record (the agent died mid-write) is cut off and counted.
//! - A record whose checksum does not match is skipped and counted.
//! - Over the size bound, the oldest segments are dropped and their records
//!   counted and logged.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const HEADER: usize = 8;
/// Largest record accepted when reading (a corrupt length beyond this ends the segment).
const MAX_RECORD: u32 = 64 << 20;

/// Counters a spool keeps for the log and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub torn: u64,
    pub corrupt: u64,
    pub dropped: u64,
}

/// Position of a record: segment number and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    head: Pos,
    /// Segment being appended to, and its length.
    tail: (u64, u64),
    file: File,
    pub stats: SpoolStats,
}

fn seg_name(n: u64) -> String {
    format!("{n:016}.seg")
}

impl Spool {
    /// Opens (creating) a spool in `dir`, bounded to `max_bytes` on disk.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create spool folder {}: {e}", dir.display())))?;
        let mut segs = list_segments(dir)?;
        let head = read_cursor(dir).unwrap_or_default();
        // Drop segments entirely before the cursor.
        segs.retain(|&n| {
            if n < head.segment {
                let _ = std::fs::remove_file(dir.join(seg_name(n)));
                false
            } else {
                true
            }
        });
        let mut stats = SpoolStats::default();
        let last = segs.last().copied().unwrap_or(head.segment);
        // Repair the last segment: cut a torn record off its end.
        let path = dir.join(seg_name(last));
        let file = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        let good = valid_prefix(&path, &mut stats)?;
        if good < len {
            file.set_len(good)?;
            tracing::warn!(segment = %path.display(), cut_bytes = len - good, "spool: torn last record skipped");
        }
        let segment_bytes = (max_bytes / 8).clamp(64 << 10, 16 << 20);
        let head = if segs.is_empty() {
            Pos { segment: last, offset: 0 }
        } else {
            head.max(Pos { segment: segs[0], offset: 0 })
        };
        Ok(Self { dir: dir.to_path_buf(), max_bytes, segment_bytes, head, tail: (last, good), file, stats })
    }

    /// Appends one record and syncs it to disk.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<()> {
        if self.tail.1 > 0 && self.tail.1 + (payload.len() + HEADER) as u64 > self.segment_bytes {
            self.rotate()?;
        }
        let mut rec = Vec::with_capacity(HEADER + payload.len());
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        rec.extend_from_slice(payload);
        self.file.write_all(&rec)?;
        self.file.sync_data()?;
        self.tail.1 += rec.len() as u64;
        self.enforce_bound()?;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let n = self.tail.0 + 1;
        self.file = OpenOptions::new().create(true).read(true).append(true).open(self.dir.join(seg_name(n)))?;
        self.tail = (n, 0);
        Ok(())
    }

    /// Drops the oldest segments while the spool is over its bound.
    fn enforce_bound(&mut self) -> io::Result<()> {
        loop {
            let segs = list_segments(&self.dir)?;
            let total: u64 =
                segs.iter().map(|n| self.dir.join(seg_name(*n)).metadata().map(|m| m.len()).unwrap_or(0)).sum();
            if total <= self.max_bytes || segs.len() <= 1 {
                return Ok(());
            }
            let oldest = segs[0];
            let path = self.dir.join(seg_name(oldest));
            let from = if oldest == self.head.segment { self.head.offset } else { 0 };
            let lost = count_records(&path, from)?;
            std::fs::remove_file(&path)?;
            self.stats.dropped += lost;
            tracing::warn!(records = lost, total_dropped = self.stats.dropped, "spool full: oldest reports dropped");
            if self.head.segment <= oldest {
                self.head = Pos { segment: oldest + 1, offset: 0 };
                write_cursor(&self.dir, self.head)?;
            }
        }
    }

    /// Up to `max` unacknowledged records from the head, in order, each with
    /// the position just past it (to [`Spool::ack`] once sent).
    pub fn peek(&mut self, max: usize, max_bytes: usize) -> io::Result<Vec<(Vec<u8>, Pos)>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut pos = self.head;
        while out.len() < max && bytes < max_bytes && pos.segment <= self.tail.0 {
            let path = self.dir.join(seg_name(pos.segment));
            let mut f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    pos = Pos { segment: pos.segment + 1, offset: 0 };
                    continue;
                }
                Err(e) => return Err(e),
            };
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(pos.offset))?;
            let mut r = io::BufReader::new(f);
            while out.len() < max && bytes < max_bytes && pos.offset < len {
                match read_record(&mut r, len - pos.offset)? {
                    Record::Good(p) => {
                        pos.offset += (HEADER + p.len()) as u64;
                        bytes += p.len();
                        out.push((p, pos));
                    }
                    Record::Corrupt(n) => {
                        pos.offset += n;
                        self.stats.corrupt += 1;
                        tracing::warn!(segment = %path.display(), "spool: corrupt record skipped");
                    }
                    Record::Torn => {
                        // Only possible in the tail segment while we write to it: stop here.
                        break;
                    }
                }
            }
            if pos.offset >= len && pos.segment < self.tail.0 {
                pos = Pos { segment: pos.segment + 1, offset: 0 };
            } else {
                break;
            }
        }
        Ok(out)
    }

    /// Marks everything before `pos` as acknowledged; removes finished segments.
    pub fn ack(&mut self, pos: Pos) -> io::Result<()> {
        if pos <= self.head {
            return Ok(());
        }
        for n in self.head.segment..pos.segment {
            let _ = std::fs::remove_file(self.dir.join(seg_name(n)));
        }
        self.head = pos;
        write_cursor(&self.dir, pos)
    }

    /// Number of records waiting.
    pub fn pending(&mut self) -> io::Result<u64> {
        let mut n = 0;
        for seg in list_segments(&self.dir)?.into_iter().filter(|s| *s >= self.head.segment) {
            let from = if seg == self.head.segment { self.head.offset } else { 0 };
            n += count_records(&self.dir.join(seg_name(seg)), from)?;
        }
        Ok(n)
    }
}

enum Record {
    Good(Vec<u8>),
    /// Bad checksum; skip this many bytes.
    Corrupt(u64),
    /// Incomplete record at the end.
    Torn,
}

fn read_record(r: &mut impl Read, remaining: u64) -> io::Result<Record> {
    if remaining < HEADER as u64 {
        return Ok(Record::Torn);
    }
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h)?;
    let len = u32::from_le_bytes(h[..4].try_into().unwrap());
    let crc = u32::from_le_bytes(h[4..].try_into().unwrap());
    if len > MAX_RECORD || (HEADER as u64 + len as u64) > remaining {
        return Ok(Record::Torn);
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p)?;
    if crc32fast::hash(&p) != crc {
        return Ok(Record::Corrupt(HEADER as u64 + len as u64));
    }
    Ok(Record::Good(p))
}

/// Length of the prefix of a segment made of whole records (torn tail excluded).
fn valid_prefix(path: &Path, stats: &mut SpoolStats) -> io::Result<u64> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut r = io::BufReader::new(f);
    let mut pos = 0;
    while pos < len {
        match read_record(&mut r, len - pos)? {
            Record::Good(p) => pos += (HEADER + p.len()) as u64,
            Record::Corrupt(n) => pos += n,
            Record::Torn => {
                stats.torn += 1;
                break;
            }
        }
    }
    Ok(pos)
}

fn count_records(path: &Path, from: u64) -> io::Result<u64> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let mut r = io::BufReader::new(f);
    r.seek(SeekFrom::Start(from))?;
    let (mut pos, mut n) = (from, 0);
    while pos < len {
        match read_record(&mut r, len - pos)? {
            Record::Good(p) => {
                pos += (HEADER + p.len()) as u64;
                n += 1;
            }
            Record::Corrupt(k) => pos += k,
            Record::Torn => break,
        }
    }
    Ok(n)
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

fn read_cursor(dir: &Path) -> Option<Pos> {
    let t = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let (a, b) = t.trim().split_once(' ')?;
    Some(Pos { segment: a.parse().ok()?, offset: b.parse().ok()? })
}

fn write_cursor(dir: &Path, pos: Pos) -> io::Result<()> {
    let tmp = dir.join("cursor.tmp");
    {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{} {}", pos.segment, pos.offset)?;
        f.sync_data()?;
    }
    std::fs::rename(tmp, dir.join("cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::tests::tempdir::Dir;

    fn drain(s: &mut Spool) -> Vec<String> {
        let recs = s.peek(1000, usize::MAX).unwrap();
        if let Some((_, pos)) = recs.last() {
            s.ack(*pos).unwrap();
        }
        recs.into_iter().map(|(r, _)| String::from_utf8(r).unwrap()).collect()
    }

    #[test]
    fn records_survive_a_restart_in_order_and_leave_once_acked() {
        let d = Dir::new();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        for i in 0..5 {
            s.append(format!("r{i}").as_bytes()).unwrap();
        }
        let first = s.peek(2, usize::MAX).unwrap();
        assert_eq!(first.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), vec![b"r0".to_vec(), b"r1".to_vec()]);
        s.ack(first[1].1).unwrap();
        drop(s);
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        assert_eq!(s.pending().unwrap(), 3);
        assert_eq!(drain(&mut s), ["r2", "r3", "r4"]);
        assert_eq!(s.pending().unwrap(), 0);
    }

    #[test]
    fn a_torn_last_record_is_skipped_and_counted() {
        let d = Dir::new();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        s.append(b"whole").unwrap();
        s.append(b"torn-record").unwrap();
        drop(s);
        // Crash mid-write: the last record loses its tail.
        let seg = d.path().join(seg_name(0));
        let len = seg.metadata().unwrap().len();
        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 4).unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        assert_eq!(s.stats.torn, 1);
        s.append(b"after").unwrap();
        assert_eq!(drain(&mut s), ["whole", "after"]);
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_counted() {
        let d = Dir::new();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        for r in ["aaaa", "bbbb", "cccc"] {
            s.append(r.as_bytes()).unwrap();
        }
        let seg = d.path().join(seg_name(0));
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[HEADER + 4 + HEADER] ^= 0xff; // first payload byte of the second record
        std::fs::write(&seg, bytes).unwrap();
        let mut s = Spool::open(d.path(), 1 << 20).unwrap();
        assert_eq!(drain(&mut s), ["aaaa", "cccc"]);
        assert_eq!(s.stats.corrupt, 1);
    }

    #[test]
    fn over_the_bound_the_oldest_are_dropped_and_counted() {
        let d = Dir::new();
        // 64 KiB segments (the minimum), 256 KiB bound.
        let mut s = Spool::open(d.path(), 256 << 10).unwrap();
        let rec = vec![b'x'; 10_000];
        for _ in 0..100 {
            s.append(&rec).unwrap();
        }
        assert!(s.stats.dropped > 0);
        let left = s.pending().unwrap();
        assert_eq!(left + s.stats.dropped, 100, "every record is either kept or counted as dropped");
        let total: u64 = std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
        assert!(total <= (256 << 10) + 100, "{total}");
    }
}
