//! The sequence numbers each agent instance has delivered, as ranges: the
//! fast path of deduplication (a resent report is known without looking at
//! its time). The record stays small whatever the gaps: at most
//! [`MAX_RANGES`] ranges, forgetting the oldest beyond that. Forgetting is
//! safe: a forgotten sequence number that comes again is charged only for
//! time not yet charged, which is none.

/// Most ranges one instance's record keeps.
pub const MAX_RANGES: usize = 64;

/// Delivered sequence numbers: sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    ranges: Vec<(i64, i64)>,
    /// Latest interval end of the instance's reports (for pruning).
    pub last_ms: i64,
}

impl Seen {
    /// From the stored text `a-b,c-d,…` (a malformed part is skipped).
    pub fn parse(text: &str, last_ms: i64) -> Self {
        let mut s = Seen { ranges: vec![], last_ms };
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>())
                && a <= b
            {
                s.fill(a, b);
            }
        }
        let extra = s.ranges.len().saturating_sub(MAX_RANGES);
        s.ranges.drain(..extra);
        s
    }

    /// The stored text.
    pub fn to_text(&self) -> String {
        self.ranges
            .iter()
            .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }

    fn fill(&mut self, a: i64, b: i64) {
        let i = self.ranges.partition_point(|&(_, hi)| hi < a.saturating_sub(1));
        let mut j = i;
        let (mut lo, mut hi) = (a, b);
        while j < self.ranges.len() && self.ranges[j].0 <= b.saturating_add(1) {
            lo = lo.min(self.ranges[j].0);
            hi = hi.max(self.ranges[j].1);
            j += 1;
        }
        self.ranges.splice(i..j, [(lo, hi)]);
    }

    /// Records `seq`; false when it was already delivered.
    pub fn insert(&mut self, seq: i64) -> bool {
        let i = self.ranges.partition_point(|&(_, hi)| hi < seq);
        if self.ranges.get(i).is_some_and(|&(lo, _)| lo <= seq) {
            return false;
        }
        self.fill(seq, seq);
        if self.ranges.len() > MAX_RANGES {
            self.ranges.remove(0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sequence_number_counts_once_whatever_the_order() {
        let mut s = Seen::default();
        assert!(s.insert(0));
        assert!(s.insert(2));
        assert!(!s.insert(2));
        assert!(!s.insert(0));
        assert_eq!(s.ranges(), &[(0, 0), (2, 2)]);
        assert!(s.insert(1));
        assert_eq!(s.ranges(), &[(0, 2)]);
        let mut back = Seen::parse(&s.to_text(), 0);
        assert!(!back.insert(1));
        assert!(back.insert(7));
        assert_eq!(back.to_text(), "0-2,7");
        assert_eq!(Seen::parse("0-2,7", 0).ranges().len(), 2);
    }

    #[test]
    fn a_lost_sequence_number_leaves_the_record_small() {
        let mut s = Seen::default();
        s.insert(0);
        // seq 1 is lost; 10,000 more reports follow.
        for seq in 2..10_002 {
            assert!(s.insert(seq));
        }
        assert_eq!(s.to_text(), "0,2-10001");
        // Many gaps: the record keeps the newest ranges only.
        for seq in (20_000..30_000).step_by(2) {
            s.insert(seq);
        }
        assert_eq!(s.ranges().len(), MAX_RANGES);
        assert!(s.to_text().len() < 1000, "{}", s.to_text().len());
        assert!(!s.insert(29_998));
    }
}
