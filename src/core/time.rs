//! Bucket arithmetic in the configured timezone, and instants as text.

use chrono::{DateTime, SecondsFormat};

/// RFC 3339 in UTC with milliseconds, e.g. `2026-01-01T00:00:00.000Z`.
/// Years 0 to 9999 are written digit by digit ([`rfc3339_bytes`]): every
/// output carries several of these, a profile a dozen. Other instants go
/// through chrono, as before.
pub fn rfc3339(ms: i64) -> String {
    match rfc3339_bytes(ms) {
        Some(b) => String::from_utf8(b.to_vec()).expect("ASCII digits"),
        None => DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    }
}

/// An instant that serialises as [`rfc3339`] without a `String` in
/// between: what scorecards and profiles hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time(pub i64);

impl Time {
    /// The instant as RFC 3339 digits, for years 0 to 9999.
    pub fn digits(self) -> Option<[u8; 24]> {
        rfc3339_bytes(self.0)
    }
}

impl serde::Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match rfc3339_bytes(self.0) {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII digits")),
            None => s.serialize_str(&rfc3339(self.0)),
        }
    }
}

/// A calendar date, as days since 1970-01-01, that serialises as
/// `YYYY-MM-DD` (years 0 to 9999 digit by digit, others as chrono writes
/// them) without a `String` in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(i64);

impl Date {
    /// `None` for a day chrono cannot name.
    pub fn of_day(day: i64) -> Option<Date> {
        (Date::digits_of(day).is_some() || Date::by_chrono(day).is_some()).then_some(Date(day))
    }

    /// `YYYY-MM-DD`, for years 0 to 9999.
    pub fn digits(self) -> Option<[u8; 10]> {
        Date::digits_of(self.0)
    }

    fn digits_of(day: i64) -> Option<[u8; 10]> {
        let b = rfc3339_bytes(day.checked_mul(86_400_000)?)?;
        Some(b[..10].try_into().expect("10 bytes"))
    }

    fn by_chrono(day: i64) -> Option<String> {
        chrono::NaiveDate::default().checked_add_signed(chrono::TimeDelta::try_days(day)?).map(|d| d.to_string())
    }

    /// The date as text.
    pub fn text(self) -> String {
        match self.digits() {
            Some(b) => String::from_utf8(b.to_vec()).expect("ASCII digits"),
            None => Date::by_chrono(self.0).unwrap_or_default(),
        }
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.digits() {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII digits")),
            None => s.serialize_str(&self.text()),
        }
    }
}

/// [`rfc3339`] of years 0 to 9999 as bytes; `None` outside them.
fn rfc3339_bytes(ms: i64) -> Option<[u8; 24]> {
    // 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
    const FIRST: i64 = -62_167_219_200_000;
    const LAST: i64 = 253_402_300_799_999;
    if !(FIRST..=LAST).contains(&ms) {
        return None;
    }
    // In range, ms + |FIRST| is not negative: plain division, no euclid,
    // and the time of day fits 32 bits.
    let since = (ms - FIRST) as u64;
    let (days, in_day) = ((since / 86_400_000) as i64 + FIRST / 86_400_000, (since % 86_400_000) as u32);
    let (y, m, d) = civil(days);
    let (y, m, d) = (y as u32, m as u32, d as u32);
    let (secs, milli) = (in_day / 1000, in_day % 1000);
    let mut b = *b"0000-00-00T00:00:00.000Z";
    pair(&mut b, 0, y / 100);
    pair(&mut b, 2, y % 100);
    pair(&mut b, 5, m);
    pair(&mut b, 8, d);
    pair(&mut b, 11, secs / 3600);
    pair(&mut b, 14, secs / 60 % 60);
    pair(&mut b, 17, secs % 60);
    b[20] = b'0' + (milli / 100) as u8;
    pair(&mut b, 21, milli % 100);
    Some(b)
}

/// Writes `v` (under 100) as two digits at `at`.
fn pair(b: &mut [u8; 24], at: usize, v: u32) {
    const DIGITS: &[u8; 200] = b"0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let i = (v as usize % 100) * 2;
    b[at..at + 2].copy_from_slice(&DIGITS[i..i + 2]);
}

/// The calendar month of a day number (days since 1970-01-01), as months
/// since January 1970; `None` past chrono's years (±262,143), whose
/// arithmetic the callers were written against.
pub fn month_of_day(days: i64) -> Option<i32> {
    let (y, m, _) = civil(days);
    (-262_143..=262_142).contains(&y).then(|| ((y - 1970) * 12 + m - 1) as i32)
}

