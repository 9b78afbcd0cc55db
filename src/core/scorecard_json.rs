//! The scorecard written as JSON by hand, for the profiles topic: the
//! same bytes as `serde_json::to_vec` of the derived `Serialize` (a
//! property test holds the two together), in half the time and a
//! fraction of the code. serde_json escapes every key byte by byte; here
//! the keys are literals, instants and dates are written as the digits
//! they are, integers by itoa and floats by zmij, as serde_json writes
//! them. The code is small on purpose: a profile is sent between events,
//! and every cache line of code it pulls in is one the event path loses.
//! Strings that may need escaping (the customer id, the fit's date) go
//! through serde_json.

use super::{Csat, Field, Named, Nps, Orders, Scorecard, Value};
use crate::model::TimeUnit;
use crate::time::{Date, Time};

/// A literal key with its quotes, colon and comma made at compile time:
/// one copy per key.
macro_rules! key {
    ($o:expr, $k:literal) => {
        $o.token(concat!(",\"", $k, "\":").as_bytes())
    };
}

/// Writes `card` as compact JSON with sorted keys onto `out`.
pub(super) fn write(card: &Scorecard, out: &mut Vec<u8>) {
    let mut o = Object::open(out);
    key!(o, "activity_decline").plain(card.activity_decline);
    key!(o, "activity_events").int(card.activity_events);
    key!(o, "as_of").time(card.as_of);
    key!(o, "csat").csat(&card.csat);
    key!(o, "customer_id").string(&card.customer_id);
    key!(o, "dormant_since").time(card.dormant_since);
    key!(o, "first_seen_at").time(Some(card.first_seen_at));
    key!(o, "last_activity_at").time(card.last_activity_at);
    key!(o, "last_seen_at").named(&card.last_seen_at, |w, t| w.time(Some(*t)));
    key!(o, "nps").nps(&card.nps);
    key!(o, "open_episodes").named(&card.open_episodes, |w, t| w.time(*t));
    key!(o, "orders").orders(&card.orders);
    key!(o, "partition").int(card.partition);
    key!(o, "reactivation_score").float(card.reactivation_score);
    key!(o, "recent_activity").named(&card.recent_activity, |w, n| w.int(*n));
    match card.rfm {
        Some(r) => key!(o, "rfm").rfm(r.f, r.m, r.r),
        None => key!(o, "rfm").null(),
    }
    key!(o, "silent_since").time(card.silent_since);
    match card.tier {
        Some(t) => key!(o, "tier").plain(t.as_str()),
        None => key!(o, "tier").null(),
    }
    match &card.value {
        Some(v) => key!(o, "value").value(v),
        None => key!(o, "value").null(),
    }
    o.close();
}

/// An object being written: whether a key came yet, for the commas.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

/// Where one value goes.
struct Slot<'o, 'a>(&'o mut Object<'a>);

