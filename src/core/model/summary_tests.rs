use super::*;
use proptest::prelude::*;

#[test]
fn cdnow_customer_one_matches_lifetimes() {
    // Customer 1 of the CDNOW sample: orders on 1997-01-01 (29.33),
    // 01-18 (29.73), 08-02 (14.96); calibration end 1997-09-30 is day 272.
    // lifetimes' summary: x 2, t_x 30.43, T 38.86 weeks, value 22.35.
    let mut orders = [(213, 14.96), (0, 29.33), (17, 29.73)];
    let s = purchase_days(&mut orders).unwrap().summary(272, TimeUnit::Weeks);
    assert_eq!(s.frequency, 2);
    assert!((s.recency - 213.0 / 7.0).abs() < 1e-12);
    assert!((s.t - 272.0 / 7.0).abs() < 1e-12);
    assert!((s.monetary_value - 22.345).abs() < 1e-12);
}

#[test]
fn one_days_orders_are_one_transaction() {
    let mut p = PurchaseDays::new(10, 5.0);
    assert_eq!(p.add(10, 7.0), Folded::SameDay, "a second order on the first day");
    assert_eq!(p.add(12, 1.0), Folded::NewDay);
    assert_eq!(p.add(12, 3.0), Folded::SameDay);
    let s = p.summary(20, TimeUnit::Days);
    assert_eq!(s.frequency, 1);
    assert_eq!(s.recency, 2.0);
    assert_eq!(s.t, 10.0);
    assert_eq!(s.monetary_value, 4.0, "the repeat day's orders summed, the first day excluded");
    assert_eq!(p.total_value(), 16.0);
}

#[test]
fn one_time_buyer_has_no_repeats() {
    let s = PurchaseDays::new(3, 9.0).summary(10, TimeUnit::Days);
    assert_eq!((s.frequency, s.recency, s.t, s.monetary_value), (0, 0.0, 7.0, 0.0));
}

#[test]
fn an_earlier_first_day_makes_the_old_one_a_repeat() {
    let mut p = PurchaseDays::new(5, 2.0);
    assert_eq!(p.add(3, 8.0), Folded::NewDay);
    assert_eq!((p.first_day, p.last_day, p.days, p.first_value, p.repeat_value), (3, 5, 2, 8.0, 2.0));
}

#[test]
fn an_unknown_day_between_first_and_last_is_not_folded() {
    let mut p = PurchaseDays::new(1, 1.0);
    p.add(9, 1.0);
    let before = p;
    assert_eq!(p.add(5, 1.0), Folded::Unordered);
    assert_eq!(p, before);
}

proptest! {
    /// Folding orders in day order gives the summary computed from the
    /// distinct days directly, whatever order they came in.
    #[test]
    fn folding_matches_distinct_days(mut orders in prop::collection::vec((0i64..60, 0u32..1000), 1..40)) {
        let mut sorted: Vec<(i64, f64)> = orders.iter().map(|&(d, c)| (d, f64::from(c) / 100.0)).collect();
        let p = purchase_days(&mut sorted).unwrap();
        orders.sort_unstable();
        let mut days: Vec<i64> = orders.iter().map(|o| o.0).collect();
        days.dedup();
        let first = days[0];
        let first_value: u32 = orders.iter().filter(|o| o.0 == first).map(|o| o.1).sum();
        let repeat_value: u32 = orders.iter().filter(|o| o.0 != first).map(|o| o.1).sum();
        prop_assert_eq!(p.days as usize, days.len());
        prop_assert_eq!(p.first_day, first);
        prop_assert_eq!(p.last_day, *days.last().unwrap());
        prop_assert!((p.first_value - f64::from(first_value) / 100.0).abs() < 1e-9);
        prop_assert!((p.repeat_value - f64::from(repeat_value) / 100.0).abs() < 1e-9);
    }
}
