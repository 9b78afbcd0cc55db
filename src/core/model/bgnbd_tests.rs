use super::*;
use proptest::prelude::*;

/// lifetimes' fit on the CDNOW sample in weeks (see
/// tests/fixtures/cdnow/reference.csv).
const CDNOW: BgNbd = BgNbd { r: 0.24259454342106748, alpha: 4.413602716077385, a: 0.7929218333479277, b: 2.425905728721954 };

#[test]
fn likelihood_by_hand() {
    // x = 0: L = (α / (α + T))^r; r = α = a = b = 1, T = 1 gives 1/2.
    let m = BgNbd { r: 1.0, alpha: 1.0, a: 1.0, b: 1.0 };
    assert!((m.log_likelihood(0, 0.0, 1.0) - 0.5f64.ln()).abs() < 1e-12);
    // x = 1, t_x = 1, T = 2, b = 2: B(1,3)/B(1,2) · Γ(2)/Γ(1) ·
    // [3^−2 + ½ · 2^−2] = ⅔ · 17/72 = 17/108.
    let m = BgNbd { b: 2.0, ..m };
    assert!((m.log_likelihood(1, 1.0, 2.0) - (17.0f64 / 108.0).ln()).abs() < 1e-12);
    assert!((m.p_alive(1, 1.0, 2.0) - 8.0 / 17.0).abs() < 1e-12, "1 / (1 + ½ · (3/2)²)");
}

#[test]
fn cdnow_customer_one_matches_lifetimes() {
    // Customer 1: x 2, t_x 213/7, T 272/7 weeks; lifetimes gives
    // P(alive) 0.726620298 and 1.56218968 purchases in 365/7 weeks.
    let (x, tx, t) = (2, 213.0 / 7.0, 272.0 / 7.0);
    assert!((CDNOW.p_alive(x, tx, t) - 0.726620298).abs() < 1e-8);
    assert!((CDNOW.expected_purchases(365.0 / 7.0, x, tx, t) / 1.56218968 - 1.0).abs() < 1e-8);
}

#[test]
fn p_alive_is_one_without_repeats() {
    for t in [0.0, 1.0, 1e3, 1e6] {
        assert_eq!(CDNOW.p_alive(0, 0.0, t), 1.0, "a one-time buyer is alive at any age (the model's assumption)");
    }
}

#[test]
fn next_purchase_is_when_half_the_chance_is_reached() {
    let (x, tx, t) = (5, 35.0, 38.0);
    let p = CDNOW.p_alive(x, tx, t);
    assert!(p > 0.5);
    let wait = CDNOW.next_purchase_in(x, t, p).unwrap();
    let rx = CDNOW.r + 5.0;
    let chance = p * (1.0 - ((CDNOW.alpha + t) / (CDNOW.alpha + t + wait)).powf(rx));
    assert!((chance - 0.5).abs() < 1e-12);
    assert_eq!(CDNOW.next_purchase_in(x, t, 0.5), None);
}

proptest! {
    /// Older with the same history means less likely alive: non-increasing
    /// in T, strictly decreasing once the customer has repeated.
    #[test]
    fn p_alive_falls_with_age(x in 0u32..50, tx in 0.0f64..100.0, dt in 0.0f64..100.0, more in 0.01f64..100.0,
                             r in 0.05f64..5.0, alpha in 0.1f64..50.0, a in 0.05f64..5.0, b in 0.05f64..5.0) {
        let m = BgNbd { r, alpha, a, b };
        let t = tx + dt;
        let (now, later) = (m.p_alive(x, tx, t), m.p_alive(x, tx, t + more));
        prop_assert!((0.0..=1.0).contains(&now));
        if x == 0 {
            prop_assert_eq!(now, 1.0);
            prop_assert_eq!(later, 1.0);
        } else {
            prop_assert!(later < now || now == 0.0, "P(alive) {} at T {} but {} at T {}", now, t, later, t + more);
        }
    }

    /// More time ahead, more purchases expected; never negative.
    #[test]
    fn expected_purchases_grow_with_the_horizon(x in 0u32..30, tx in 0.0f64..60.0, dt in 0.0f64..60.0, h in 0.1f64..100.0) {
        let t = tx + dt;
        let e1 = CDNOW.expected_purchases(h, x, tx, t);
        let e2 = CDNOW.expected_purchases(2.0 * h, x, tx, t);
        prop_assert!(e1 >= 0.0 && e2 > e1, "E {} for {} and {} for {}", e1, h, e2, 2.0 * h);
    }
}