impl<'a> Object<'a> {
    fn open(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, first: true }
    }

    /// A key that needs no escaping (a Rust identifier or a kind's name).
    fn key(&mut self, k: &str) -> Slot<'_, 'a> {
        debug_assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{k} needs escaping");
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        Slot(self)
    }

    /// A key made by [`key!`]: `,"k":`, its comma left out first.
    fn token(&mut self, t: &[u8]) -> Slot<'_, 'a> {
        self.out.extend_from_slice(if self.first { &t[1..] } else { t });
        self.first = false;
        Slot(self)
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

impl Slot<'_, '_> {
    fn out(&mut self) -> &mut Vec<u8> {
        self.0.out
    }

    /// A string that may need escaping.
    fn string(mut self, s: &str) {
        serde_json::to_writer(self.out(), s).expect("writing to a Vec cannot fail");
    }

    /// A float as serde_json writes one: zmij's shortest form, `null`
    /// when not finite (or absent).
    fn float(mut self, v: Option<f64>) {
        match v.filter(|v| v.is_finite()) {
            Some(v) => self.out().extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes()),
            None => self.null(),
        }
    }

    fn boolean(mut self, b: bool) {
        self.out().extend_from_slice(if b { b"true" } else { b"false" });
    }

    fn rfm(mut self, f: u8, m: u8, r: u8) {
        let mut o = Object::open(self.out());
        key!(o, "f").int(f);
        key!(o, "m").int(m);
        key!(o, "r").int(r);
        o.close();
    }

    /// An integer, as serde_json writes it (itoa), without its dispatch.
    fn int<I: itoa::Integer>(mut self, v: I) {
        self.out().extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    fn null(mut self) {
        self.out().extend_from_slice(b"null");
    }

    /// A string that needs no escaping.
    fn plain(self, s: &str) {
        self.quoted(s.as_bytes());
    }

    /// ASCII that needs no escaping, quoted.
    fn quoted(mut self, b: &[u8]) {
        let out = self.out();
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    }

    /// 24 bytes of digits, quoted, in one copy.
    fn quoted_24(mut self, b: [u8; 24]) {
        let mut q = [b'"'; 26];
        q[1..25].copy_from_slice(&b);
        self.out().extend_from_slice(&q);
    }

    fn time(self, t: Option<Time>) {
        match t {
            None => self.null(),
            Some(t) => match t.digits() {
                Some(b) => self.quoted_24(b),
                None => self.string(&crate::time::rfc3339(t.0)),
            },
        }
    }

    fn date(self, d: Option<Date>) {
        match d {
            None => self.null(),
            Some(d) => match d.digits() {
                Some(b) => self.quoted(&b),
                None => self.string(&d.text()),
            },
        }
    }

    fn named<V, const N: usize>(mut self, m: &Named<V, N>, mut each: impl FnMut(Slot<'_, '_>, &V)) {
        let mut o = Object::open(self.out());
        for (name, v) in m.iter() {
            each(o.key(name), v);
        }
        o.close();
    }

    fn csat(mut self, c: &Csat) {
        let mut o = Object::open(self.out());
        key!(o, "csat_pct").float(c.csat_pct);
        key!(o, "responses").int(c.responses);
        key!(o, "satisfied").int(c.satisfied);
        o.close();
    }

    fn nps(mut self, n: &Nps) {
        let mut o = Object::open(self.out());
        key!(o, "detractors").int(n.detractors);
        match n.last {
            Some(l) => key!(o, "last").int(l),
            None => key!(o, "last").null(),
        }
        key!(o, "last_at").time(n.last_at);
        key!(o, "nps").float(n.nps);
        key!(o, "promoters").int(n.promoters);
        key!(o, "responses").int(n.responses);
        o.close();
    }

    fn orders(mut self, x: &Orders) {
        let mut o = Object::open(self.out());
        key!(o, "average_order_value").float(x.average_order_value);
        key!(o, "count").int(x.count);
        key!(o, "first_at").time(x.first_at);
        key!(o, "last_at").time(x.last_at);
        key!(o, "total_amount").float(Some(x.total_amount));
        o.close();
    }

    /// In the order of [`Value::fields`], which `Value`'s `Serialize`
    /// walks too.
    fn value(mut self, v: &Value) {
        let mut o = Object::open(self.out());
        for (k, field) in v.fields() {
            let slot = o.key(k);
            match field {
                Field::Float(x) => slot.float(x),
                Field::Int(x) => slot.int(x),
                Field::Bool(x) => slot.boolean(x),
                Field::Date(x) => slot.date(x),
                Field::Text(Some(x)) => slot.string(x),
                Field::Text(None) | Field::Unit(None) => slot.null(),
                Field::Unit(Some(TimeUnit::Days)) => slot.plain("days"),
                Field::Unit(Some(TimeUnit::Weeks)) => slot.plain("weeks"),
            }
        }
        o.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::super::*;
    use crate::detect::tiers::{Rfm, Tier};
    use crate::model::value::Figures;
    use crate::model::TimeUnit;

    /// Instants in and out of years 0 to 9999, and none.
    fn time() -> impl Strategy<Value = Option<Time>> {
        prop_oneof![Just(None), (-100_000_000_000_000i64..400_000_000_000_000).prop_map(|t| Some(Time(t))), any::<i64>().prop_map(|t| Some(Time(t)))]
    }

    fn date() -> impl Strategy<Value = Option<Date>> {
        prop_oneof![Just(None), (-1_000_000i64..4_000_000).prop_map(Date::of_day), any::<i64>().prop_map(Date::of_day)]
    }

    /// NaN and the infinities too: serde_json writes them as null.
    fn float() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![Just(None), any::<f64>().prop_map(Some), (-1e6..1e6f64).prop_map(Some), Just(Some(f64::NAN)), Just(Some(f64::INFINITY))]
    }

    fn named<V: Copy + Default + std::fmt::Debug, const N: usize>(names: &'static [&'static str], v: impl Strategy<Value = V>) -> impl Strategy<Value = Named<V, N>> {
        proptest::collection::vec((proptest::sample::select(names), v), 0..=N).prop_map(|items| {
            let mut m = Named::new();
            for (name, v) in items {
                if m.get(name).is_none() {
                    m.insert(name, v);
                }
            }
            m
        })
    }

    fn figures() -> impl Strategy<Value = Figures> {
        (any::<u32>(), any::<f64>(), any::<f64>(), any::<f64>(), float(), float(), float(), float(), float(), float()).prop_map(
            |(frequency, recency, t, monetary_value, p_alive, expected_purchases, expected_avg_value, predicted_clv, expected_next_purchase_in_days, historic_clv)| Figures {
                frequency,
                recency,
                t,
                monetary_value,
                p_alive,
                expected_purchases,
                expected_avg_value,
                predicted_clv,
                expected_next_purchase_in_days,
                historic_clv,
            },
        )
    }

    fn value() -> impl Strategy<Value = Option<Value>> {
        let v = (any::<u32>(), date(), date(), any::<bool>(), proptest::option::of(figures()), date(), proptest::option::of(any::<String>()), proptest::option::of(prop_oneof![Just(TimeUnit::Days), Just(TimeUnit::Weeks)])).prop_map(
            |(purchase_days, first_purchase_day, last_purchase_day, approximate, figures, expected_next_purchase, fit_calibration_end, time_unit)| Value {
                purchase_days,
                first_purchase_day,
                last_purchase_day,
                approximate,
                figures,
                expected_next_purchase,
                fit_calibration_end,
                time_unit,
            },
        );
        proptest::option::of(v)
    }

    const KINDS: &[&str] = &["click", "login", "chat", "ticket", "order", "survey"];
    const DETECTORS: &[&str] = &["decline", "silence", "dormancy", "purchase_churn", "low_csat", "ticket_surge"];

    prop_compose! {
        fn card()(
            decline in proptest::sample::select(&["normal", "open", "cooldown"][..]),
            activity_events in any::<u32>(),
            (as_of, dormant_since, last_activity_at, silent_since) in (time(), time(), time(), time()),
            first_seen_at in any::<i64>(),
            csat in (float(), any::<u32>(), any::<u32>()),
            customer_id in any::<String>(),
            last_seen_at in named::<Time, { Kind::TRACKED }>(&KINDS[..5], any::<i64>().prop_map(Time)),
            open_episodes in named::<Option<Time>, { REGISTRY.len() }>(DETECTORS, time()),
            recent_activity in named::<u32, { Kind::COUNT }>(KINDS, any::<u32>()),
            nps in (any::<u32>(), proptest::option::of(0u8..=10), time(), float(), any::<u32>(), any::<u32>()),
            orders in (float(), any::<u32>(), time(), time(), any::<f64>()),
            partition in any::<i32>(),
            reactivation_score in float(),
            rfm in proptest::option::of((1u8..=5, 1u8..=5, 1u8..=5)),
            tier in proptest::option::of(proptest::sample::select(&Tier::ALL[..])),
            value in value(),
        ) -> Scorecard {
            Scorecard {
                activity_decline: decline,
                activity_events,
                as_of,
                csat: Csat { csat_pct: csat.0, responses: csat.1, satisfied: csat.2 },
                customer_id: Arc::from(customer_id),
                dormant_since,
                first_seen_at: Time(first_seen_at),
                last_activity_at,
                last_seen_at,
                nps: Nps { detractors: nps.0, last: nps.1, last_at: nps.2, nps: nps.3, promoters: nps.4, responses: nps.5 },
                open_episodes,
                orders: Orders { average_order_value: orders.0, count: orders.1, first_at: orders.2, last_at: orders.3, total_amount: orders.4 },
                partition,
                reactivation_score,
                recent_activity,
                rfm: rfm.map(|(r, f, m)| Rfm { r, f, m }),
                silent_since,
                tier,
                value,
            }
        }
    }

    #[test]
    fn the_writer_writes_what_serde_json_writes() {
        // The strategy is wide: a debug build needs more stack than a test
        // thread has.
        let run = || {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(2000));
            runner.run(&card(), |card| {
                let mut ours = Vec::new();
                card.write_json(&mut ours);
                let serde = serde_json::to_vec(&card).unwrap();
                prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde));
                Ok(())
            })
        };
        let outcome = std::thread::Builder::new().stack_size(64 << 20).spawn(run).unwrap().join().unwrap();
        if let Err(e) = outcome {
            panic!("{e}");
        }
    }

    #[test]
    fn maps_come_out_in_name_order_whatever_the_order_in() {
        let m: Named<u32, 6> = [("ticket", 1), ("chat", 2), ("order", 3), ("click", 4)].into_iter().collect();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"chat":2,"click":4,"order":3,"ticket":1}"#);
        let full: Named<u32, 2> = [("b", 1), ("a", 2), ("c", 3)].into_iter().collect();
        assert_eq!(full.len(), 2, "past N entries the rest are left out");
    }
}
