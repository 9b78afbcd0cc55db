use proptest::prelude::*;

use super::*;
use crate::detect::Status;
use crate::test_support::{engine, feed, line, payloads, DAY};

fn detector() -> FallingCsat {
    FallingCsat::new(&FallingCsatConfig::default())
}

/// Feeds answers (satisfied or not) one a day; the status of what each decided.
fn answers(d: &FallingCsat, a: &mut Answers, sat: &[bool]) -> Vec<Option<Status>> {
    let mut out = Vec::new();
    sat.iter()
        .enumerate()
        .map(|(day, s)| {
            out.clear();
            d.answer(a, day as i64 * DAY, *s, &mut out);
            out.first().map(Signal::status)
        })
        .collect()
}

#[test]
fn three_bad_answers_after_ten_good_ones_open_and_two_good_ones_resolve() {
    let d = detector();
    let mut a = Answers::default();
    let happy = answers(&d, &mut a, &[true; 10]);
    assert!(happy.iter().all(Option::is_none));
    assert_eq!((a.earlier, a.earlier_satisfied, a.recent), (7, 7, 3), "the last 3 are the recent ones");
    let mut out = Vec::new();
    let steps: Vec<Option<Status>> = [false, false, false].iter().map(|s| {
        out.clear();
        d.answer(&mut a, 20 * DAY, *s, &mut out);
        out.first().map(Signal::status)
    }).collect();
    assert_eq!(steps, [None, None, Some(Status::Opened)]);
    let e = out[0].body::<Evidence>().unwrap();
    // The three good answers moved out as the bad ones came in:
    // scipy.stats.betabinom.cdf(0, 3, 11, 1), 0 of 3 after 10 of 10.
    assert!((e.p_value - 0.002_747_252_747_252_747_5).abs() < 1e-12, "{e:?}");
    assert_eq!((e.earlier_answers, e.earlier_pct, e.recent_pct), (10, 100.0, 0.0));
    assert_eq!(a.earlier, 10, "the yardstick is frozen while open");
    assert_eq!(answers(&d, &mut a, &[true, true]), [None, Some(Status::Resolved)], "1 of 3 is still worse (p 0.033); 2 of 3 is not (p 0.214)");
}

#[test]
fn a_customer_often_unhappy_before_is_not_falling() {
    let d = detector();
    let mut a = Answers::default();
    let mixed = [true, false, true, false, true, true, false, true, false, true];
    answers(&d, &mut a, &mixed);
    assert!(answers(&d, &mut a, &[false, false, false]).iter().all(Option::is_none), "{a:?}");
    let mut b = Answers::default();
    assert!(answers(&d, &mut b, &[true, true, true, false, false, false]).iter().all(Option::is_none), "too few earlier answers");
}

proptest! {
    /// Episodes alternate opened, resolved; the recent answers never
    /// exceed `recent_answers`; the earlier tally only grows while closed.
    #[test]
    fn episodes_alternate_and_the_yardstick_freezes_while_open(sat in prop::collection::vec(prop::bool::weighted(0.7), 1..200)) {
        let d = detector();
        let mut a = Answers::default();
        let mut open = false;
        let mut out = Vec::new();
        for s in sat {
            let earlier = a.earlier;
            out.clear();
            d.answer(&mut a, 0, s, &mut out);
            prop_assert!(a.recent <= 3 && out.len() <= 1);
            if open {
                prop_assert_eq!(a.earlier, earlier);
            }
            match out.first().map(Signal::status) {
                Some(Status::Opened) => { prop_assert!(!open); open = true; }
                Some(Status::Resolved) => { prop_assert!(open); open = false; }
                None => {}
            }
            prop_assert_eq!(a.open_since_ms.is_some(), open);
        }
    }
}

#[test]
fn through_the_engine_survey_and_chat_answers_both_count() {
    let mut e = engine("[detect.falling_csat]\nenabled = true\n[detect.nps_detractor]\nenabled = false\n");
    let mut lines: Vec<String> = (0..10).map(|d| line("c", if d % 2 == 0 { "survey" } else { "chat" }, d * DAY, r#","csat":5"#)).collect();
    lines.extend((10..13).map(|d| line("c", "survey", d * DAY, r#","csat":1"#)));
    let out = feed(&mut e, &lines);
    let p = payloads(&out, "io.care.falling_csat.v1");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0]["status"].as_str(), p[0]["earlier_answers"].as_u64(), p[0]["recent_csat_pct"].as_f64()), (Some("opened"), Some(10), Some(0.0)));
    let mut buf = Vec::new();
    let mut c = Customer::new("c".into(), 0, 3);
    c.detectors.insert(ID.0, Answers { earlier: 7, earlier_satisfied: 7, recent_bits: 0b001, recent: 3, open_since_ms: Some(12 * DAY) });
    crate::state::codec::encode_customer(&c, &mut buf);
    assert_eq!(crate::state::codec::decode_customer("c", &buf, 3).unwrap(), c, "the block round-trips");
}
