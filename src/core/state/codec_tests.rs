use proptest::prelude::*;

use super::*;
use crate::detect::{csat_low, nps_detractor};
use crate::state::{CsatWindow, DeclineStat, Episode};

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn round_trip(c: &Customer, width: usize) -> Result<Customer, CodecError> {
    let mut out = Vec::new();
    encode_customer(c, &mut out);
    decode_customer(&c.id, &out, width)
}

fn width_of(c: &Customer) -> usize {
    c.activity.width() as usize
}

fn arb_episode() -> impl Strategy<Value = Episode> {
    prop_oneof![
        Just(Episode::Normal),
        (any::<i64>(), -1e9f32..1e9).prop_map(|(episode_ms, expected)| Episode::Open { episode_ms, expected }),
        any::<i64>().prop_map(|until| Episode::Cooldown { until }),
    ]
}

/// A window of random width, empty or with counts in random held buckets.
fn arb_activity() -> impl Strategy<Value = Activity> {
    let cells = proptest::collection::vec((0i64..64, 0usize..Kind::COUNT, any::<u16>()), 0..80);
    (1usize..40, proptest::option::of(-MAX_BUCKET..=MAX_BUCKET), cells).prop_map(|(width, head, cells)| {
        let mut a = Activity::new(width);
        if let Some(head) = head {
            a.reach(head);
            for (back, k, n) in cells {
                a.set(head - back % width as i64, Kind::ALL[k], n);
            }
        }
        a
    })
}

fn arb_customer() -> impl Strategy<Value = Customer> {
    let time = || proptest::option::of(any::<i64>());
    let times = (any::<i64>(), time(), proptest::array::uniform5(time()), time());
    let orders = (any::<u32>(), 0f64..1e12, time(), time());
    let tallies = (any::<u32>(), proptest::array::uniform5(any::<u32>()));
    let ids = (proptest::array::uniform4(any::<u32>()), 0..RECENT_IDS as u8, proptest::array::uniform4(any::<u32>()));
    let stat = (0f32..1e6, 0f32..1e3, any::<u16>(), prop_oneof![Just(DeclineStat::UNSET), -MAX_BUCKET..=MAX_BUCKET]);
    let stat = stat.prop_map(|(rate, stat, buckets, next)| DeclineStat { rate, stat, buckets, next });
    let detectors = (arb_episode(), proptest::option::of(any::<i64>()), "[a-z0-9-]{1,16}", stat, proptest::option::of(any::<i64>()), proptest::option::of(any::<i64>()));
    let csat = (any::<i64>(), proptest::array::uniform6(any::<u8>()), proptest::array::uniform6(any::<u8>()), proptest::option::of(any::<i64>()));
    let csat = csat.prop_map(|(head, answers, sat, open_since_ms)| CsatWindow { head, answers, satisfied: std::array::from_fn(|i| sat[i].min(answers[i])), open_since_ms });
    (times, orders, tallies, ids, detectors, arb_activity(), csat).prop_map(|(t, o, n, ids, d, activity, csat)| {
        let mut c = Customer::new(d.2.as_str().into(), t.0, activity.width() as usize);
        c.activity = activity;
        (c.last_activity_ms, c.last_seen_ms) = (t.1, t.2);
        c.set_timer_at(t.3);
        c.orders = crate::state::OrderStats { count: o.0, total_amount: o.1, first_ms: o.2, last_ms: o.3 };
        c.activity_events = n.0;
        c.csat = crate::state::CsatTally { responses: n.1[0], satisfied: n.1[1] };
        c.nps = crate::state::NpsTally { responses: n.1[2], promoters: n.1[3], detractors: n.1[4] };
        (c.recent_ids, c.next_id) = (ids.0, ids.1);
        // Times are kept for the fingerprints held (up to the last one).
        let held = held_ids(&c);
        c.id_secs[..held].copy_from_slice(&ids.2[..held]);
        (c.decline, c.dormant_since, c.decline_stat, c.silent_since) = (d.0, d.1, d.3, d.4);
        // A state at its default writes no block and so restores absent.
        if let Some(at) = d.5 {
            c.detectors.insert(nps_detractor::ID.0, nps_detractor::Alerted { last_alert_ms: at });
        }
        if csat != CsatWindow::default() {
            c.detectors.insert(csat_low::ID.0, csat);
        }
        c
    })
}

