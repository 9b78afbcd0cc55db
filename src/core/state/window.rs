//! Per-kind activity counts in a ring of hopping buckets.

use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::event::{Kind, KindSet};

/// Activity counts of one customer: for each kind, a ring of `width`
/// saturating counters, one per bucket, ending at the newest bucket written.
///
/// Buckets newer than `head` are implicitly zero; buckets that fell off the
/// ring are gone (and read as zero), which is what bounds the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Bucket number of the newest bucket held; `i64::MIN` when empty.
    head: i64,
    /// `Kind::TRACKED` rings of `width` counters, kind-major.
    counts: Box<[u16]>,
}

/// The counts held, as the state dump shows them: (bucket, kind, count),
/// newest first. The width is the config's, so it is not state.
impl Serialize for Activity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for (bucket, kind, count) in self.nonzero() {
            seq.serialize_element(&(bucket, kind.as_str(), count))?;
        }
        seq.end()
    }
}

impl Activity {
    /// An empty window of `width` buckets per kind.
    pub fn new(width: usize) -> Activity {
        Activity { head: i64::MIN, counts: vec![0; width * Kind::TRACKED].into_boxed_slice() }
    }

    /// Buckets per kind.
    pub(crate) fn width(&self) -> i64 {
        (self.counts.len() / Kind::TRACKED) as i64
    }

    fn slot(&self, bucket: i64, kind: Kind) -> usize {
        kind.idx() * self.width() as usize + bucket.rem_euclid(self.width()) as usize
    }

    /// Whether `bucket` is still held (not newer than head, not fallen off).
    fn holds(&self, bucket: i64) -> bool {
        self.head != i64::MIN && bucket <= self.head && bucket > self.head - self.width()
    }

    /// Counts one event of `kind` in `bucket`. Returns false (and counts
    /// nothing) when the bucket already fell off the ring, or for a kind
    /// not tracked (a survey answer is not activity).
    pub fn add(&mut self, bucket: i64, kind: Kind) -> bool {
        if !kind.is_tracked() {
            return false;
        }
        if self.head == i64::MIN || bucket > self.head {
            self.advance_to(bucket);
        } else if !self.holds(bucket) {
            return false;
        }
        let i = self.slot(bucket, kind);
        self.counts[i] = self.counts[i].saturating_add(1);
        true
    }

    /// Zeroes the buckets between the old head and `bucket`, making it head.
    fn advance_to(&mut self, bucket: i64) {
        let w = self.width();
        let first = if self.head == i64::MIN { bucket - w + 1 } else { (self.head + 1).max(bucket - w + 1) };
        for b in first..=bucket {
            for k in Kind::TRACKED_ALL {
                let i = self.slot(b, k);
                self.counts[i] = 0;
            }
        }
        self.head = bucket;
    }

    /// Events of `kind` in `bucket`.
    pub fn count(&self, bucket: i64, kind: Kind) -> u16 {
        if self.holds(bucket) && kind.is_tracked() {
            self.counts[self.slot(bucket, kind)]
        } else {
            0
        }
    }

    /// Events of the kinds in `kinds` over buckets `from..to`.
    pub fn sum(&self, from: i64, to: i64, kinds: KindSet) -> u32 {
        kinds.iter().map(|k| self.sum_kind(from, to, k)).sum()
    }

    /// Events of one kind over buckets `from..to`.
    pub fn sum_kind(&self, from: i64, to: i64, kind: Kind) -> u32 {
        if self.head == i64::MIN || !kind.is_tracked() {
            return 0;
        }
        let lo = from.max(self.head - self.width() + 1);
        let hi = to.min(self.head + 1);
        (lo..hi).map(|b| u32::from(self.counts[self.slot(b, kind)])).sum()
    }

    /// Events of every tracked kind over buckets `from..to`, by kind
    /// index: what [`Activity::sum_kind`] gives kind by kind, in one pass
    /// over the buckets and one remainder (a profile shows them all).
    pub fn sums(&self, from: i64, to: i64) -> [u32; Kind::TRACKED] {
        let mut sums = [0u32; Kind::TRACKED];
        if self.head == i64::MIN {
            return sums;
        }
        let w = self.width();
        let (lo, hi) = (from.max(self.head - w + 1), to.min(self.head + 1));
        if lo >= hi {
            return sums;
        }
        let (w, mut j) = (w as usize, lo.rem_euclid(w) as usize);
        for _ in lo..hi {
            for (k, s) in sums.iter_mut().enumerate() {
                *s += u32::from(self.counts[k * w + j]);
            }
            j = if j + 1 == w { 0 } else { j + 1 };
        }
        sums
    }