/// What [`civil_u32`] adds to a day number (days since 1970-01-01): 82
/// cycles of 400 years, so every day from the year −32,800 on is a
/// positive count.
const SHIFT: i64 = 719_468 + 146_097 * 82;

/// The proleptic Gregorian date of a day number (days since 1970-01-01).
/// Every event, order and profile instant goes through here, so the
/// common years take [`civil_u32`]; the rest Hinnant's `civil_from_days`.
fn civil(days: i64) -> (i64, i64, i64) {
    // 4 × (days + SHIFT) + 3 must fit 32 bits.
    if (-SHIFT..=1_000_000_000).contains(&days) {
        let (y, m, d) = civil_u32((days + SHIFT) as u32);
        return (i64::from(y) - 32_800, i64::from(m), i64::from(d));
    }
    hinnant(days)
}

fn hinnant(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Neri and Schneider's calendar by Euclidean affine functions, on a day
/// count shifted by [`SHIFT`]: (year + 32,800, month, day), in unsigned
/// 32-bit multiplications and shifts.
fn civil_u32(n: u32) -> (u32, u32, u32) {
    let n1 = 4 * n + 3;
    let (century, of_century) = (n1 / 146_097, n1 % 146_097 / 4);
    let p2 = 2_939_745 * u64::from(4 * of_century + 3);
    let (of_cycle, of_year) = ((p2 >> 32) as u32, (p2 as u32) / 2_939_745 / 4);
    let n3 = 2141 * of_year + 197_913;
    let (m, d) = (n3 >> 16, (n3 & 0xFFFF) / 2141 + 1);
    let january = u32::from(of_year >= 306);
    (100 * century + of_cycle + january, if january == 1 { m - 12 } else { m }, d)
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
    use proptest::prelude::*;

    fn by_chrono(ms: i64) -> String {
        DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    proptest! {
        #[test]
        fn rfc3339_writes_what_chrono_writes(ms in -62_167_219_200_000i64..=253_402_300_799_999) {
            prop_assert_eq!(rfc3339(ms), by_chrono(ms));
        }
    }

    #[test]
    fn a_time_serialises_as_its_rfc3339() {
        for ms in [0, 1_767_225_600_123, 253_402_300_800_000, i64::MIN] {
            assert_eq!(serde_json::to_string(&Time(ms)).unwrap(), serde_json::to_string(&rfc3339(ms)).unwrap(), "{ms}");
        }
    }

    proptest! {
        #[test]
        fn a_date_is_what_chrono_writes(day in -100_000_000i64..100_000_000) {
            let chrono = chrono::NaiveDate::default().checked_add_signed(chrono::TimeDelta::days(day)).map(|d| d.to_string());
            let ours = Date::of_day(day);
            prop_assert_eq!(ours.map(Date::text), chrono.clone());
            prop_assert_eq!(ours.map(|d| serde_json::to_string(&d).unwrap()), chrono.map(|c| serde_json::to_string(&c).unwrap()));
        }
    }

    proptest! {
        #[test]
        fn the_32_bit_calendar_is_hinnants(days in -SHIFT..=1_000_000_000) {
            let (y, m, d) = civil_u32((days + SHIFT) as u32);
            prop_assert_eq!((i64::from(y) - 32_800, i64::from(m), i64::from(d)), hinnant(days));
        }
    }

    #[test]
    fn the_32_bit_calendar_at_its_edges() {
        for days in [-SHIFT, -SHIFT + 1, -719_528, -1, 0, 59, 60, 2_932_896, 999_999_999, 1_000_000_000] {
            assert_eq!(civil(days), hinnant(days), "{days}");
        }
        for days in [-SHIFT - 1, 1_000_000_001, i64::MIN / 2, i64::MAX / 2] {
            assert_eq!(civil(days), hinnant(days), "{days}");
        }
    }

    #[test]
    fn dates_at_the_edges() {
        for (day, text) in [(0, Some("1970-01-01")), (-719_528, Some("0000-01-01")), (2_932_896, Some("9999-12-31")), (2_932_897, Some("+10000-01-01")), (-719_529, Some("-0001-12-31")), (i64::MAX, None)] {
            assert_eq!(Date::of_day(day).map(Date::text).as_deref(), text, "{day}");
        }
    }

    #[test]
    fn rfc3339_at_the_edges() {
        for ms in [0, -1, 951_782_400_000, 4_107_542_400_000, -62_167_219_200_000, 253_402_300_799_999, 1_767_225_600_000] {
            assert_eq!(rfc3339(ms), by_chrono(ms), "{ms}");
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(253_402_300_800_000), "+10000-01-01T00:00:00.000Z", "chrono's form past 9999");
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string(), "out of chrono's range: the number");
    }

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
