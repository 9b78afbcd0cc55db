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
    assert_eq!(summarise(o, day_number(date("2024-02-01")), TimeUnit::Days).buyers.days[0].days, 1);
    let (o, _) = read(&plus2, &opts("2024-02-01", None), &mut input.as_bytes(), day_number(date("2024-02-01")), NOW, false).unwrap();
    assert_eq!(summarise(o, day_number(date("2024-02-01")), TimeUnit::Days).buyers.days[0].days, 2);
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
    assert_eq!(cs.buyers.id(0), "a");
    assert_eq!((cs.summaries[0].frequency, cs.summaries[0].recency, cs.summaries[0].t), (1, 19.0, 30.0));
    assert_eq!(cs.buyers.holdout_days[0], 2);
}

#[test]
fn customers_keep_their_first_appearance_order() {
    let input = [order("b", "2024-01-02T00:00:00Z", 1.0), order("a", "2024-01-01T00:00:00Z", 1.0), order("b", "2024-01-03T00:00:00Z", 1.0), order("c", "2024-01-01T00:00:00Z", 1.0)].concat();
    let end = day_number(date("2024-01-31"));
    let (o, _) = read(&Config::parse("", "t").unwrap(), &opts("2024-01-31", None), &mut input.as_bytes(), end, NOW, false).unwrap();
    let cs = summarise(o, end, TimeUnit::Days);
    let ids: Vec<&str> = (0..cs.len()).map(|i| cs.buyers.id(i)).collect();
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

/// Events that can be read once only, like standard input.
struct Once<'a>(&'a [u8], bool);

impl FitInput for Once<'_> {
    fn open(&mut self) -> std::io::Result<Box<dyn BufRead + '_>> {
        assert!(!self.1, "opened twice");
        self.1 = true;
        Ok(Box::new(self.0))
    }

    fn reopens(&self) -> bool {
        false
    }
}

