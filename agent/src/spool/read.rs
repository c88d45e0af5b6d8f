//! The read side of the spool: records in order from the cursor, past
//! damage, and acknowledgements.

use super::record::{Found, Ident, Scanner};
use super::{Pos, Spool, events, seg_name};
use std::fs::File;
use std::io;

impl Spool {
    /// Up to `max` unacknowledged records from the head, in order, each with
    /// the position just past it (to [`Spool::ack`] once sent). Damaged bytes
    /// are skipped (counted and logged once); the head steps over them when
    /// nothing unacknowledged lies before.
    pub fn peek(&mut self, max: usize, max_bytes: usize) -> io::Result<Vec<(Vec<u8>, Pos)>> {
        let mut out: Vec<(Vec<u8>, Pos)> = Vec::new();
        let mut bytes = 0;
        let mut pos = self.head;
        let mut damage: Option<events::DamagedRange> = None;
        while out.len() < max && bytes < max_bytes && pos.segment <= self.tail {
            let end = match self.sizes.get(&pos.segment) {
                Some(&len) => len,
                None if pos.segment < self.tail => {
                    pos = Pos { segment: pos.segment + 1, offset: 0 };
                    continue;
                }
                None => break,
            };
            let path = self.dir.join(seg_name(pos.segment));
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound && pos.segment < self.tail => {
                    tracing::warn!("spool: segment {} vanished; going on with the next", path.display());
                    self.sizes.remove(&pos.segment);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut scan = Scanner::new(&file, pos.offset, end);
            while out.len() < max && bytes < max_bytes {
                let Some(found) = scan.next_found()? else { break };
                pos.offset = scan.pos();
                match found {
                    Found::Record { payload, .. } => {
                        if let Some(d) = damage.take() {
                            self.report_damage(d, Ident::of(&payload));
                        }
                        bytes += payload.len();
                        out.push((payload, pos));
                    }
                    Found::Damaged { offset, len, why } | Found::Tail { offset, len, why } => {
                        if (Pos { segment: pos.segment, offset }) >= self.scanned {
                            let before = match out.last() {
                                Some((p, _)) => Ident::of(p),
                                None => self.last_read.clone(),
                            };
                            damage = Some(events::DamagedRange { path: path.clone(), offset, len, why, before });
                        }
                        if out.is_empty() {
                            self.set_head(pos);
                        }
                    }
                }
            }
            self.scanned = self.scanned.max(pos);
            if pos.offset >= end && pos.segment < self.tail {
                pos = Pos { segment: pos.segment + 1, offset: 0 };
                if out.is_empty() {
                    self.set_head(pos);
                }
            } else {
                break;
            }
        }
        self.scanned = self.scanned.max(pos);
        if let Some(d) = damage {
            self.report_damage(d, None);
        }
        if let Some((p, _)) = out.last() {
            self.last_read = Ident::of(p);
        }
        Ok(out)
    }

    pub(super) fn report_damage(&mut self, d: events::DamagedRange, after: Option<Ident>) {
        self.stats.damaged_ranges += 1;
        self.stats.damaged_bytes += d.len;
        events::damage_skipped(&d, after.as_ref(), &self.stats);
    }

    /// Marks everything before `pos` as acknowledged; removes finished
    /// segments, and the tail segment too once everything is delivered.
    pub fn ack(&mut self, pos: Pos) -> io::Result<()> {
        if pos <= self.head {
            return Ok(());
        }
        let all = pos.segment == self.tail && pos.offset >= self.tail_len && self.backlog.is_empty();
        if all && self.tail_len > 0 {
            self.seal_tail();
            self.set_head(Pos { segment: self.tail, offset: 0 });
        } else {
            self.set_head(pos);
        }
        if !self.backlog.is_empty() {
            // Space may have come back.
            let _ = self.flush();
        }
        Ok(())
    }
}
