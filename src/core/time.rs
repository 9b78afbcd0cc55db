//! Bucket arithmetic in the configured timezone, and instants as text.

use chrono::{DateTime, SecondsFormat};

/// RFC 3339 in UTC with milliseconds, e.g. `2026-01-01T00:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Hopping buckets of `bucket_ms`, aligned to a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub bucket_ms: i64,
    pub offset_ms: i64,
}

impl Buckets {
    /// The bucket an instant falls in.
    pub fn of(&self, ms: i64) -> i64 {
        (ms + self.offset_ms).div_euclid(self.bucket_ms)
    }

    /// The instant a bucket starts.
    pub fn start_ms(&self, bucket: i64) -> i64 {
        bucket * self.bucket_ms - self.offset_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_utc_offset() {
        let day = 86_400_000;
        let b = Buckets { bucket_ms: day, offset_ms: 2 * 3_600_000 }; // +02:00
        // 23:00 UTC on day 0 is 01:00 local on day 1.
        assert_eq!(b.of(23 * 3_600_000), 1);
        assert_eq!(b.start_ms(1), day - 2 * 3_600_000);
        assert_eq!(b.of(-1 - 2 * 3_600_000), -1, "before the epoch rounds down");
    }
}