/// Each customer's (id, days, first day, last day, values, holdout days).
fn figures(input: &mut dyn FitInput, o: &Options) -> Vec<(String, u32, i64, i64, f64, f64, u32)> {
    let cfg = Config::parse("", "t").unwrap();
    let last = o.holdout_end.map_or(day_number(o.calibration_end), day_number);
    let (c, _) = read(&cfg, o, input, last, NOW, false).unwrap();
    let cs = summarise(c, day_number(o.calibration_end), TimeUnit::Days).buyers;
    let mut out: Vec<_> = (0..cs.days.len())
        .map(|i| {
            let d = &cs.days[i];
            (cs.id(i).to_string(), d.days, d.first_day, d.last_day, d.first_value, d.repeat_value, cs.holdout_days[i])
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

proptest::proptest! {
    /// Orders in any order give the figures of the same orders sorted by
    /// time, whether the input is read twice or once keeping every order.
    /// Amounts are whole so sums do not depend on their order.
    #[test]
    fn order_of_the_input_does_not_change_the_figures(
        orders in proptest::collection::vec((0u8..4, 1u32..60, 0u32..24, 1u8..50), 1..40),
        shuffle in proptest::collection::vec(proptest::prelude::any::<u32>(), 40),
    ) {
        let line = |&(c, day, hour, amount): &(u8, u32, u32, u8)| {
            let ts = 1_704_067_200_000i64 + i64::from(day) * 86_400_000 + i64::from(hour) * 3_600_000;
            format!("{{\"customer_id\":\"c{c}\",\"kind\":\"order\",\"ts\":{ts},\"amount\":{amount}}}\n")
        };
        let mut sorted = orders.clone();
        sorted.sort_by_key(|o| (o.1, o.2));
        let mut shuffled = orders.clone();
        for (i, k) in shuffle.iter().enumerate().take(shuffled.len()) {
            let j = *k as usize % shuffled.len();
            shuffled.swap(i, j);
        }
        let sorted: String = sorted.iter().map(line).collect();
        let shuffled: String = shuffled.iter().map(line).collect();
        let o = opts("2024-02-01", Some("2024-02-20"));
        let want = figures(&mut sorted.as_bytes(), &o);
        proptest::prop_assert_eq!(&figures(&mut shuffled.as_bytes(), &o), &want);
        proptest::prop_assert_eq!(&figures(&mut Once(shuffled.as_bytes(), false), &o), &want);
    }
}

#[test]
fn chunks_end_at_line_ends_and_lose_nothing() {
    let text: String = (0..200).map(|i| format!("{}\n", "x".repeat(i % 37))).collect::<String>() + "last line without a newline";
    let mut input = text.as_bytes();
    let mut joined = Vec::new();
    let mut chunk = Vec::new();
    loop {
        read::next_chunk(&mut input, 64, &mut chunk).unwrap();
        if chunk.is_empty() {
            break;
        }
        assert!(chunk.ends_with(b"\n") || chunk.ends_with(b"newline"), "{:?}", String::from_utf8_lossy(&chunk));
        joined.extend_from_slice(&chunk);
    }
    assert_eq!(joined, text.as_bytes());
}

#[test]
fn halves_split_at_a_line_end() {
    assert_eq!(read::halve(b"ab\ncd\nef\n"), [&b"ab\ncd\n"[..], &b"ef\n"[..]]);
    assert_eq!(read::halve(b"one long line"), [&b"one long line"[..], &b""[..]]);
    assert_eq!(read::halve(b""), [&b""[..], &b""[..]]);
}

#[test]
fn customer_lines_are_what_serde_json_writes() {
    let ids = ["c1", "", "quote\"d", "back\\slash", "tab\there", "ünïcödé", "\u{7f}del", "\u{1}ctl"];
    let numbers = [0.0, 1.0, 123.0, 0.1, 1e-7, 1e16, 1.5e300, 2.220446049250313e-16, f64::NAN, f64::INFINITY, -0.0, 43.970000000000006];
    let dates = [None, Some("1997-10-01")];
    for (i, id) in ids.iter().enumerate() {
        for (j, &v) in numbers.iter().enumerate() {
            let w = numbers[(i + j) % numbers.len()];
            let line = CustomerLine {
                customer_id: id,
                frequency: (i * j) as u32 * 1_000_003,
                recency: v,
                t: w,
                monetary_value: v * 3.0,
                p_alive: finite(w),
                expected_purchases: (j % 3 != 0).then_some(v),
                expected_avg_value: Some(w / 7.0),
                predicted_clv: (j % 2 == 0).then_some(v * w),
                expected_next_purchase: dates[j % 2],
                historic_clv: Some(v),
            };
            let mut ours = Vec::new();
            line.write(&mut ours).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&line).unwrap());
        }
    }
}

#[test]
fn next_dates_are_next_date_cached() {
    let cal = date("1997-09-30");
    let mut dates = NextDates::new(cal);
    for days in [0.0, 0.2, 1.0, 2.0, 2.0000001, 364.5, 999_999.0, 999_999.5, 1e9, f64::NAN, 0.2] {
        assert_eq!(dates.after(days), next_date(cal, days).as_deref(), "{days}");
    }
}

#[test]
fn ids_sharing_a_hash_stay_apart() {
    // The index compares ids whenever the hashes match: two customers
    // whose ids hash alike are still two.
    let mut cs = read::Customers::new(100, 100, false);
    for (id, day) in [("a", 1), ("b", 2), ("a", 3), ("b", 3), ("b", 4)] {
        cs.add(id, 7, day, 1.0);
    }
    let b = cs.finish();
    assert_eq!((b.days.len(), b.id(0), b.id(1)), (2, "a", "b"));
    assert_eq!((b.days[0].days, b.days[1].days), (2, 3));
}

#[test]
fn many_customers_keep_their_orders_apart() {
    // Enough customers for the index to grow many times.
    let input: String = (0..3)
        .flat_map(|round| (0..20_000).map(move |i| order(&format!("c{i}"), &format!("2024-01-{:02}T00:00:00Z", 1 + round + i % 3), 1.0)))
        .collect();
    let end = day_number(date("2024-01-31"));
    let (o, counts) = read(&Config::parse("", "t").unwrap(), &opts("2024-01-31", None), &mut input.as_bytes(), end, NOW, false).unwrap();
    assert_eq!(counts.orders, 60_000);
    let cs = summarise(o, end, TimeUnit::Days);
    assert_eq!(cs.len(), 20_000);
    for i in [0, 1, 2, 9_999, 19_999] {
        assert_eq!(cs.buyers.id(i), format!("c{i}"));
        assert_eq!((cs.summaries[i].frequency, cs.summaries[i].recency), (2, 2.0));
    }
}
