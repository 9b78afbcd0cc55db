//! The Java clients' default partitioner, so everything care routes or
//! produces is co-partitioned with topics written by JVM producers.

/// Partition of `key` among `partitions`: murmur2 with Kafka's seed, sign bit
/// cleared, modulo the count (Kafka's `Utils.toPositive(murmur2(key)) % n`).
pub fn for_key(key: &[u8], partitions: i32) -> i32 {
    let h = murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff;
    (h % partitions.max(1) as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

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
