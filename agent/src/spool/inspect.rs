//! What a spool holds, read without changing anything (`jazari-agent spool
//! inspect`): segments, reports per agent instance with their sequence
//! ranges, the cursor, damaged ranges, dead letters.

use super::dead_letter::DeadLetters;
use super::record::{Damage, Found, Ident, Scanner};
use super::{Pos, list_segments, read_cursor, seg_name};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, serde::Serialize)]
pub struct Inspection {
    pub dir: PathBuf,
    /// First record not yet acknowledged; `None` without a cursor file (nothing acknowledged yet).
    pub cursor: Option<Pos>,
    pub segments: Vec<SegmentInfo>,
    /// Bytes of all segments.
    pub bytes: u64,
    /// Reports after the cursor, waiting to be sent.
    pub waiting: u64,
    /// Reports before the cursor, delivered but still in a segment.
    pub delivered: u64,
    /// Waiting reports per node and agent instance.
    pub streams: Vec<Stream>,
    /// Waiting reports whose JSON does not parse.
    pub unparsed: u64,
    pub damaged: Vec<DamagedInfo>,
    pub dead_letters: DeadLetterInfo,
}

#[derive(Debug, serde::Serialize)]
pub struct SegmentInfo {
    pub name: String,
    pub bytes: u64,
    pub records: u64,
    pub waiting: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Stream {
    pub node: String,
    pub instance: String,
    pub reports: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Sequence numbers between the first and last that are not here.
    pub missing: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct DamagedInfo {
    pub segment: String,
    pub offset: u64,
    pub bytes: u64,
    pub reason: Damage,
    /// The range runs to the end of its segment (a torn write).
    pub at_end: bool,
    pub before: Option<Ident>,
    pub after: Option<Ident>,
}

#[derive(Debug, serde::Serialize)]
pub struct DeadLetterInfo {
    pub path: PathBuf,
    pub reports: u64,
    pub bytes: u64,
}

/// Reads the spool in `dir`.
pub fn inspect(dir: &Path) -> io::Result<Inspection> {
    if !dir.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no spool folder {}", dir.display())));
    }
    let cursor = read_cursor(dir);
    let head = cursor.unwrap_or_default();
    let mut out = Inspection {
        dir: dir.to_path_buf(),
        cursor,
        segments: Vec::new(),
        bytes: 0,
        waiting: 0,
        delivered: 0,
        streams: Vec::new(),
        unparsed: 0,
        damaged: Vec::new(),
        dead_letters: dead_letters(dir)?,
    };
    let mut streams: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for n in list_segments(dir)? {
        let name = seg_name(n);
        let file = File::open(dir.join(&name))?;
        let len = file.metadata()?.len();
        let mut seg = SegmentInfo { name: name.clone(), bytes: len, records: 0, waiting: 0 };
        let mut scan = Scanner::new(&file, 0, len);
        let mut last: Option<Ident> = None;
        let mut open_damage: Option<DamagedInfo> = None;
        while let Some(found) = scan.next_found()? {
            match found {
                Found::Record { offset, payload } => {
                    let id = Ident::of(&payload);
                    if let Some(mut d) = open_damage.take() {
                        d.after = id.clone();
                        out.damaged.push(d);
                    }
                    seg.records += 1;
                    if (Pos { segment: n, offset }) >= head {
                        seg.waiting += 1;
                        match &id {
                            Some(i) => {
                                let e =
                                    streams.entry((i.node.clone(), i.instance.clone())).or_insert((0, i.seq, i.seq));
                                *e = (e.0 + 1, e.1.min(i.seq), e.2.max(i.seq));
                            }
                            None => out.unparsed += 1,
                        }
                    }
                    last = id.or(last);
                }
                Found::Damaged { offset, len, why } | Found::Tail { offset, len, why } => {
                    open_damage = Some(DamagedInfo {
                        segment: name.clone(),
                        offset,
                        bytes: len,
                        reason: why,
                        at_end: offset + len == seg.bytes,
                        before: last.clone(),
                        after: None,
                    });
                }
            }
        }
        out.damaged.extend(open_damage);
        out.bytes += seg.bytes;
        out.waiting += seg.waiting;
        out.delivered += seg.records - seg.waiting;
        out.segments.push(seg);
    }
    out.streams = streams
        .into_iter()
        .map(|((node, instance), (reports, first_seq, last_seq))| Stream {
            node,
            instance,
            reports,
            first_seq,
            last_seq,
            missing: (last_seq - first_seq + 1).saturating_sub(reports),
        })
        .collect();
    Ok(out)
}

fn dead_letters(dir: &Path) -> io::Result<DeadLetterInfo> {
    let dl = DeadLetters::new(dir, u64::MAX);
    let letters = dl.read()?.unwrap_or_default();
    let bytes = dl.path().metadata().map(|m| m.len()).unwrap_or(0);
    Ok(DeadLetterInfo { path: dl.path().to_path_buf(), reports: letters.len() as u64, bytes })
}

fn ident(id: &Option<Ident>, edge: &str) -> String {
    id.as_ref().map_or_else(|| edge.to_string(), Ident::to_string)
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "spool {}", self.dir.display())?;
        match self.cursor {
            Some(c) => writeln!(f, "  cursor        segment {}, offset {}", seg_name(c.segment), c.offset)?,
            None => writeln!(f, "  cursor        none (nothing acknowledged yet)")?,
        }
        writeln!(f, "  segments      {} ({} bytes)", self.segments.len(), self.bytes)?;
        for s in &self.segments {
            writeln!(f, "    {}  {:>10} bytes  {:>6} records, {} waiting", s.name, s.bytes, s.records, s.waiting)?;
        }
        writeln!(f, "  waiting       {} reports ({} delivered ones still on disk)", self.waiting, self.delivered)?;
        for s in &self.streams {
            let missing = if s.missing > 0 { format!(", {} missing in between", s.missing) } else { String::new() };
            writeln!(
                f,
                "    {}/{}  seq {}..={}  ({} reports{missing})",
                s.node, s.instance, s.first_seq, s.last_seq, s.reports
            )?;
        }
        if self.unparsed > 0 {
            writeln!(f, "    {} reports whose JSON does not parse", self.unparsed)?;
        }
        let damaged: u64 = self.damaged.iter().map(|d| d.bytes).sum();
        writeln!(f, "  damaged       {} ranges ({damaged} bytes)", self.damaged.len())?;
        for d in &self.damaged {
            writeln!(
                f,
                "    {} at {}: {} bytes, {}{}, between {} and {}",
                d.segment,
                d.offset,
                d.bytes,
                d.reason,
                if d.at_end { ", to the end of the segment" } else { "" },
                ident(&d.before, "the start"),
                ident(&d.after, "the end"),
            )?;
        }
        writeln!(
            f,
            "  dead letters  {} reports ({} bytes, {})",
            self.dead_letters.reports,
            self.dead_letters.bytes,
            self.dead_letters.path.display()
        )
    }
}
