//! The sequence numbers each agent instance has delivered: the fast path of
//! deduplication.

/// The sequence numbers one agent instance has delivered: all up to `upto`,
/// and the few beyond it that came early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub upto: i64,
    pub extra: std::collections::BTreeSet<i64>,
    pub last_ms: i64,
}

impl Default for Seen {
    fn default() -> Self {
        Self { upto: -1, extra: Default::default(), last_ms: 0 }
    }
}

impl Seen {
    pub fn from_row(upto: i64, extra: &str) -> Self {
        let extra = extra.split(',').filter_map(|x| x.parse().ok()).collect();
        Self { upto, extra, last_ms: 0 }
    }

    pub fn to_row(&self) -> (i64, String) {
        (self.upto, self.extra.iter().map(i64::to_string).collect::<Vec<_>>().join(","))
    }

    /// Records `seq`; false when it was already delivered.
    pub fn insert(&mut self, seq: i64) -> bool {
        if seq <= self.upto || !self.extra.insert(seq) {
            return false;
        }
        while self.extra.remove(&(self.upto + 1)) {
            self.upto += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_each_sequence_number_once_whatever_the_order() {
        let mut s = Seen::default();
        assert!(s.insert(0));
        assert!(s.insert(2));
        assert!(!s.insert(2));
        assert!(!s.insert(0));
        assert_eq!((s.upto, s.extra.len()), (0, 1));
        assert!(s.insert(1));
        assert_eq!((s.upto, s.extra.len()), (2, 0));
        let (upto, extra) = s.to_row();
        let mut back = Seen::from_row(upto, &extra);
        assert!(!back.insert(1));
        assert!(back.insert(7));
        let (u, e) = back.to_row();
        assert_eq!((u, e.as_str()), (2, "7"));
        assert_eq!(Seen::from_row(u, &e).extra.len(), 1);
    }
}
