use super::*;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A wall clock after every test event (the decoder refuses future events).
const NOW: i64 = 2_000_000_000_000;

fn opts(cal: &str, holdout: Option<&str>) -> Options {
    Options {
        calibration_end: date(cal),
        holdout_end: holdout.map(date),
        unit: TimeUnit::Days,
        horizon_days: 365.0,
        discount_rate_yearly: 0.0,
        lifespan: Lifespan::Years(3.0),
        source: None,
    }
}

fn order(id: &str, ts: &str, amount: f64) -> String {
    format!("{{\"customer_id\":\"{id}\",\"kind\":\"order\",\"ts\":\"{ts}\",\"amount\":{amount}}}\n")
}

#[test]
fn day_numbers_count_from_the_epoch() {
    assert_eq!(day_number(date("1970-01-01")), 0);
    assert_eq!(day_number(date("1997-09-30")) - day_number(date("1997-01-01")), 272);
}

#[test]
fn days_follow_the_configured_timezone() {
    // 23:30 UTC on the 1st is the 2nd at +02:00: with the UTC default the
    // two orders are one day, at +02:00 two.
    let input = order("c", "2024-01-01T10:00:00Z", 1.0) + &order("c", "2024-01-01T23:30:00Z", 2.0);
    let utc = Config::parse("", "t").unwrap();
    let plus2 = Config::parse("[engine]\ntimezone = \"+02:00\"\n", "t").unwrap();
    let (o, _) = read(&utc, &opts("2024-02-01", None), &mut input.as_bytes(), day_number(date("2024-02-01")), NOW, false).unwrap();
    assert_eq!(summarise(o, day_number(date("2024-02-01")), TimeUnit::Days)[0].days.days, 1);
    let (o, _) = read(&plus2, &opts("2024-02-01", None), &mut input.as_bytes(), day_number(date("2024-02-01")), NOW, false).unwrap();
    assert_eq!(summarise(o, day_number(date("2024-02-01")), TimeUnit::Days)[0].days.days, 2);
}

#[test]
fn holdout_days_are_counted_apart_and_late_customers_left_out() {
    let input = [
        order("a", "2024-01-01T00:00:00Z", 5.0),
        order("a", "2024-01-20T00:00:00Z", 5.0),
        order("a", "2024-02-03T00:00:00Z", 1.0),
        order("a", "2024-02-03T09:00:00Z", 1.0),
        order("a", "2024-02-09T00:00:00Z", 1.0),
        order("a", "2024-03-09T00:00:00Z", 1.0),
        order("late", "2024-02-05T00:00:00Z", 1.0),
        "{\"customer_id\":\"a\",\"kind\":\"click\",\"ts\":\"2024-01-02T00:00:00Z\"}\n".into(),
        "not json\n".into(),
    ]
    .concat();
    let o = opts("2024-01-31", Some("2024-02-29"));
    let cal_end = day_number(o.calibration_end);
    let (orders, counts) = read(&Config::parse("", "t").unwrap(), &o, &mut input.as_bytes(), day_number(date("2024-02-29")), NOW, false).unwrap();
    assert_eq!((counts.lines, counts.orders, counts.rejected, counts.ignored), (9, 6, 1, 2), "the click and the March order are ignored");
    let cs = summarise(orders, cal_end, TimeUnit::Days);
    assert_eq!(cs.len(), 1, "a customer whose first order is after the calibration end is not one yet");
    assert_eq!((cs[0].summary.frequency, cs[0].summary.recency, cs[0].summary.t), (1, 19.0, 30.0));
    assert_eq!(cs[0].holdout_days, 2);
}

#[test]
fn customers_keep_their_first_appearance_order() {
    let input = [order("b", "2024-01-02T00:00:00Z", 1.0), order("a", "2024-01-01T00:00:00Z", 1.0), order("b", "2024-01-03T00:00:00Z", 1.0), order("c", "2024-01-01T00:00:00Z", 1.0)].concat();
    let end = day_number(date("2024-01-31"));
    let (o, _) = read(&Config::parse("", "t").unwrap(), &opts("2024-01-31", None), &mut input.as_bytes(), end, NOW, false).unwrap();
    let ids: Vec<String> = summarise(o, end, TimeUnit::Days).into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["b", "a", "c"]);
}

#[test]
fn bad_options_are_refused() {
    let cfg = Config::parse("", "t").unwrap();
    let mut o = opts("2024-01-31", Some("2024-01-31"));
    assert!(matches!(run(&cfg, &o, &mut "".as_bytes(), None, 0), Err(FitAppError::Options(_))));
    o.holdout_end = None;
    o.lifespan = Lifespan::Retention(1.0);
    assert!(matches!(run(&cfg, &o, &mut "".as_bytes(), None, 0), Err(FitAppError::Options(_))));
    o.lifespan = Lifespan::Years(3.0);
    assert!(matches!(run(&cfg, &o, &mut "".as_bytes(), None, 0), Err(FitAppError::Fit(FitError::NoCustomers))));
}

#[test]
fn next_purchase_dates_round_up() {
    assert_eq!(next_date(date("1997-09-30"), 0.2).as_deref(), Some("1997-10-01"));
    assert_eq!(next_date(date("1997-09-30"), 2.0).as_deref(), Some("1997-10-02"));
    assert_eq!(next_date(date("1997-09-30"), 1e9), None);
}
