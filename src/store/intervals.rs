//! Sets of disjoint time intervals: which time of a GPU (or of a node) is
//! already charged. A report is charged only for the part of its interval
//! not in the set, and the set then grows by that part, merging as it fills.

use serde::{Deserialize, Serialize};

/// Most intervals a set keeps; beyond it the smallest gaps are sealed (that
/// time can no longer be charged, which can only under-charge) and counted.
pub const MAX_INTERVALS: usize = 256;

/// Disjoint, sorted, non-touching half-open intervals [start, end) in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntervalSet(Vec<(i64, i64)>);

impl IntervalSet {
    pub fn intervals(&self) -> &[(i64, i64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Total length in milliseconds.
    pub fn total_ms(&self) -> i64 {
        self.0.iter().map(|(a, b)| b - a).sum()
    }

    /// The parts of [start, end) not in the set, in order.
    pub fn uncovered(&self, start: i64, end: i64) -> Vec<(i64, i64)> {
        let mut out = vec![];
        let mut t = start;
        // The first interval that ends after `start`.
        let i = self.0.partition_point(|&(_, b)| b <= start);
        for &(a, b) in &self.0[i..] {
            if a >= end {
                break;
            }
            if a > t {
                out.push((t, a));
            }
            t = t.max(b);
            if t >= end {
                break;
            }
        }
        if t < end {
            out.push((t, end));
        }
        out
    }

    /// Adds [start, end), merging with the intervals it overlaps or touches.
    pub fn insert(&mut self, start: i64, end: i64) {
        if end <= start {
            return;
        }
        let i = self.0.partition_point(|&(_, b)| b < start);
        let mut j = i;
        let (mut a, mut b) = (start, end);
        while j < self.0.len() && self.0[j].0 <= end {
            a = a.min(self.0[j].0);
            b = b.max(self.0[j].1);
            j += 1;
        }
        self.0.splice(i..j, [(a, b)]);
    }

    /// Keeps at most `max` intervals by filling the smallest gaps; returns
    /// the milliseconds sealed that way.
    pub fn cap(&mut self, max: usize) -> i64 {
        let mut sealed = 0;
        while self.0.len() > max.max(1) {
            let k = (1..self.0.len()).min_by_key(|&k| self.0[k].0 - self.0[k - 1].1).expect("two or more");
            sealed += self.0[k].0 - self.0[k - 1].1;
            self.0[k - 1].1 = self.0[k].1;
            self.0.remove(k);
        }
        sealed
    }

    /// Forgets intervals that end at or before `t` (older than the deduplication horizon).
    pub fn forget_before(&mut self, t: i64) {
        self.0.retain(|&(_, b)| b > t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: &[(i64, i64)]) -> IntervalSet {
        let mut s = IntervalSet::default();
        for &(a, b) in v {
            s.insert(a, b);
        }
        s
    }

    #[test]
    fn inserting_merges_what_touches_and_overlaps() {
        let s = set(&[(0, 10), (20, 30), (10, 20)]);
        assert_eq!(s.intervals(), &[(0, 30)]);
        let s = set(&[(0, 10), (40, 50), (5, 45)]);
        assert_eq!(s.intervals(), &[(0, 50)]);
        let s = set(&[(40, 50), (0, 10), (20, 25)]);
        assert_eq!(s.intervals(), &[(0, 10), (20, 25), (40, 50)]);
    }

    #[test]
    fn only_new_time_is_uncovered() {
        let s = set(&[(0, 10), (20, 30)]);
        assert_eq!(s.uncovered(0, 10), vec![]);
        assert_eq!(s.uncovered(5, 25), vec![(10, 20)]);
        assert_eq!(s.uncovered(-5, 35), vec![(-5, 0), (10, 20), (30, 35)]);
        assert_eq!(s.uncovered(40, 50), vec![(40, 50)]);
    }

    #[test]
    fn capping_seals_the_smallest_gaps() {
        let mut s = set(&[(0, 10), (12, 20), (30, 40), (41, 50)]);
        assert_eq!(s.cap(2), 1 + 2);
        assert_eq!(s.intervals(), &[(0, 20), (30, 50)]);
    }

    proptest! {
        /// Whatever the order and overlap of inserted intervals, the new time
        /// each brings adds up to the length of their union.
        #[test]
        fn new_time_adds_up_to_the_union(v in proptest::collection::vec((0i64..1000, 1i64..200), 0..40)) {
            let mut s = IntervalSet::default();
            let mut charged = 0;
            let mut grid = vec![false; 1200];
            for (a, len) in v {
                let b = a + len;
                charged += s.uncovered(a, b).iter().map(|(x, y)| y - x).sum::<i64>();
                s.insert(a, b);
                for cell in &mut grid[a as usize..b as usize] {
                    *cell = true;
                }
            }
            let union = grid.iter().filter(|c| **c).count() as i64;
            prop_assert_eq!(charged, union);
            prop_assert_eq!(s.total_ms(), union);
            prop_assert!(s.intervals().windows(2).all(|w| w[0].1 < w[1].0));
        }
    }
}