proptest! {
    #[test]
    fn any_customer_round_trips(c in arb_customer()) {
        prop_assert_eq!(round_trip(&c, width_of(&c)), Ok(c));
    }

    /// Whatever the bytes, decoding returns; with a valid format byte in
    /// front it gets past the first check and into the fields.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), width in 0usize..40) {
        let _ = decode_customer("c", &bytes, width);
        let mut v = vec![CUSTOMER_FORMAT];
        v.extend_from_slice(&bytes);
        let _ = decode_customer("c", &v, width);
    }

    /// A valid value cut short or with one byte flipped is an error or a
    /// customer, never a panic.
    #[test]
    fn damaged_values_never_panic(c in arb_customer(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let mut out = Vec::new();
        encode_customer(&c, &mut out);
        let i = cut.index(out.len());
        let _ = decode_customer(&c.id, &out[..i], width_of(&c));
        out[i] ^= flip;
        let _ = decode_customer(&c.id, &out, width_of(&c));
    }
}

/// About 3 clicks a day for 28 days with an event id each, 2 orders, a
/// CSAT answer and a pending dormancy timer, in the default 29-day window.
fn typical(kinds_per_day: &[Kind]) -> Customer {
    let mut c = Customer::new("customer-000123".into(), T0, 29);
    for day in 0..28 {
        for (i, &kind) in kinds_per_day.iter().enumerate() {
            let ts = T0 + day * DAY + i as i64 * 3_600_000;
            c.remember_event_id(&format!("evt-{day}-{i}"), ts, ts - 3_600_000);
            c.activity.add(20_454 + day, kind);
            c.last_seen_ms[kind.idx()] = Some(ts);
            c.last_activity_ms = Some(ts);
            c.activity_events += 1;
        }
    }
    for (day, amount) in [(3, 49.9), (17, 120.0)] {
        let ts = T0 + day * DAY + 7_200_000;
        c.fold_lifetime(Kind::Order, ts, Some(amount), None, None);
        c.activity.add(20_454 + day, Kind::Order);
        c.last_seen_ms[Kind::Order.idx()] = Some(ts);
    }
    c.fold_lifetime(Kind::Chat, T0 + 18 * DAY, None, Some(5), None);
    c.set_timer_at(c.last_activity_ms.map(|t| t + 30 * DAY + 3_600_000));
    c
}

#[test]
fn a_typical_customer_encodes_to_fewer_than_200_bytes() {
    let c = typical(&[Kind::Click; 3]);
    let mut out = Vec::new();
    encode_customer(&c, &mut out);
    let mixed = typical(&[Kind::Click, Kind::Login, Kind::Click]);
    let mut out_mixed = Vec::new();
    encode_customer(&mixed, &mut out_mixed);
    println!("typical customer: {} bytes; with a login a day too: {} bytes", out.len(), out_mixed.len());
    assert!(out.len() < 200, "typical customer encodes to {} bytes", out.len());
    assert_eq!(round_trip(&c, 29), Ok(c));
}

#[test]
fn a_narrower_window_keeps_the_newest_buckets_and_a_wider_one_keeps_all() {
    let mut c = Customer::new("c".into(), 0, 10);
    for b in 100..110 {
        for _ in 0..(b - 99) {
            c.activity.add(b, Kind::Login);
        }
    }
    let narrow = round_trip(&c, 4).map(|d| d.activity);
    let mut want = Activity::new(4);
    (106..110).for_each(|b| (0..b - 99).for_each(|_| _ = want.add(b, Kind::Login)));
    assert_eq!(narrow, Ok(want));
    let wide = round_trip(&c, 20).map(|d| d.activity);
    let mut want = Activity::new(20);
    (100..110).for_each(|b| (0..b - 99).for_each(|_| _ = want.add(b, Kind::Login)));
    assert_eq!(wide, Ok(want));
}