    /// Heap bytes held (for the state-size gauge and benchmarks).
    pub fn heap_bytes(&self) -> usize {
        self.counts.len() * std::mem::size_of::<u16>()
    }

    /// The newest bucket held; `None` when nothing was ever counted.
    pub(crate) fn head(&self) -> Option<i64> {
        (self.head != i64::MIN).then_some(self.head)
    }

    /// The nonzero counts held as (bucket, kind, count), newest bucket first
    /// and kinds in index order within a bucket, so encodings are stable.
    pub(crate) fn nonzero(&self) -> impl Iterator<Item = (i64, Kind, u16)> + '_ {
        let buckets = self.head().map_or(0..0, |_| 0..self.width());
        buckets.flat_map(move |back| {
            let b = self.head - back;
            Kind::TRACKED_ALL.into_iter().map(move |k| (b, k, self.count(b, k))).filter(|&(_, _, n)| n > 0)
        })
    }

    /// Makes `bucket` the head if it is newer, as counting in it would:
    /// restoring state sets the head before its counts.
    pub(crate) fn reach(&mut self, bucket: i64) {
        if self.head == i64::MIN || bucket > self.head {
            self.advance_to(bucket);
        }
    }

    /// Sets the count of `kind` in `bucket`. Returns false (and sets
    /// nothing) when the bucket is not held.
    pub(crate) fn set(&mut self, bucket: i64, kind: Kind, count: u16) -> bool {
        if !self.holds(bucket) || !kind.is_tracked() {
            return false;
        }
        let i = self.slot(bucket, kind);
        self.counts[i] = count;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn old_buckets_fall_off_and_read_zero() {
        let mut a = Activity::new(3);
        assert!(a.add(10, Kind::Click));
        assert!(a.add(10, Kind::Click));
        assert!(a.add(12, Kind::Login));
        assert_eq!(a.count(10, Kind::Click), 2);
        assert!(a.add(13, Kind::Click));
        assert_eq!(a.count(10, Kind::Click), 0, "bucket 10 left the 3-wide ring");
        assert!(!a.add(10, Kind::Click), "too old to count");
        assert!(!a.add(13, Kind::Survey), "a survey answer is not activity");
        assert_eq!((a.count(13, Kind::Survey), a.sum_kind(0, 100, Kind::Survey)), (0, 0));
        assert_eq!(a.sum(0, 100, KindSet::ALL), 2);
    }

    proptest! {
        /// The ring agrees with a naive map of every event, over the buckets
        /// it still holds, whatever order events arrive in.
        #[test]
        fn ring_matches_naive_model(width in 1usize..12, events in proptest::collection::vec((0i64..40, 0usize..Kind::COUNT), 0..200)) {
            let mut ring = Activity::new(width);
            let mut naive: BTreeMap<(i64, usize), u32> = BTreeMap::new();
            let mut head = i64::MIN;
            for (b, k) in events {
                let kept = ring.add(b, Kind::ALL[k]);
                if !Kind::ALL[k].is_tracked() {
                    prop_assert!(!kept, "surveys are never counted");
                    continue;
                }
                prop_assert_eq!(kept, head == i64::MIN || b > head - width as i64);
                if kept {
                    *naive.entry((b, k)).or_default() += 1;
                    head = head.max(b);
                }
            }
            if head == i64::MIN { return Ok(()); }
            let lo = head - width as i64 + 1;
            for b in lo - 3..=head + 3 {
                for (k, kind) in Kind::ALL.into_iter().enumerate() {
                    let want = if b >= lo && b <= head { naive.get(&(b, k)).copied().unwrap_or(0) } else { 0 };
                    prop_assert_eq!(u32::from(ring.count(b, kind)), want, "bucket {} kind {}", b, k);
                }
            }
            let total: u32 = naive.iter().filter(|((b, _), _)| *b >= lo).map(|(_, n)| n).sum();
            prop_assert_eq!(ring.sum(i64::MIN / 2, i64::MAX / 2, KindSet::ALL), total);
            // Every range, in or across the ring's end: all kinds at once
            // as kind by kind.
            for from in lo - 3..=head + 3 {
                for to in from - 1..=head + 4 {
                    let sums = ring.sums(from, to);
                    for kind in Kind::TRACKED_ALL {
                        prop_assert_eq!(sums[kind.idx()], ring.sum_kind(from, to, kind), "{}..{} {:?}", from, to, kind);
                    }
                }
            }
        }
    }
}
