use super::*;

fn summary(frequency: u32, recency: f64, t: f64, monetary_value: f64) -> Summary {
    Summary { frequency, recency, t, monetary_value }
}

/// lifetimes' summary of the CDNOW sample (calibration end 1997-09-30,
/// weeks), from the checked-in reference.
pub(crate) fn cdnow() -> Vec<Summary> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/cdnow/reference.csv");
    let text = std::fs::read_to_string(path).expect("the CDNOW reference is checked in");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("customer_id"))
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
            summary(f[1] as u32, f[2], f[3], f[4])
        })
        .collect()
}

fn within(got: f64, want: f64, rel: f64) -> bool {
    (got / want - 1.0).abs() <= rel
}

#[test]
fn cdnow_reproduces_the_published_parameters() {
    let s = cdnow();
    assert_eq!(s.len(), 2357);
    let bg = fit_bgnbd(&BgNbdData::new(&s)).unwrap();
    let m = bg.model;
    assert!(bg.converged);
    for (got, want) in [(m.r, 0.243), (m.alpha, 4.414), (m.a, 0.793), (m.b, 2.426), (bg.log_likelihood, -9582.4)] {
        assert!(within(got, want, 0.01), "{got} vs published {want}");
    }
    // lifetimes' own optimum, to the precision its summary allows.
    for (got, want) in [(m.r, 0.24259454342106748), (m.alpha, 4.413602716077385), (m.a, 0.7929218333479277), (m.b, 2.425905728721954)] {
        assert!(within(got, want, 1e-3), "{got} vs lifetimes {want}");
    }
    // lifetimes' `summary["se(coef)"]` on the same data (autograd's exact
    // Hessian); ours is by central differences.
    fn se<M>(f: &Fitted<M>, i: usize) -> f64 {
        f.std_errs[i].unwrap()
    }
    for (i, want) in [0.012557379179684566, 0.3782241011783492, 0.18573374996624992, 0.7054138507251393].into_iter().enumerate() {
        assert!(within(se(&bg, i), want, 0.01), "standard error {} vs lifetimes {want}", se(&bg, i));
    }
    let gg = fit_gamma_gamma(&GammaGammaData::new(&s)).unwrap();
    assert!(gg.converged);
    assert_eq!(gg.customers, 946);
    for (got, want) in [(gg.model.p, 6.25), (gg.model.q, 3.74), (gg.model.v, 15.44)] {
        assert!(within(got, want, 0.01), "{got} vs published {want}");
    }
    for (i, want) in [1.1900553469682755, 0.2901330674896969, 4.159422799981461].into_iter().enumerate() {
        assert!(within(se(&gg, i), want, 0.01), "standard error {} vs lifetimes {want}", se(&gg, i));
    }
}

#[test]
fn standard_errors_match_the_curvature() {
    // −ln L = ½ (u − 1)ᵀ A (u − 1) has Hessian A everywhere.
    let f = |u: &[f64]| 0.5 * (2.0 * (u[0] - 1.0).powi(2) + 2.0 * (u[0] - 1.0) * (u[1] - 1.0) + 3.0 * (u[1] - 1.0).powi(2));
    let h = hessian(&f, &[1.0, 1.0]);
    for (got, want) in [(h[0][0], 2.0), (h[0][1], 1.0), (h[1][1], 3.0)] {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
    let inv = invert(h).unwrap();
    // A⁻¹ = [[3, −1], [−1, 2]] / 5
    assert!((inv[0][0] - 0.6).abs() < 1e-6 && (inv[0][1] + 0.2).abs() < 1e-6 && (inv[1][1] - 0.4).abs() < 1e-6);
    assert_eq!(invert(vec![vec![1.0, 2.0], vec![2.0, 4.0]]), None, "singular");
}

#[test]
fn degenerate_inputs_are_errors() {
    assert_eq!(fit_bgnbd(&BgNbdData::new(&[])).unwrap_err(), FitError::NoCustomers);
    assert_eq!(fit_bgnbd(&BgNbdData::new(&[summary(3, 5.0, 9.0, 1.0)])).unwrap_err(), FitError::OneCustomer);
    let one_timers = [summary(0, 0.0, 9.0, 0.0), summary(0, 0.0, 4.0, 0.0)];
    assert_eq!(fit_bgnbd(&BgNbdData::new(&one_timers)).unwrap_err(), FitError::NoRepeaters);
    assert_eq!(fit_gamma_gamma(&GammaGammaData::new(&one_timers)).unwrap_err(), FitError::NoRepeaters);
}

#[test]
fn identical_customers_are_one_weighted_row() {
    let s = [summary(0, 0.0, 9.0, 0.0), summary(0, 0.0, 9.0, 0.0), summary(2, 3.0, 9.0, 5.0)];
    let d = BgNbdData::new(&s);
    assert_eq!(d.rows(), 2);
    let m = BgNbd { r: 0.5, alpha: 2.0, a: 0.7, b: 2.0 };
    let by_hand: f64 = s.iter().map(|c| m.log_likelihood(c.frequency, c.recency, c.t)).sum();
    assert!((d.log_likelihood(&m) - by_hand).abs() < 1e-12);
    let s = [summary(2, 3.0, 9.0, 5.0), summary(2, 4.0, 9.0, 5.0), summary(1, 3.0, 9.0, 7.5), summary(3, 3.0, 9.0, 0.0)];
    let d = GammaGammaData::new(&s);
    assert_eq!((d.rows.len(), d.customers), (2, 3.0), "two at (2, 5.0), one at (1, 7.5), none without a value");
    let g = GammaGamma { p: 6.0, q: 3.8, v: 15.0 };
    let by_hand: f64 = s[..3].iter().map(|c| g.log_likelihood(c.frequency, c.monetary_value)).sum();
    assert!((d.log_likelihood(&g) - by_hand).abs() < 1e-12);
}
