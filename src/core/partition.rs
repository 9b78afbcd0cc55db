//! The Java clients' default partitioner, so everything care routes or
//! produces is co-partitioned with topics written by JVM producers; and the
//! check that a source's producers use it too.

/// Partition of `key` among `partitions`: murmur2 with Kafka's seed, sign bit
/// cleared, modulo the count (Kafka's `Utils.toPositive(murmur2(key)) % n`).
pub fn for_key(key: &[u8], partitions: i32) -> i32 {
    let h = murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff;
    (h % partitions.max(1) as u32) as i32
}

/// Records of each source whose routing is watched after a start.
pub const ROUTING_SAMPLE: u64 = 10_000;
/// Misrouted records among a source's first [`ROUTING_SAMPLE`] beyond
/// which its producer is taken not to partition by murmur2 (1 %): a stray
/// record is a dead letter, a wrong partitioner stops care.
pub const MAX_MISROUTED: u64 = ROUTING_SAMPLE / 100;

/// Counts misrouted records of each source over its first
/// [`ROUTING_SAMPLE`] records; the shell stops when [`RoutingGuard::observe`]
/// says the partitioner is wrong.
#[derive(Debug, Clone, Default)]
pub struct RoutingGuard {
    /// (records seen, misrouted) per source, up to the sample size.
    seen: Vec<(u64, u64)>,
}

/// A source whose producer does not partition by murmur2(customer id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misrouting {
    pub source: usize,
    /// Records of the source seen, and how many of them were misrouted.
    pub seen: u64,
    pub misrouted: u64,
}

impl RoutingGuard {
    /// Counts one record of `source`.
    ///
    /// # Errors
    /// More than [`MAX_MISROUTED`] of the source's first
    /// [`ROUTING_SAMPLE`] records were misrouted.
    pub fn observe(&mut self, source: usize, misrouted: bool) -> Result<(), Misrouting> {
        if self.seen.len() <= source {
            self.seen.resize(source + 1, (0, 0));
        }
        let (seen, bad) = &mut self.seen[source];
        if *seen >= ROUTING_SAMPLE {
            return Ok(());
        }
        *seen += 1;
        *bad += u64::from(misrouted);
        if *bad > MAX_MISROUTED {
            return Err(Misrouting { source, seen: *seen, misrouted: *bad });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_trips_past_one_percent_of_the_first_ten_thousand_only() {
        let mut g = RoutingGuard::default();
        for i in 0..ROUTING_SAMPLE {
            assert!(g.observe(0, i % 100 == 0).is_ok(), "exactly 1 % is tolerated");
        }
        for _ in 0..1_000 {
            assert!(g.observe(0, true).is_ok(), "records past the sample are not counted");
        }
        let mut g = RoutingGuard::default();
        let tripped = (0..200).map(|_| g.observe(1, true)).find_map(Result::err).unwrap();
        assert_eq!(tripped, Misrouting { source: 1, seen: MAX_MISROUTED + 1, misrouted: MAX_MISROUTED + 1 });
        assert!(g.observe(0, false).is_ok(), "sources are counted apart");
    }

    #[test]
    fn matches_kafka_java_murmur2() {
        // Known answers from Kafka's UtilsTest.testMurmur2 (signed ints there).
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ];
        for (s, want) in cases {
            assert_eq!(murmur2::murmur2(s.as_bytes(), murmur2::KAFKA_SEED) as i32, want, "{s}");
        }
        assert_eq!(for_key(b"21", 1000), ((-973_932_308i32 as u32 & 0x7fff_ffff) % 1000) as i32);
    }
}
