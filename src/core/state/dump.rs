//! A customer's raw state as JSON, for operators (`care state`) and for
//! tests that compare restored state with replayed state field by field.
//! Unlike the scorecard it derives nothing: it is the [`Customer`]'s own
//! derived `Serialize`, so every field of the state is here, including ones
//! added later (a hand-kept list once left out the sequential decline's
//! running figures). Times are epoch milliseconds.

use crate::state::Customer;

/// Every field of one customer's state.
pub type CustomerDump<'a> = &'a Customer;

#[cfg(test)]
mod tests {
    use crate::detect::{csat_low, nps_detractor};
    use crate::state::{CsatWindow, Customer, DeclineStat, Episode};

    fn dump(c: &Customer) -> String {
        serde_json::to_string(c).unwrap()
    }

    #[test]
    fn a_change_to_any_field_shows_in_the_dump() {
        let base = Customer::new("c".into(), 5, 9);
        let mut changed: Vec<Customer> = Vec::new();
        let mut each = |f: &dyn Fn(&mut Customer)| {
            let mut c = base.clone();
            f(&mut c);
            changed.push(c);
        };
        each(&|c| c.first_seen_ms = 6);
        each(&|c| c.last_activity_ms = Some(7));
        each(&|c| c.last_seen_ms[3] = Some(7));
        each(&|c| c.activity_events = 1);
        each(&|c| c.orders.count = 1);
        each(&|c| c.csat.responses = 1);
        each(&|c| c.nps.detractors = 1);
        each(&|c| c.decline = Episode::Cooldown { until: 3 });
        each(&|c| c.decline_stat = DeclineStat { rate: 0.5, ..DeclineStat::default() });
        each(&|c| c.decline_stat.next = 17);
        each(&|c| c.silent_since = Some(9));
        each(&|c| c.dormant_since = Some(9));
        each(&|c| c.detectors.insert(nps_detractor::ID.0, nps_detractor::Alerted { last_alert_ms: 9 }));
        each(&|c| _ = c.detectors.get_or_insert_with(csat_low::ID.0, CsatWindow::default));
        each(&|c| _ = c.detectors.get_or_insert_with(csat_low::ID.0, CsatWindow::default).add(3, true));
        each(&|c| c.set_timer_at(Some(11)));
        each(&|c| _ = c.remember_event_id("e", 0, 0));
        each(&|c| _ = c.activity.add(4, crate::event::Kind::Chat));
        for c in &changed {
            assert_ne!(dump(c), dump(&base), "{c:?}");
        }
        let json: serde_json::Value = serde_json::from_str(&dump(&changed[8])).unwrap();
        assert_eq!(json["decline_stat"]["rate"], 0.5);
        assert_eq!(json["customer_id"], "c");
    }
}
