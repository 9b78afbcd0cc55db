use super::*;
use crate::test_support::{engine, feed, line, payloads, DAY};

const ON: &str = "[detect.ticket_surge]\nenabled = true\n[detect.nps_detractor]\nenabled = false\n";
const CE: &str = "io.care.ticket_surge.v1";

/// Lines of `who` clicking on `days` and raising tickets on `tickets`, in time order.
fn script(who: &str, clicks: std::ops::Range<i64>, tickets: &[i64]) -> Vec<String> {
    let mut all: Vec<(i64, String)> = clicks.map(|d| (d * DAY, line(who, "click", d * DAY, ""))).collect();
    all.extend(tickets.iter().map(|d| (d * DAY + 60_000, line(who, "ticket", d * DAY + 60_000, ""))));
    all.sort_by_key(|(t, _)| *t);
    all.into_iter().map(|(_, l)| l).collect()
}

#[test]
fn three_tickets_in_a_week_from_a_quiet_customer_open_and_the_window_emptying_resolves() {
    let mut e = engine(ON);
    let out = feed(&mut e, &script("c", 0..130, &[100, 102, 104]));
    let p = payloads(&out, CE);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!((p[0]["status"].as_str(), p[0]["tickets"].as_u64()), (Some("opened"), Some(3)));
    // One ticket a quarter assumed, over the 98 days known before the
    // window (days 98-104) plus the prior's 90: 1/188 a day, 0.037 in 7.
    let expected: f64 = 7.0 / (98.0 + 90.0);
    assert!((p[0]["expected_tickets"].as_f64().unwrap() - (expected * 1000.0).round() / 1000.0).abs() < 1e-9, "{}", p[0]);
    let p_value = 1.0 - crate::detect::stats::poisson_cdf(2, expected);
    assert!((p[0]["p_value"].as_f64().unwrap() - (p_value * 1e6).round() / 1e6).abs() < 1e-12 && p_value < 0.001);
    // The window holds at most one ticket again once day 102's left it.
    assert_eq!(p[1]["status"], "resolved");
    assert_eq!(p[1]["at"], crate::render::rfc3339(crate::test_support::T0 + 109 * DAY), "{}", p[1]);
}

#[test]
fn a_customer_who_raises_a_ticket_a_week_is_not_surging_at_three() {
    let mut e = engine(ON);
    let mut tickets: Vec<i64> = (0..15).map(|w| w * 7 + 3).collect();
    tickets.extend([108, 109]);
    let out = feed(&mut e, &script("c", 0..120, &tickets));
    assert!(payloads(&out, CE).is_empty(), "3 in a week at a ticket a week: p ≈ 0.08");
}

#[test]
fn the_block_round_trips() {
    let mut c = Customer::new("c".into(), 0, 3);
    let mut per_day = [0u8; MAX_WINDOW];
    per_day[3] = 2;
    c.detectors.insert(ID.0, Tickets { day: 20_000, per_day, earlier: 4, open_since_ms: Some(77) });
    let mut buf = Vec::new();
    crate::state::codec::encode_customer(&c, &mut buf);
    assert_eq!(crate::state::codec::decode_customer("c", &buf, 3).unwrap(), c);
}


#[test]
fn tickets_weeks_apart_all_feed_the_rate() {
    // A ticket every 10 days: each leaves the window in a jump of more than
    // a window, and must still count as an earlier ticket.
    let t = TicketSurge::new(&crate::config::Config::parse(ON, "t").unwrap());
    let mut k = Tickets { day: 0, ..Tickets::default() };
    for day in (0..200).step_by(10) {
        t.slide(&mut k, day);
        k.per_day[(day % MAX_WINDOW as i64) as usize] += 1;
    }
    assert_eq!(k.earlier, 19, "every ticket but the newest, which is in the window");
    assert_eq!(k.per_day.iter().map(|&n| u32::from(n)).sum::<u32>(), 1, "slots outside the window are empty");
    assert_eq!(t.count(&k), 1);
}
