use proptest::prelude::*;

use super::*;
use crate::test_support::{engine, feed, line, payloads, DAY};

const ON: &str = "[detect.tiers]\nenabled = true\n[detect.dormancy]\nenabled = false\n";
const CE: &str = "io.care.tier_changed.v1";

#[test]
fn tiers_follow_the_documented_table() {
    use Tier::*;
    let cases = [((5, 5), Champion), ((4, 4), Champion), ((5, 3), Loyal), ((3, 5), Loyal), ((5, 1), Potential), ((3, 2), Potential), ((2, 3), AtRisk), ((2, 5), AtRisk), ((2, 2), Hibernating), ((1, 5), Lost), ((1, 1), Lost)];
    for ((r, f), want) in cases {
        assert_eq!(Tier::of(r, f), want, "R {r} F {f}");
    }
}

#[test]
fn tier_names_and_indexes_agree_with_the_payload() {
    for (i, t) in Tier::ALL.iter().enumerate() {
        assert_eq!(t.index(), i);
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
}

#[test]
fn rfm_scores_known_answers() {
    let t = Tiers::new(&crate::config::Config::parse(ON, "t").unwrap());
    let mut h = PurchaseHistory::new(0, 60.0);
    for d in [10, 20, 30] {
        h.add(d, 60.0);
    }
    // 4 purchase days (F 3), 240 spent (M 3), last on day 30.
    assert_eq!(t.rfm(&h, 30, 1.0), Rfm { r: 5, f: 3, m: 3 });
    assert_eq!(t.rfm(&h, 31, 1.0).r, 4);
    assert_eq!(t.rfm(&h, 37, 1.25).r, 5, "30 × 1.25 = 37.5 days still scores 5 when stretched");
    assert_eq!(t.rfm(&h, 241, 1.0).r, 1);
    assert_eq!(t.next_drop_day(&h, 60), Some(30 + 37 + 1), "R next falls once 37.5 days have passed");
}

/// Tier names of the changes in `out`.
fn changes(out: &[crate::render::OutputRecord]) -> Vec<(String, String)> {
    payloads(out, CE).iter().map(|p| (p["from"].as_str().unwrap_or("-").to_string(), p["to"].as_str().unwrap().to_string())).collect()
}

#[test]
fn a_climber_rises_at_once_and_a_lapsing_champion_falls_by_timer() {
    let mut e = engine(ON);
    let mut lines: Vec<(i64, String)> = (0..8).map(|k| (k * 7 * DAY, line("c", "order", k * 7 * DAY, r#","amount":80"#))).collect();
    lines.extend((0..400).map(|d| (d * DAY + 1, line("other", "click", d * DAY + 1, ""))));
    lines.sort_by_key(|(t, _)| *t);
    let out = feed(&mut e, &lines.into_iter().map(|(_, l)| l).collect::<Vec<_>>());
    let seen = changes(&out.iter().filter(|r| r.key.as_deref() == Some(b"c".as_slice())).cloned().collect::<Vec<_>>());
    let want = [("-", "potential"), ("potential", "loyal"), ("loyal", "champion"), ("champion", "loyal"), ("loyal", "at_risk"), ("at_risk", "lost")];
    assert_eq!(seen, want.map(|(a, b)| (a.to_string(), b.to_string())), "{seen:?}");
    let p = payloads(&out, CE);
    // The last order on day 49: R falls below 4 once 60 × 1.25 = 75 days passed.
    assert_eq!(p[3]["at"], crate::render::rfc3339(crate::test_support::T0 + (49 + 76) * DAY), "{}", p[3]);
    assert_eq!((p[3]["r"].as_u64(), p[3]["f"].as_u64(), p[3]["purchase_days"].as_u64()), (Some(3), Some(4), Some(8)), "76 days: R 3, F 4: loyal");
}

proptest! {
    /// A buyer who orders every 25 to 40 days, around the 30-day line,
    /// settles into one tier instead of swinging month by month.
    #[test]
    fn a_buyer_near_a_threshold_does_not_flap(gaps in prop::collection::vec(25i64..=36, 12..20)) {
        let t = Tiers::new(&crate::config::Config::parse(ON, "t").unwrap());
        let mut h = PurchaseHistory::new(0, 100.0);
        let mut current = None;
        let mut changes = 0;
        let mut day = 0;
        for g in gaps {
            // Daily evaluations until the next order.
            for d in day..day + g {
                let (tier, _) = t.decide(&h, d, current);
                changes += usize::from(current != Some(tier));
                current = Some(tier);
            }
            day += g;
            h.add(day, 100.0);
        }
        // F climbs through its thresholds (2, 4, 8, 16 purchase days):
        // potential, loyal, champion, and nothing after.
        prop_assert!(changes <= 3, "{} changes", changes);
    }
}
