use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn cusum_and_its_episodes_on_a_known_sequence() {
    let path = cusum([1.0, -0.5, 2.0, -5.0, 1.0, 1.0, 1.0]);
    assert_eq!(path, [1.0, 0.5, 2.5, 0.0, 1.0, 2.0, 3.0]);
    // Opens on reaching h, closes when back at 0, opens again.
    assert_eq!(openings(&path, 2.0).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(openings(&path, 2.5).collect::<Vec<_>>(), [2, 6]);
    assert_eq!(openings(&path, 3.0).collect::<Vec<_>>(), [6]);
    assert_eq!(openings(&path, 3.5).count(), 0);
    // Starting again from 0 after each alert: 1, 0.5, 2.5 alerts (→ 0), 0,
    // 1, 2 alerts (→ 0), 1.
    let llr = [1.0, -0.5, 2.0, -5.0, 1.0, 1.0, 1.0];
    assert_eq!(reset_openings(&llr, 2.0).collect::<Vec<_>>(), [2, 5]);
    assert_eq!(reset_openings(&llr, 1.0).collect::<Vec<_>>(), [0, 2, 4, 5, 6]);
    assert_eq!(reset_openings(&llr, 3.0).collect::<Vec<_>>(), [6]);
    // A customer 90 % satisfied falling to 10 %: each unsatisfied answer
    // weighs ln 9, a satisfied one −ln 9.
    assert!((answer_llr(false, 0.9, 0.1) - 9f64.ln()).abs() < 1e-12);
    assert!((answer_llr(true, 0.9, 0.1) + 9f64.ln()).abs() < 1e-12);
    let s = cusum([true, false, false, true, false, false, false].map(|sat| answer_llr(sat, 0.9, 0.1)));
    let l = 9f64.ln();
    for (got, want) in s.iter().zip([0.0, l, 2.0 * l, l, 2.0 * l, 3.0 * l, 4.0 * l]) {
        assert!((got - want).abs() < 1e-9, "{s:?}");
    }
    // At h = 3 ln 9 (less a hair): the third unsatisfied answer in a row.
    assert_eq!(openings(&s, 3.0 * l - 1e-9).collect::<Vec<_>>(), [5]);
}

#[test]
fn excursions_count_the_scored_openings() {
    // Scored from step 4: [1] and [3] end before it, [2, 5] and [4] are in it.
    let path = [1.0, 0.0, 3.0, 0.0, 2.0, 5.0, 0.0, 4.0];
    assert_eq!(excursions(&path, |i| i >= 4), [(0.0, 5.0), (0.0, 4.0)]);
    // One across the start: opened before it at h ≤ 2, counted at 2 < h ≤ 3.
    let across = [2.0, 3.0, 1.0];
    let e = excursions(&across, |i| i >= 1);
    assert_eq!(e, [(2.0, 3.0)]);
    for h in [1.5, 2.0, 2.5, 3.0, 3.5] {
        let scored = openings(&across, h).filter(|&i| i >= 1).count() as u64;
        assert_eq!(Calibration::count_at(&e, h), scored, "h = {h}");
    }
}

#[test]
fn calibration_keeps_false_alerts_within_the_budget() {
    // Steady customers 90 % satisfied answering 100 times, scored from the
    // 20th answer, against a fall to 10 %.
    let mut rng = StdRng::seed_from_u64(7);
    let mut all = Vec::new();
    for _ in 0..2_000 {
        let path = cusum((0..100).map(|_| answer_llr(rng.random::<f64>() < 0.9, 0.9, 0.1)));
        all.extend(excursions(&path, |i| i >= 20));
    }
    let c = Calibration::new(&all);
    for allowed in [0.0, 3.0, 30.0, 300.0] {
        let h = c.threshold(allowed);
        assert!(Calibration::count_at(&all, h) as f64 <= allowed, "{allowed}: {h}");
        for above in [1.01, 1.1, 1.5, 2.0, 4.0] {
            assert!(Calibration::count_at(&all, h * above) as f64 <= allowed, "{allowed}: every higher threshold too");
        }
        // The lowest such: just below it, too many.
        assert!(Calibration::count_at(&all, h * (1.0 - 1e-9)) as f64 > allowed, "{allowed}: {h}");
    }
}

#[test]
fn ticket_llr_weighs_counts_against_the_customer_rate() {
    let mut t = TicketLlr::new(1.0 / 7.0, (3.0, 8.0));
    // A quiet day speaks against a surge, a busy one for it, more so the more.
    assert!(t.llr(0) < 0.0);
    assert!(t.llr(2) > 0.0);
    assert!(t.llr(3) > t.llr(2));
    // Without busy days and a surge of exactly 4×, it is the Poisson ratio.
    let no_busy_ratio = |n: u32, mu: f64, f: f64| f64::from(n) * f.ln() - mu * (f - 1.0);
    let mut fixed = TicketLlr::new(1.0 / 7.0, (4.0, 4.0));
    // Busy days make one quiet day a little less telling; the gap is small.
    assert!((fixed.llr(0) - no_busy_ratio(0, 1.0 / 7.0, 4.0)).abs() < 0.02, "{}", fixed.llr(0));
}

#[test]
fn the_oracle_on_a_small_population_holds_its_budget() {
    let v = SatVariant { customers: 4_000, ..SatVariant::reference(1, 4_000, 180) };
    let r = oracle_only(&v, &OracleParams::default());
    assert_eq!(r.best.len(), BUDGETS.len());
    for (b, (best, even)) in BUDGETS.iter().zip(r.best.iter().zip(&r.even)) {
        for pair in [best, even] {
            assert!((pair[0].budget + pair[1].budget - b).abs() < 1e-9);
            for s in pair {
                assert!(s.false_per_1000 <= s.budget + 1e-9, "{s:?}");
            }
        }
    }
    // More budget, no less recall; later, no less either.
    assert!(r.even[2][1].recall[0].rate() >= r.even[0][1].recall[0].rate());
    assert!(r.best[0][0].recall[2].rate() >= r.best[0][0].recall[0].rate());
    assert!(r.best[0][1].recall[0].customers > 0 && r.best[0][0].recall[0].customers > 0);
}

#[test]
fn assumptions_parse() {
    let p = OracleParams::parse("fall_to=0.1/0.2,surge=3-8/4").expect("parses");
    assert_eq!(p, OracleParams { fall_to: vec![0.1, 0.2], surge: vec![(3.0, 8.0), (4.0, 4.0)] });
    assert_eq!(OracleParams::parse("surge=5").map(|p| p.fall_to), Some(OracleParams::default().fall_to));
    assert_eq!(OracleParams::parse("fall=0.1"), None);
}