#[test]
fn newer_formats_and_blocks_are_refused_naming_both_versions() {
    let mut c = Customer::new("c".into(), T0, 29);
    c.decline = Episode::Cooldown { until: 20 };
    let mut out = Vec::new();
    encode_customer(&c, &mut out);
    let mut newer = out.clone();
    newer[0] = 7;
    let err = decode_customer("c", &newer, 29).unwrap_err();
    assert_eq!(err.to_string(), "customer state format 7 is newer than this binary supports (1): upgrade care");
    assert_eq!(err.code(), "newer_format");
    // Decline is the only block, right after the core section.
    let at = out.len() - 5;
    assert_eq!(out[at], crate::detect::decline::EPISODE_BLOCK.id);
    let mut newer_block = out.clone();
    newer_block[at + 1] = 3;
    let err = decode_customer("c", &newer_block, 29).unwrap_err();
    assert_eq!(err.to_string(), "customer state block 1 version 3 is newer than this binary supports (1): upgrade care");
    let mut unknown = out.clone();
    unknown.extend_from_slice(&[20, 1, 0]);
    assert!(blocks().iter().all(|b| b.id < 20), "20 must be a block no binary knows yet");
    let err = decode_customer("c", &unknown, 29).unwrap_err();
    let known = blocks().last().unwrap().id;
    assert_eq!(err.to_string(), format!("customer state block 20 is unknown to this binary (it knows blocks 1–{known}): upgrade care"));
    assert_eq!(err.code(), "unknown_block");
}

#[test]
fn absent_blocks_read_as_defaults_and_defaults_are_not_written() {
    let c = Customer::new("c".into(), T0, 29);
    let mut plain = Vec::new();
    encode_customer(&c, &mut plain);
    let mut d = c.clone();
    d.decline = Episode::Open { episode_ms: T0 + DAY, expected: 6.5 };
    d.dormant_since = Some(T0 + 2 * DAY);
    let mut both = Vec::new();
    encode_customer(&d, &mut both);
    assert_eq!(both[..plain.len()], plain[..], "blocks follow the core section");
    assert_eq!(decode_customer("c", &plain, 29), Ok(c));
    assert_eq!(decode_customer("c", &both, 29), Ok(d));
}

#[test]
fn corrupt_values_are_errors_with_bounded_codes() {
    let mut c = typical(&[Kind::Click]);
    c.decline = Episode::Cooldown { until: 1 };
    let mut out = Vec::new();
    encode_customer(&c, &mut out);
    // The 5-byte cooldown block and the 19-byte block of 4 event id
    // times end the value; cut before either, the value is complete and
    // reads as a customer without them.
    let core = out.len() - 19 - 5;
    for len in (0..out.len()).filter(|&len| len != core && len != core + 5) {
        let err = decode_customer("c", &out[..len], 29).unwrap_err();
        assert!(["truncated", "corrupt"].contains(&err.code()), "{len}: {err}");
    }
    assert_eq!(decode_customer("c", &[], 29).map_err(|e| e.code()), Err("truncated"));
    assert_eq!(decode_customer("c", &[0], 29).map_err(|e| e.code()), Err("corrupt"));
    let mut repeated = out.clone();
    repeated.extend_from_slice(&out[core..]);
    assert_eq!(decode_customer("c", &repeated, 29).map_err(|e| e.code()), Err("corrupt"));
}

#[test]
fn every_registered_state_block_has_its_own_id_and_is_written_in_id_order() {
    let ids: Vec<u8> = blocks().iter().map(|b| b.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "unique, in id order: {ids:?}");
    assert_eq!(ids[..9], [1, 2, 3, 4, 5, 6, 7, 8, 9], "the customer's own block (5) and every detector's, from the registry");
}
