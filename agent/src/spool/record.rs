//! The record format of a segment, and the scanner that finds records in one
//! even past damage.
//!
//! A record is `[len: u32 LE][crc32 of payload: u32 LE][payload: len bytes]`,
//! and a payload is one report as a JSON object: it starts with `{` and ends
//! with `}`. A record is valid when its length is in range, it lies within the
//! segment, its payload is framed by braces and its checksum matches.
//!
//! After bytes that are no valid record (a torn write, a flipped bit, a
//! corrupt length), the scanner looks for the next offset where a valid record
//! starts and carries on from there. A false start inside a payload cannot
//! happen: a JSON text has no byte under 0x20, and a valid length has a high
//! byte of at most 0x03. In other damage, the brace frame turns away all but
//! one offset in 65,536 before a checksum is computed, so a scan over a
//! damaged range stays cheap.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes before the payload.
pub const HEADER: u64 = 8;
/// Largest payload accepted.
pub const MAX_RECORD: u32 = 64 << 20;
/// Bytes read at a time while scanning.
const WINDOW: usize = 64 << 10;

/// Why bytes hold no valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// The length field is zero or beyond [`MAX_RECORD`].
    BadLength,
    /// The record would run past the end of the segment (a torn write, or a corrupt length).
    PastEnd,
    /// The payload is not framed as a JSON object, or its checksum does not match.
    BadChecksum,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Damage::BadLength => "length field out of range",
            Damage::PastEnd => "record runs past the end of the segment",
            Damage::BadChecksum => "checksum mismatch",
        })
    }
}

/// What a scan finds next.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A valid record starting at `offset`.
    Record { offset: u64, payload: Vec<u8> },
    /// `len` bytes from `offset` that hold no valid record; a valid one follows.
    Damaged { offset: u64, len: u64, why: Damage },
    /// `len` bytes from `offset` to the end of the segment that hold no valid record.
    Tail { offset: u64, len: u64, why: Damage },
}

/// Encodes one payload as a record. The payload must be a JSON object.
pub fn encode(payload: &[u8]) -> io::Result<Vec<u8>> {
    if payload.len() < 2 || payload[0] != b'{' || payload[payload.len() - 1] != b'}' {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a spool record must be a JSON object"));
    }
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "report too large for the spool"))?;
    let mut rec = Vec::with_capacity(HEADER as usize + payload.len());
    rec.extend_from_slice(&len.to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    rec.extend_from_slice(payload);
    Ok(rec)
}

/// Reads the records of one segment file in order, from an offset up to a length.
pub struct Scanner<'f> {
    file: &'f File,
    end: u64,
    pos: u64,
    window: Vec<u8>,
    window_at: u64,
}

impl<'f> Scanner<'f> {
    /// Scans `file` from `from` to `end` (its length when the scan starts).
    pub fn new(file: &'f File, from: u64, end: u64) -> Self {
        Self { file, end, pos: from.min(end), window: Vec::new(), window_at: 0 }
    }

    /// Where the next scan starts.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The next record, damaged range or damaged tail; `None` at the end.
    pub fn next_found(&mut self) -> io::Result<Option<Found>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let at = self.pos;
        let why = match self.check(at)? {
            Ok(payload) => {
                self.pos = at + HEADER + payload.len() as u64;
                return Ok(Some(Found::Record { offset: at, payload }));
            }
            Err(why) => why,
        };
        let mut next = at + 1;
        while next + HEADER < self.end {
            if self.check(next)?.is_ok() {
                self.pos = next;
                return Ok(Some(Found::Damaged { offset: at, len: next - at, why }));
            }
            next += 1;
        }
        self.pos = self.end;
        Ok(Some(Found::Tail { offset: at, len: self.end - at, why }))
    }

    /// Whether a valid record starts at `at`: its payload, or why not.
    fn check(&mut self, at: u64) -> io::Result<Result<Vec<u8>, Damage>> {
        if self.end - at < HEADER {
            return Ok(Err(Damage::PastEnd));
        }
        let mut h = [0u8; HEADER as usize];
        h.copy_from_slice(self.bytes(at, HEADER as usize)?);
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if !(2..=MAX_RECORD).contains(&len) {
            return Ok(Err(Damage::BadLength));
        }
        let len = u64::from(len);
        if at + HEADER + len > self.end {
            return Ok(Err(Damage::PastEnd));
        }
        let first = self.bytes(at + HEADER, 1)?[0];
        let last = self.bytes(at + HEADER + len - 1, 1)?[0];
        if first != b'{' || last != b'}' {
            return Ok(Err(Damage::BadChecksum));
        }
        // A report-sized payload is read once; a large one (a corrupt length,
        // most likely) is checked in chunks before anything is held.
        if len > WINDOW as u64 && self.crc(at + HEADER, len)? != crc {
            return Ok(Err(Damage::BadChecksum));
        }
        let payload = self.read(at + HEADER, len)?;
        if crc32fast::hash(&payload) != crc {
            return Ok(Err(Damage::BadChecksum));
        }
        Ok(Ok(payload))
    }

    /// `n` bytes at `at` (within the segment), through the window.
    fn bytes(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        let inside = at >= self.window_at && at + n as u64 <= self.window_at + self.window.len() as u64;
        if !inside {
            let want = (self.end - at).min(WINDOW.max(n) as u64) as usize;
            self.window.resize(want, 0);
            self.file.read_exact_at(&mut self.window, at)?;
            self.window_at = at;
        }
        let from = (at - self.window_at) as usize;
        Ok(&self.window[from..from + n])
    }

    /// Checksum of `len` bytes at `at`, read in chunks (a corrupt length
    /// never makes us hold a large buffer).
    fn crc(&self, at: u64, len: u64) -> io::Result<u32> {
        let mut h = crc32fast::Hasher::new();
        let mut buf = vec![0u8; (len as usize).min(WINDOW)];
        let mut done = 0;
        while done < len {
            let n = ((len - done) as usize).min(buf.len());
            self.file.read_exact_at(&mut buf[..n], at + done)?;
            h.update(&buf[..n]);
            done += n as u64;
        }
        Ok(h.finalize())
    }

    fn read(&self, at: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut p = vec![0u8; len as usize];
        self.file.read_exact_at(&mut p, at)?;
        Ok(p)
    }
}

/// Who wrote a report and its number, read from its JSON when it parses.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub struct Ident {
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub instance: String,
    pub seq: u64,
}

impl Ident {
    pub fn of(payload: &[u8]) -> Option<Ident> {
        serde_json::from_slice(payload).ok()
    }
}

impl std::fmt::Display for Ident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seq {} of {}/{}", self.seq, self.node, self.instance)
    }
}

/// The first and last report of a run of records, for log lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqRange {
    pub records: u64,
    pub first: Option<Ident>,
    pub last: Option<Ident>,
}

impl SeqRange {
    pub fn add(&mut self, payload: &[u8]) {
        self.records += 1;
        let id = Ident::of(payload);
        if self.first.is_none() {
            self.first = id.clone();
        }
        if id.is_some() {
            self.last = id;
        }
    }
}

impl std::fmt::Display for SeqRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.first, &self.last) {
            (Some(a), Some(b)) if a.node == b.node && a.instance == b.instance => {
                write!(f, "seq {}..={} of {}/{}", a.seq, b.seq, a.node, a.instance)
            }
            (Some(a), Some(b)) => write!(f, "from {a} to {b}"),
            _ => f.write_str("seq unknown"),
        }
    }
}
