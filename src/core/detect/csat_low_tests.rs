use proptest::prelude::*;

use super::*;
use crate::detect::Status;
use crate::render::{OutputRecord, TopicRole};
use crate::test_support::{engine, feed, DAY, T0};
const TYPE: &str = "io.care.csat_low.v1";
const ON: &str = "[detect.csat_low]\nenabled = true\n";

fn detector() -> CsatLow {
    CsatLow::new(&CsatLowConfig::default())
}

fn answer(customer: &str, kind: &str, day: i64, csat: u8) -> String {
    format!(r#"{{"customer_id":"{customer}","kind":"{kind}","ts":{},"csat":{csat}}}"#, T0 + day * DAY)
}

#[test]
fn csat_is_the_share_of_fours_and_fives() {
    assert_eq!(csat_percent(0, 0), None);
    assert_eq!(csat_percent(4, 3), Some(75.0));
    assert_eq!(csat_percent(5, 2), Some(40.0));
    let mut w = CsatWindow::default();
    for (day, score) in [(0, 5), (1, 4), (2, 3), (3, 1), (4, 2)] {
        detector().answer(&mut w, T0 + day * DAY, score, &mut Vec::new());
    }
    assert_eq!(w.totals(), (5, 2), "3 is not satisfied");
}

#[test]
fn opens_with_three_answers_at_40_percent_and_resolves_only_above_60() {
    let d = detector();
    let mut w = CsatWindow::default();
    let mut out = Vec::new();
    let mut step = |day: i64, score: u8, out: &mut Vec<Signal>| {
        out.clear();
        d.answer(&mut w, T0 + day * DAY, score, out);
        out.first().map(Signal::status)
    };
    assert_eq!(step(0, 1, &mut out), None, "one bad answer is not evidence");
    assert_eq!(step(1, 2, &mut out), None, "nor two");
    assert_eq!(step(2, 5, &mut out), Some(Status::Opened), "1 of 3 = 33 %");
    let figures = *out[0].body::<Figures>().expect("low CSAT figures");
    assert_eq!((figures.answers, figures.satisfied, figures.window_days), (3, 1, 90));
    assert_eq!(step(3, 4, &mut out), None, "2 of 4 = 50 %: between the levels");
    assert_eq!(step(4, 5, &mut out), None, "3 of 5 = 60 %: not above the exit");
    assert_eq!(step(5, 5, &mut out), Some(Status::Resolved), "4 of 6 = 67 %");
    assert_eq!((out[0].episode_ms(), out[0].trigger_ms()), (T0 + 2 * DAY, T0 + 5 * DAY));
}

#[test]
fn the_window_forgets_answers_older_than_90_days() {
    let d = detector();
    let mut w = CsatWindow::default();
    let mut out = Vec::new();
    for day in [0, 1] {
        d.answer(&mut w, T0 + day * DAY, 1, &mut out);
    }
    // 15-day buckets: 95 days on, days 0 and 1 have left the window, so one
    // more bad answer is one answer, not three.
    d.answer(&mut w, T0 + 95 * DAY, 1, &mut out);
    assert_eq!((w.totals(), out.len()), ((1, 0), 0));
    assert!(!w.add((T0 - DAY).div_euclid(15 * DAY), false), "an answer older than the window counts nowhere");
}

#[test]
fn through_the_engine_it_alerts_on_answers_of_any_kind_beside_the_activity_chain() {
    let lines = [answer("a", "ticket", 0, 2), answer("a", "survey", 3, 1), answer("b", "chat", 4, 5), answer("a", "chat", 5, 4), answer("a", "survey", 20, 5), answer("a", "survey", 21, 5), answer("a", "survey", 22, 5)];
    let mut e = engine(ON);
    let out = feed(&mut e, &lines);
    let got: Vec<&OutputRecord> = out.iter().filter(|r| r.header("ce_type") == Some(TYPE)).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    let v: Vec<serde_json::Value> = got.iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect();
    assert_eq!((&v[0]["status"], &v[0]["at"], v[0]["csat_pct"].as_f64()), (&"opened".into(), &"2026-01-06T00:00:00.000Z".into(), Some(33.3)));
    assert_eq!((&v[1]["status"], v[1]["csat_pct"].as_f64(), v[1]["answers"].as_u64()), (&"resolved".into(), Some(66.7), Some(6)));
    assert_eq!(v[1]["episode_started_at"], "2026-01-06T00:00:00.000Z");
    assert_eq!((got[0].role, got[0].status(), got[1].status()), (TopicRole::Alerts, Some(Status::Opened), Some(Status::Resolved)));
    let off = feed(&mut engine(""), &lines);
    let strip = |o: &[OutputRecord]| o.iter().filter(|r| r.header("ce_type") != Some(TYPE)).cloned().collect::<Vec<_>>();
    assert_eq!(strip(&out), off, "turning it on changes no other output; off by default");
}

#[test]
fn the_levels_must_leave_a_hysteresis() {
    for (text, key) in [
        ("[detect.csat_low]\nexit_pct = 40\n", "detect.csat_low.exit_pct"),
        ("[detect.csat_low]\nopen_pct = 100\n", "detect.csat_low.open_pct"),
        ("[detect.csat_low]\nwindow_days = 5\n", "detect.csat_low.window_days"),
        ("[detect.csat_low]\nmin_answers = 0\n", "detect.csat_low.min_answers"),
    ] {
        let err = Config::parse(text, "t").unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}

proptest! {
    /// Whatever the answers and their spacing: episodes alternate opened,
    /// resolved; each opens only with enough answers at or below the open
    /// level and resolves only above the exit level, so a customer whose
    /// CSAT hovers between the two never flaps; and the window's figures
    /// are those of the answers in the buckets it holds.
    #[test]
    fn never_flaps_and_the_window_matches_the_answers(answers in proptest::collection::vec((0i64..25, 1u8..=5), 1..80)) {
        let d = detector();
        let mut w = CsatWindow::default();
        let mut held: Vec<(i64, u8)> = Vec::new();
        let (mut day, mut open, mut out) = (0, false, Vec::new());
        for (gap, score) in answers {
            day += gap;
            out.clear();
            d.answer(&mut w, T0 + day * DAY, score, &mut out);
            held.push((day, score));
            let bucket = |day: i64| (T0 + day * DAY).div_euclid(15 * DAY);
            let head = bucket(day);
            let in_window: Vec<u8> = held.iter().filter(|(d, _)| bucket(*d) > head - BUCKETS as i64).map(|(_, s)| *s).collect();
            let n = in_window.len() as u32;
            let sat = in_window.iter().filter(|s| **s >= 4).count() as u32;
            prop_assert_eq!(w.totals(), (n, sat));
            let pct = csat_percent(n, sat).unwrap();
            prop_assert!(out.len() <= 1);
            prop_assert!(out.iter().all(|s| s.signal_type() == CSAT_LOW));
            match out.first().map(Signal::status) {
                Some(Status::Opened) => {
                    prop_assert!(!open && n >= 3 && pct <= 40.0, "opened at {} of {}", sat, n);
                    open = true;
                }
                Some(Status::Resolved) => {
                    prop_assert!(open && pct > 60.0, "resolved at {} of {}", sat, n);
                    open = false;
                }
                None => prop_assert!(if open { pct <= 60.0 } else { n < 3 || pct > 40.0 }, "{} of {} should have decided", sat, n),
            }
            prop_assert_eq!(w.open_since_ms.is_some(), open);
        }
    }
}
