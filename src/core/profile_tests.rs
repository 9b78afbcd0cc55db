use super::*;
use crate::changelog::{Meta, META_KEY};
use crate::engine::Engine;
use crate::render::{OutputRecord, PROFILE_CE_TYPE};
use crate::state::codec::{decode_customer, encode_customer};
use crate::test_support::{engine, engine_with, feed, fit_in_days, line, payloads, with_fit, DAY, T0};

/// Profiles on, as by default (the core's other tests turn them off).
const ON: &str = "[profiles]\n";
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// The profiles of `customer` in `out`, in order.
fn profiles_of(out: &[OutputRecord], customer: &str) -> Vec<serde_json::Value> {
    payloads(out, PROFILE_CE_TYPE).into_iter().filter(|p| p["customer_id"] == customer).collect()
}

/// Clicks of a bystander every `step` from `from` to `to`: stream time moving.
fn clock(from: i64, to: i64, step: i64) -> Vec<(i64, String)> {
    (0..).map(|k| from + k * step).take_while(|t| *t <= to).map(|t| (t, line("zz-clock", "click", t, ""))).collect()
}

fn in_order(mut lines: Vec<(i64, String)>) -> Vec<String> {
    lines.sort_by_key(|(t, _)| *t);
    lines.into_iter().map(|(_, l)| l).collect()
}

#[test]
fn a_new_customer_is_sent_once_and_the_profile_is_the_scorecard() {
    let mut e = engine(ON);
    let out = feed(&mut e, &[line("a", "click", 0, "")]);
    let sent = profiles_of(&out, "a");
    assert_eq!(sent.len(), 1, "the first event sends the first profile");
    let card = serde_json::to_value(e.scorecard("a").unwrap()).unwrap();
    assert_eq!(sent[0], card, "the profile is the scorecard /customers/{{id}} returns");
    let r = out.iter().find(|r| r.header("ce_type") == Some(PROFILE_CE_TYPE)).unwrap();
    assert_eq!((r.role, r.key.as_deref()), (crate::render::TopicRole::Profiles, Some(b"a".as_slice())));
    let more: Vec<String> = (1..50).map(|k| line("a", "click", k * 10 * MIN, "")).collect();
    assert!(profiles_of(&feed(&mut e, &more), "a").is_empty(), "clicks change nothing a profile watches");
}

