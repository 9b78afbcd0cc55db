use super::*;
use care_core::decode::DecodeError;
use care_core::event::{Event, Kind};

fn rec(offset: i64, ts_ms: i64) -> Pending {
    let ev = Event { customer_id: "c".into(), kind: Kind::Click, ts_ms, amount: None, csat: None, nps: None, event_id: None };
    Pending { offset, prepared: Prepared::Event(ev), raw: None, decode_time: Duration::ZERO }
}

fn bad(offset: i64) -> Pending {
    Pending { offset, prepared: Prepared::Reject(DecodeError::NotAnObject), raw: None, decode_time: Duration::ZERO }
}

fn taken(input: &mut TaskInput, now: Instant, idle: Duration) -> Vec<(usize, i64)> {
    std::iter::from_fn(|| input.next(now, idle)).map(|n| (n.source, n.record.offset)).collect()
}

const IDLE: Duration = Duration::from_millis(0);

/// A sample with the low watermark and fetch position in range.
fn lag(sample_us: i64, position: i64, end: i64) -> LagSample {
    LagSample { sample_us, position, end, low: 0, fetch_position: end }
}

#[test]
fn takes_the_smallest_head_event_time_across_partitions_in_partition_order() {
    let (now, t0) = (Instant::now(), 100);
    let mut input = TaskInput::new(2, t0);
    for (o, ts) in [(0, 10), (1, 30), (2, 50)] {
        input.push(0, rec(o, ts), t0);
    }
    for (o, ts) in [(0, 20), (1, 40)] {
        input.push(1, rec(o, ts), t0);
    }
    // Source 1 drains first; then source 0 must wait for it (lag unknown).
    assert_eq!(taken(&mut input, now, IDLE), vec![(0, 0), (1, 0), (0, 1), (1, 1)]);
    assert_eq!(input.buffered(), 1);
}

#[test]
fn an_empty_partition_of_unknown_or_positive_lag_is_waited_for_without_a_timeout() {
    let t0 = 100;
    let mut input = TaskInput::new(2, t0);
    input.push(0, rec(0, 10), t0);
    let later = Instant::now() + Duration::from_secs(3600);
    assert!(input.next(later, IDLE).is_none(), "unknown lag: wait");
    input.observe_lag(1, lag(t0 + 1, 5, 9), later);
    assert!(input.next(later, IDLE).is_none(), "behind: wait");
}

#[test]
fn a_caught_up_empty_partition_stops_blocking_after_max_task_idle() {
    let (now, t0) = (Instant::now(), 100);
    let idle = Duration::from_millis(500);
    let mut input = TaskInput::new(2, t0);
    input.push(0, rec(0, 10), t0);
    input.observe_lag(1, lag(t0 + 1, 9, 9), now);
    assert!(input.next(now + Duration::from_millis(499), idle).is_none());
    let n = input.next(now + Duration::from_millis(500), idle).expect("idle long enough");
    assert_eq!((n.source, n.record.offset, n.enforced), (0, 0, true));
}

#[test]
fn samples_taken_before_a_reset_or_an_arrival_are_ignored() {
    let now = Instant::now();
    let mut input = TaskInput::new(2, 100);
    input.push(0, rec(0, 10), 100);
    input.reset(200, &[Some(0), Some(9)]);
    input.push(0, rec(0, 10), 200);
    input.observe_lag(1, lag(150, 9, 9), now); // queued before the seek
    assert!(input.next(now, IDLE).is_none());
    input.observe_lag(1, lag(250, 9, 9), now);
    assert!(input.next(now, IDLE).is_some());
    // A record arrives on source 1 and is taken: until a newer sample, its
    // lag is unknown again.
    input.push(1, rec(9, 20), 300);
    input.push(0, rec(1, 30), 300);
    assert_eq!(input.next(now, IDLE).map(|n| n.source), Some(1));
    assert!(input.next(now, IDLE).is_none());
    input.observe_lag(1, lag(301, -1001, 11), now);
    assert!(input.next(now, IDLE).is_none(), "a marker at 10: behind until librdkafka's position steps over it");
    input.observe_lag(1, lag(302, 11, 11), now);
    assert_eq!(input.next(now, IDLE).map(|n| (n.source, n.record.offset)), Some((0, 1)));
}

#[test]
fn a_record_that_did_not_decode_goes_first_and_ties_go_to_the_lower_source() {
    let now = Instant::now();
    let mut input = TaskInput::new(3, 0);
    input.push(0, rec(0, 10), 0);
    input.push(1, rec(0, 10), 0);
    input.push(2, bad(0), 0);
    assert_eq!(taken(&mut input, now, IDLE), vec![(2, 0)]);
    input.observe_lag(2, lag(1, 1, 1), now);
    assert_eq!(taken(&mut input, now, IDLE), vec![(0, 0)]);
}

#[test]
fn a_single_source_task_never_waits() {
    let mut input = TaskInput::new(1, 0);
    input.push(0, rec(0, 10), 0);
    input.push(0, rec(1, 5), 0);
    assert_eq!(taken(&mut input, Instant::now(), IDLE), vec![(0, 0), (0, 1)]);
}

#[test]
fn a_full_partition_is_paused_once_and_resumed_when_half_drained() {
    let now = Instant::now();
    let mut input = TaskInput::new(2, 0);
    let pauses = (0..MAX_BUFFERED as i64 + 10).filter(|&o| input.push(0, rec(o, o), 0)).count();
    assert_eq!(pauses, 1);
    input.observe_lag(1, lag(1, 0, 0), now);
    for _ in 0..(MAX_BUFFERED + 10 - RESUME_AT) {
        assert!(input.take_resumable().next().is_none());
        input.next(now, IDLE).unwrap();
    }
    assert_eq!(input.take_resumable().collect::<Vec<_>>(), vec![0]);
    assert!(input.take_resumable().next().is_none(), "resumed once");
}

#[test]
fn a_partition_positioned_at_its_end_is_caught_up_before_anything_is_handed_out() {
    let now = Instant::now();
    let mut input = TaskInput::new(2, 0);
    input.reset(10, &[Some(0), Some(7)]);
    input.push(0, rec(0, 10), 11);
    input.observe_lag(1, lag(12, -1001, 8), now);
    assert!(input.next(now, IDLE).is_none(), "records 7.. not handed out yet");
    input.observe_lag(1, lag(13, -1001, 7), now);
    assert!(input.next(now, IDLE).is_some());
}

#[test]
fn a_partition_positioned_below_its_low_watermark_is_where_librdkafka_reset_it() {
    // Care asked for 500; retention deleted up to 1000, and librdkafka
    // reset the fetch position there: nothing is left, so it is caught up.
    let now = Instant::now();
    let mut input = TaskInput::new(2, 0);
    input.reset(10, &[Some(0), Some(500)]);
    input.push(0, rec(0, 10), 11);
    let sample = LagSample { sample_us: 12, position: -1001, end: 1000, low: 1000, fetch_position: 1000 };
    assert_eq!(input.observe_lag(1, sample, now), Some(0));
    assert!(input.next(now, IDLE).is_some(), "not blocked for ever");
    // In range, the fetch position does not count: records may be on their way.
    let mut input = TaskInput::new(2, 0);
    input.reset(10, &[Some(0), Some(500)]);
    input.push(0, rec(0, 10), 11);
    let sample = LagSample { sample_us: 12, position: -1001, end: 1000, low: 0, fetch_position: 1000 };
    assert_eq!(input.observe_lag(1, sample, now), Some(500));
    assert!(input.next(now, IDLE).is_none());
}
