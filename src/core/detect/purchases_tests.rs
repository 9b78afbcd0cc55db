use proptest::prelude::*;

use super::*;
use crate::model::summary::purchase_days;
use crate::state::codec::{decode_customer, encode_customer};
use crate::test_support::{engine, feed, line, DAY, T0};

const GRID: Buckets = Buckets { bucket_ms: DAY_MS, offset_ms: 0 };

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Equal to the batch summary: days exactly, values up to summation order.
fn same(h: &PurchaseHistory, want: &PurchaseDays) -> bool {
    let d = &h.days;
    (d.first_day, d.last_day, d.days) == (want.first_day, want.last_day, want.days)
        && close(d.first_value, want.first_value)
        && close(d.repeat_value, want.repeat_value)
}

fn fold_all(orders: &[(i64, f64)]) -> PurchaseHistory {
    let (&(d0, a0), rest) = orders.split_first().unwrap();
    let mut h = PurchaseHistory::new(d0, a0);
    rest.iter().for_each(|&(d, a)| h.add(d, a));
    h
}

proptest! {
    /// Orders that arrive in time order up to `lateness` days (an order is
    /// folded after others up to that much later) give `care fit`'s
    /// summary of the same orders exactly, whatever the arrival order.
    #[test]
    fn any_arrival_order_within_the_lateness_gives_the_batch_summary(
        orders in prop::collection::vec((0i64..400, 0u32..20_000), 1..60),
        lateness in 0i64..30,
        jitter in prop::collection::vec(0i64..1_000, 60),
    ) {
        let orders: Vec<(i64, f64)> = orders.into_iter().map(|(d, cents)| (d, f64::from(cents) / 100.0)).collect();
        // Arrival: by day plus a delay of up to `lateness` days.
        let mut arrival: Vec<(i64, usize)> = orders.iter().enumerate().map(|(i, o)| (o.0 + jitter[i] % (lateness + 1), i)).collect();
        arrival.sort_unstable();
        let arrived: Vec<(i64, f64)> = arrival.iter().map(|&(_, i)| orders[i]).collect();
        let h = fold_all(&arrived);
        let want = purchase_days(&mut orders.clone()).unwrap();
        prop_assert!(same(&h, &want), "{:?} vs {:?}", h.days, want);
        prop_assert!(!h.approximate);
    }
}

#[test]
fn an_order_far_behind_the_last_purchase_day_counts_as_a_new_day_flagged_approximate() {
    let mut h = PurchaseHistory::new(0, 10.0);
    h.add(50, 5.0);
    h.add(200, 20.0);
    h.add(180, 1.0); // 20 days back: known to be a new day
    h.add(180, 2.0); // the same day again
    assert_eq!((h.days.days, h.approximate), (4, false));
    assert!(close(h.days.repeat_value, 28.0));
    h.add(100, 7.0); // 100 days back, between first and last: cannot tell
    assert_eq!((h.days.days, h.approximate), (5, true));
    h.add(-5, 3.0); // before the first day: exact whatever the distance
    assert_eq!((h.days.first_day, h.days.first_value, h.days.days), (-5, 3.0, 6));
    assert!(close(h.days.repeat_value, 45.0), "the old first day became a repeat");
}

#[test]
fn a_customer_restored_from_before_purchase_days_were_kept_is_seeded_approximately() {
    let mut c = Customer::new("c".into(), 0, 3);
    assert!(history(&c, GRID).is_none(), "no orders, no history");
    (c.orders.count, c.orders.total_amount, c.orders.first_ms, c.orders.last_ms) = (5, 100.0, Some(DAY_MS), Some(41 * DAY_MS + 5));
    let h = history(&c, GRID).expect("seeded from the lifetime figures");
    assert_eq!((h.days.first_day, h.days.last_day, h.days.days, h.approximate), (1, 41, 5, true));
    assert_eq!((h.days.first_value, h.days.repeat_value), (20.0, 80.0));
    // Five orders on one day are one purchase day.
    c.orders.last_ms = Some(DAY_MS + 5);
    assert_eq!(history(&c, GRID).unwrap().days.days, 1);
}

#[test]
fn the_block_round_trips_and_old_customers_without_it_restore_without_it() {
    let mut c = Customer::new("c".into(), T0, 3);
    let mut h = PurchaseHistory::new(20_000, 12.5);
    h.add(20_010, 7.25);
    h.add(19_990, 1.0);
    c.detectors.insert(ID.0, h);
    c.orders.count = 3;
    let mut buf = Vec::new();
    encode_customer(&c, &mut buf);
    let back = decode_customer("c", &buf, 3).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.detectors.get::<PurchaseHistory>(ID.0), Some(&h));
    let json = serde_json::to_value(&back).unwrap();
    assert_eq!(json["detectors"]["purchases"]["purchase_days"], 3);
}

#[test]
fn the_engine_folds_on_time_and_late_orders_and_nothing_else() {
    let mut e = engine("[engine]\nallowed_lateness_secs = 3600\n");
    let mut lines = vec![
        line("b", "order", 0, r#","amount":10"#),
        line("b", "click", DAY, ""),
        line("b", "order", 10 * DAY, r#","amount":5"#),
        line("b", "order", 10 * DAY + 60_000, r#","amount":5"#),
    ];
    // Late by far more than the hour of lateness: folded all the same.
    lines.push(line("b", "order", 3 * DAY, r#","amount":2"#));
    lines.push(line("b", "survey", 11 * DAY, r#","nps":9"#));
    let out = feed(&mut e, &lines);
    assert!(out.is_empty(), "purchase days raise nothing: {out:?}");
    assert_eq!(e.tally().sources[e.rules().canonical_source()].late, 1);
    let dump = serde_json::to_value(e.dump()).unwrap();
    let p = &dump[0]["detectors"]["purchases"];
    assert_eq!((p["purchase_days"].as_u64(), p["first_day_value"].as_f64(), p["repeat_value"].as_f64()), (Some(3), Some(10.0), Some(12.0)), "{p}");
    assert_eq!(p["approximate"], false);
}