#[test]
fn a_change_inside_the_interval_is_held_and_sent_when_it_ends() {
    let mut e = engine(ON);
    let mut lines = vec![(0, line("a", "click", 0, "")), (10 * MIN, line("a", "chat", 10 * MIN, r#","csat":1"#)), (20 * MIN, line("a", "chat", 20 * MIN, r#","csat":5"#))];
    lines.extend(clock(MIN, 3 * HOUR, 5 * MIN));
    let out = feed(&mut e, &in_order(lines));
    let sent = profiles_of(&out, "a");
    assert_eq!(sent.len(), 2, "the first event's, then one for both answers: {sent:?}");
    assert_eq!(sent[1]["as_of"], crate::render::rfc3339(T0 + HOUR), "sent when the hour since the first ends");
    assert_eq!((sent[1]["csat"]["responses"].as_u64(), sent[1]["csat"]["satisfied"].as_u64()), (Some(2), Some(1)), "the current state");
}

#[test]
fn an_nps_answer_is_sent_and_shown_as_the_last_one() {
    let mut e = engine(ON);
    let mut lines = vec![(0, line("a", "click", 0, "")), (2 * HOUR, line("a", "survey", 2 * HOUR, r#","nps":9"#))];
    lines.extend(clock(MIN, 3 * HOUR, 30 * MIN));
    let out = feed(&mut e, &in_order(lines));
    let sent = profiles_of(&out, "a");
    assert_eq!(sent.len(), 2);
    assert_eq!((sent[1]["nps"]["last"].as_u64(), sent[1]["nps"]["last_at"].as_str()), (Some(9), Some(crate::render::rfc3339(T0 + 2 * HOUR).as_str())));
    // A late answer older than the last one does not replace it.
    feed(&mut e, &[line("a", "survey", HOUR, r#","nps":2"#)]);
    let card = e.scorecard("a").unwrap();
    assert_eq!((card.nps.last, card.nps.responses), (Some(9), 2));
}

#[test]
fn p_alive_falling_through_each_level_sends_a_profile_on_that_day() {
    let mut e = engine_with(&with_fit(ON));
    let mut lines: Vec<(i64, String)> = [0, 10, 20].iter().map(|d| (d * DAY, line("buyer", "order", d * DAY, r#","amount":50"#))).collect();
    lines.extend(clock(HOUR, 500 * DAY, DAY));
    let out = feed(&mut e, &in_order(lines));
    let bg = fit_in_days().bgnbd;
    let sent = profiles_of(&out, "buyer");
    for level in [0.5, 0.3, 0.1] {
        let first_below = sent.iter().find(|p| p["value"]["p_alive"].as_f64().is_some_and(|pa| pa < level));
        let p = first_below.unwrap_or_else(|| panic!("no profile below {level}: {sent:?}"));
        let t = p["value"]["T"].as_f64().unwrap();
        assert!(bg.p_alive(2, 20.0, t - 1.0) >= level, "sent on the first day below {level} (T {t})");
    }
}

#[test]
fn a_backfill_sends_every_profile_once_when_it_reaches_emit_from() {
    let from = crate::render::rfc3339(T0 + 10 * DAY);
    let mut e = engine(&format!("{ON}[engine]\nemit_from = \"{from}\"\n"));
    let mut lines = Vec::new();
    for id in ["c", "a", "b"] {
        lines.extend((0..20).map(|d| (d * DAY + 5 * MIN, line(id, "order", d * DAY + 5 * MIN, r#","amount":5"#))));
    }
    let out = feed(&mut e, &in_order(lines));
    let all = payloads(&out, PROFILE_CE_TYPE);
    let first: Vec<&str> = all.iter().take(3).map(|p| p["customer_id"].as_str().unwrap()).collect();
    assert_eq!(first, ["a", "b", "c"], "every customer once, in id order");
    assert!(all.iter().take(3).all(|p| p["as_of"] == crate::render::rfc3339(T0 + 10 * DAY + 5 * MIN)), "as of the stream time that passed emit_from");
    assert!(all.iter().all(|p| p["as_of"].as_str().unwrap() >= from.as_str()), "nothing from the backfill itself");
    assert!(all.len() > 3, "then updates as usual (an order a day)");
}

#[test]
fn profiles_off_sends_none() {
    let mut e = engine("[profiles]\nenabled = false\n");
    let out = feed(&mut e, &[line("a", "click", 0, ""), line("a", "order", DAY, r#","amount":5"#)]);
    assert!(payloads(&out, PROFILE_CE_TYPE).is_empty());
}

/// Feeds `lines` to a task restored from the changelog records `first`
/// wrote, as a restart would.
fn restored(first: &mut Engine, cfg: &crate::config::Config) -> Engine {
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    first.write_changes(|k, v| {
        records.push((k.to_vec(), v.unwrap().to_vec()));
        Ok::<(), ()>(())
    })
    .unwrap();
    let mut second = engine_with(cfg);
    for (k, v) in &records {
        if k.as_slice() == META_KEY {
            second.restore_meta(&Meta::decode(v).unwrap());
        } else {
            second.restore_customer(decode_customer(std::str::from_utf8(k).unwrap(), v, second.rules().window_width()).unwrap());
        }
    }
    second
}

#[test]
fn a_held_profile_survives_a_restart_and_is_sent_as_if_none_happened() {
    let mut lines = vec![(0, line("a", "click", 0, "")), (10 * MIN, line("a", "chat", 10 * MIN, r#","csat":1"#))];
    lines.extend(clock(MIN, 4 * HOUR, 7 * MIN));
    let lines = in_order(lines);
    let mut whole = engine(ON);
    let want = feed(&mut whole, &lines);
    let cut = lines.iter().position(|l| l.contains("csat")).unwrap() + 1;
    let mut first = engine(ON);
    let mut got = feed(&mut first, &lines[..cut]);
    let mut second = restored(&mut first, &crate::test_support::config(ON));
    got.extend(feed(&mut second, &lines[cut..]));
    assert_eq!(payloads(&got, PROFILE_CE_TYPE), payloads(&want, PROFILE_CE_TYPE));
    assert_eq!(profiles_of(&want, "a").len(), 2);
}

#[test]
fn the_block_round_trips() {
    let mut c = crate::state::Customer::new("c".into(), T0, 3);
    note_answers(&mut c, None, Some(3), T0 + 5);
    note_answers(&mut c, Some(4), None, T0 + 6);
    let p = c.detectors.get_mut::<Profile>(KEY).unwrap();
    p.set_sent(T0 + 9, u64::MAX);
    c.set_profile_due_ms(Some(T0 - 7));
    let mut buf = Vec::new();
    encode_customer(&c, &mut buf);
    assert_eq!(decode_customer("c", &buf, 3).unwrap(), c);
    // The look-again time alone is kept too.
    let mut due_only = crate::state::Customer::new("d".into(), T0, 3);
    due_only.set_profile_due_ms(Some(T0 + 1));
    buf.clear();
    encode_customer(&due_only, &mut buf);
    assert_eq!(decode_customer("d", &buf, 3).unwrap(), due_only);
}

#[test]
fn bad_settings_name_their_key() {
    let bad = [
        ("min_interval_secs = 99999999", "profiles.min_interval_secs"),
        ("csat_step_pct = 0", "profiles.csat_step_pct"),
        ("clv_step_pct = 0.5", "profiles.clv_step_pct"),
        ("p_alive_levels = [0.3, 0.5]", "profiles.p_alive_levels"),
        ("p_alive_levels = [1.0]", "profiles.p_alive_levels"),
    ];
    for (line, key) in bad {
        let err = crate::config::Config::parse(&format!("[profiles]\n{line}\n"), "t").unwrap_err().to_string();
        assert!(err.contains(key), "{line}: {err}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever the events and wherever a restart falls, the profiles sent
    /// are those of a task that never stopped.
    #[test]
    fn a_restart_anywhere_sends_the_profiles_of_an_uninterrupted_run(
        events in proptest::collection::vec((0u8..4, 0u8..5, 0i64..90 * DAY), 1..120),
        cut in 0.0f64..1.0,
    ) {
        let kinds = ["click", "order", "chat", "survey"];
        let mut lines: Vec<(i64, String)> = events.iter().map(|(who, kind, t)| {
            let extra = match *kind { 1 => r#","amount":20"#.to_string(), 2 => format!(r#","csat":{}"#, 1 + t % 5), 3 => format!(r#","nps":{}"#, t % 11), _ => String::new() };
            (*t, line(&format!("c{who}"), kinds[usize::from(*kind).min(3)], *t, &extra))
        }).collect();
        lines.extend(clock(0, 120 * DAY, DAY / 3));
        let lines = in_order(lines);
        let cut = (lines.len() as f64 * cut) as usize;
        let cfg = with_fit(ON);
        let mut whole = engine_with(&cfg);
        let want = feed(&mut whole, &lines);
        let mut first = engine_with(&cfg);
        let mut got = feed(&mut first, &lines[..cut]);
        let mut second = restored(&mut first, &cfg);
        got.extend(feed(&mut second, &lines[cut..]));
        proptest::prop_assert_eq!(payloads(&got, PROFILE_CE_TYPE), payloads(&want, PROFILE_CE_TYPE));
    }
}

#[test]
fn population_satisfaction_counts_each_customers_latest_answers_in_the_window() {
    let customer = |id: &str, answers: &[(Option<u8>, Option<u8>, i64)]| {
        let mut c = crate::state::Customer::new(id.into(), T0, 3);
        for (csat, nps, at) in answers {
            note_answers(&mut c, *csat, *nps, T0 + at);
        }
        c
    };
    let all = [
        customer("a", &[(Some(1), Some(2), 10 * DAY), (Some(5), Some(10), 50 * DAY)]), // latest: satisfied, promoter
        customer("b", &[(Some(2), Some(6), 60 * DAY)]),                                // unsatisfied, detractor
        customer("c", &[(Some(4), Some(8), 70 * DAY), (Some(1), None, 65 * DAY)]),     // a late, older 1 does not replace the 4
        customer("d", &[(Some(5), Some(9), 5 * DAY)]),                                 // outside the window
        customer("e", &[]),
    ];
    let mut s = Satisfaction::default();
    all.iter().for_each(|c| s.add(c, T0 + 20 * DAY, T0 + 80 * DAY));
    assert_eq!(s, Satisfaction { csat_answered: 3, csat_satisfied: 2, nps_answered: 3, nps_promoters: 1, nps_detractors: 1 });
    // CSAT 2 of 3 = 66.7 %; NPS (1 − 1) / 3 = 0.
}
