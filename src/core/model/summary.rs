//! The purchase-day summary of Fader, Hardie & Lee (2005) as lifetimes
//! builds it (`summary_data_from_transaction_data`): a customer's orders are
//! grouped per calendar day in the configured timezone, a day's orders being
//! one transaction worth their sum.
//!
//! - frequency x = purchase days − 1 (repeat purchase days);
//! - recency t_x = last − first purchase day;
//! - T = calibration end − first purchase day (whole days);
//! - monetary value = mean value of the repeat days (the first excluded).
//!
//! [`PurchaseDays`] holds five numbers per customer and folds orders one at
//! a time, so the stream can keep it as part of customer state; the
//! summary at any calibration end is derived from it.

use super::TimeUnit;

/// A customer's purchase days, folded order by order. Days are day numbers
/// in the configured timezone (see [`crate::time::Buckets`] with one-day
/// buckets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PurchaseDays {
    pub first_day: i64,
    pub last_day: i64,
    /// Distinct days with at least one order.
    pub days: u32,
    /// Value of the first purchase day (excluded from the monetary value,
    /// kept for the historic average order value).
    pub first_value: f64,
    /// Sum of the values of every later purchase day.
    pub repeat_value: f64,
}

/// What folding an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// The order opened a new purchase day.
    NewDay,
    /// The order added to a purchase day already counted.
    SameDay,
    /// The order falls strictly between the first and last purchase days
    /// and is not on either: without a list of days it cannot be told
    /// whether it opens a new one, so it was not folded. Batch callers sort
    /// orders by day first and never see it.
    Unordered,
}

impl PurchaseDays {
    /// The first order of a customer.
    pub fn new(day: i64, amount: f64) -> PurchaseDays {
        PurchaseDays { first_day: day, last_day: day, days: 1, first_value: amount, repeat_value: 0.0 }
    }

    /// Folds one order of `amount` on `day`. Orders on or after the last
    /// purchase day, on the first day, or before the first day fold exactly.
    pub fn add(&mut self, day: i64, amount: f64) -> Folded {
        if day == self.first_day {
            self.first_value += amount;
            Folded::SameDay
        } else if day == self.last_day {
            self.repeat_value += amount;
            Folded::SameDay
        } else if day > self.last_day {
            self.last_day = day;
            self.days += 1;
            self.repeat_value += amount;
            Folded::NewDay
        } else if day < self.first_day {
            // The old first day becomes a repeat day.
            self.repeat_value += self.first_value;
            self.first_value = amount;
            self.first_day = day;
            self.days += 1;
            Folded::NewDay
        } else {
            Folded::Unordered
        }
    }

    /// Total value of every purchase day.
    pub fn total_value(&self) -> f64 {
        self.first_value + self.repeat_value
    }

    /// The summary at the end of `calibration_end_day` (inclusive), in
    /// `unit`. The caller folds only orders up to that day.
    pub fn summary(&self, calibration_end_day: i64, unit: TimeUnit) -> Summary {
        let x = self.days.saturating_sub(1);
        let days_f = |d: i64| unit.of_days(d as f64);
        Summary {
            frequency: x,
            recency: days_f(self.last_day - self.first_day),
            t: days_f((calibration_end_day - self.first_day).max(0)),
            monetary_value: if x > 0 { self.repeat_value / f64::from(x) } else { 0.0 },
        }
    }
}

/// One customer's figures at the calibration end, as the models read them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// x: repeat purchase days.
    pub frequency: u32,
    /// t_x: first to last purchase day, in the time unit.
    pub recency: f64,
    /// T: first purchase day to the calibration end, in the time unit.
    pub t: f64,
    /// Mean value of the repeat purchase days; 0 without repeats.
    pub monetary_value: f64,
}

/// Folds one customer's orders `(day, amount)` given in any order: sorts
/// them by day, then folds. `None` without orders.
pub fn purchase_days(orders: &mut [(i64, f64)]) -> Option<PurchaseDays> {
    orders.sort_unstable_by_key(|o| o.0);
    let (&(d0, a0), rest) = orders.split_first()?;
    let mut p = PurchaseDays::new(d0, a0);
    for &(d, a) in rest {
        p.add(d, a);
    }
    Some(p)
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
