use super::*;

fn truth(class: SatClass, ticket_rate: f64, satisfied: f64, change_day: Option<u32>) -> SatTruth {
    SatTruth { class, answer_rate: 0.1, ticket_rate, satisfied, change_day }
}

fn day(d: f64) -> i64 {
    START_MS + (d * DAY_MS as f64) as i64
}

fn answer_on(customer: u32, d: f64, csat: u8, nps: Option<u8>) -> SimEvent {
    SimEvent { ts_ms: day(d), customer, kind: Kind::Survey, amount: None, csat: Some(csat), nps }
}

#[test]
fn scoring_known_answer() {
    let t = [
        truth(SatClass::Steady, 0.1, 0.9, None),
        truth(SatClass::Steady, 0.1, 0.5, None),
        truth(SatClass::FallingCsat { to: 0.1 }, 0.1, 0.9, Some(100)),
        truth(SatClass::FallingCsat { to: 0.1 }, 0.1, 0.9, Some(100)),
        truth(SatClass::TicketSurge { factor: 4.0 }, 0.2, 0.9, Some(90)),
        truth(SatClass::TicketSurge { factor: 4.0 }, 0.1, 0.9, Some(90)),
    ];
    let mut s = SatScorer::new(&t);
    // Customer 2 answers three times in the 14 days (once a detractor), 3 twice.
    for e in [answer_on(2, 99.0, 1, None), answer_on(2, 100.5, 1, Some(3)), answer_on(2, 105.0, 2, None), answer_on(2, 113.9, 1, None), answer_on(2, 114.1, 1, None)] {
        s.input(&e);
    }
    for e in [answer_on(3, 101.0, 1, None), answer_on(3, 102.0, 1, Some(9))] {
        s.input(&e);
    }
    s.opened(0, FALLING_CSAT, day(20.0)); // in the warm-up: not counted
    s.opened(0, FALLING_CSAT, day(50.0)); // false
    s.opened(0, TICKET_SURGE, day(60.0)); // false
    s.opened(0, CSAT_LOW, day(61.0)); // false: true share 90 %
    s.opened(1, CSAT_LOW, day(61.0)); // true: share 50 %
    s.opened(0, NPS_DETRACTOR, day(62.0)); // counted, never false
    s.opened(2, FALLING_CSAT, day(99.0)); // before the change: not a catch
    s.opened(2, FALLING_CSAT, day(106.0)); // caught in 6 days
    s.opened(2, NPS_DETRACTOR, day(100.5));
    s.opened(3, FALLING_CSAT, day(103.0)); // not in the cohort: 2 answers
    s.opened(4, TICKET_SURGE, day(105.0)); // 15 days: outside 14
    s.opened(4, FALLING_CSAT, day(93.0)); // a catch for "any"
    let r = s.report(&SatVariant::reference(1, 6, 180), 0);
    let months = 2.0 * 145.0 / MONTH_DAYS;
    assert!((r.steady_customer_months - months).abs() < 1e-9);
    assert_eq!(r.alerts_on_steady, [1, 1, 1, 1]);
    assert!((r.false_alerts_per_1000_months() - 3000.0 / months).abs() < 1e-9, "NPS detractor alerts are not in the total");
    assert_eq!(r.recall[0], Recall { customers: 1, caught: 1, median_delay_days: Some(6.0) });
    assert_eq!(r.recall[1], Recall { customers: 1, caught: 0, median_delay_days: None }, "a ticket a week or more before");
    assert_eq!(r.recall[2], Recall { customers: 1, caught: 0, median_delay_days: None });
    assert_eq!(r.recall[3], Recall { customers: 1, caught: 1, median_delay_days: Some(0.5) });
    assert_eq!((r.any.customers, r.any.caught), (2, 2), "customer 2 by falling CSAT, 4 by falling CSAT within 3 days");
}

#[test]
fn personas_follow_the_design_and_the_seed() {
    let v = SatVariant::reference(4, 6_000, 150);
    let (mut a, mut b) = (SatPopulation::new(v.clone()), SatPopulation::new(v.clone()));
    assert_eq!(a.truth, b.truth);
    let n = a.truth.len() as f64;
    let share = |f: &dyn Fn(&SatTruth) -> bool| a.truth.iter().filter(|t| f(t)).count() as f64 / n;
    assert!((share(&|t| t.class == SatClass::Steady) - 0.70).abs() < 0.02);
    assert!((share(&|t| matches!(t.class, SatClass::FallingCsat { .. })) - 0.15).abs() < 0.02);
    let mean = |f: &dyn Fn(&SatTruth) -> f64| a.truth.iter().map(f).sum::<f64>() / n;
    assert!((mean(&|t| t.answer_rate * MONTH_DAYS) / v.answers_per_month - 1.0).abs() < 0.06);
    assert!((mean(&|t| t.ticket_rate * MONTH_DAYS) / v.tickets_per_month - 1.0).abs() < 0.06);
    assert!((mean(&|t| t.satisfied) - 0.9).abs() < 0.01);
    // Many answer rarely, a few often: the median well under the mean.
    let mut rates: Vec<f64> = a.truth.iter().map(|t| t.answer_rate).collect();
    rates.sort_by(f64::total_cmp);
    assert!(rates[rates.len() / 2] < 0.7 * mean(&|t| t.answer_rate));
    for t in &a.truth {
        match (t.class, t.change_day) {
            (SatClass::Steady, None) => {}
            (SatClass::FallingCsat { to }, Some(d)) => assert!((0.0..=0.2).contains(&to) && (70..=120).contains(&d)),
            (SatClass::TicketSurge { factor }, Some(d)) => assert!((3.0..=8.0).contains(&factor) && (70..=120).contains(&d)),
            other => panic!("{other:?}"),
        }
    }
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let (mut answers, mut satisfied) = (0usize, 0usize);
    for d in 0..60 {
        a.day_events(d, &mut ea);
        b.day_events(d, &mut eb);
        assert_eq!(ea, eb);
        assert!(ea.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        answers += ea.iter().filter(|e| e.kind == Kind::Survey).count();
        satisfied += ea.iter().filter(|e| e.csat.is_some_and(|c| c >= 4)).count();
    }
    let share = satisfied as f64 / answers as f64;
    assert!((share - 0.9).abs() < 0.03, "before any change about 90 % are satisfied: {share}");
}

#[test]
fn surges_and_falls_start_on_their_day() {
    let t = truth(SatClass::TicketSurge { factor: 4.0 }, 0.5, 0.9, Some(100));
    assert_eq!((t.tickets_on(99), t.tickets_on(100), t.tickets_on(127), t.tickets_on(128)), (0.5, 2.0, 2.0, 0.5));
    let f = truth(SatClass::FallingCsat { to: 0.1 }, 0.5, 0.9, Some(100));
    assert_eq!((f.satisfied_on(99), f.satisfied_on(100), f.satisfied_on(170)), (0.9, 0.1, 0.1));
}
