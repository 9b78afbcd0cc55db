//! The holdout check lifetimes users draw by hand: purchases predicted for
//! the period after the calibration against those made, by
//! calibration-period frequency, and the mean absolute error per customer.

use serde::Serialize;

/// Calibration frequencies shown one by one; this and above are pooled.
pub const POOLED_FROM: u32 = 7;

/// One frequency group's means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// "0" … "6", "7+".
    pub frequency: String,
    pub customers: u64,
    pub actual: f64,
    pub predicted: f64,
}

/// The validation section of `care fit --holdout-end`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    pub by_frequency: Vec<Row>,
    /// Mean |actual − predicted| purchases per customer.
    pub mean_absolute_error: f64,
    pub actual_total: f64,
    pub predicted_total: f64,
}

/// Folds customers' (calibration frequency, predicted, actual holdout
/// purchase days) into the validation table.
#[derive(Debug, Clone, Default)]
pub struct Holdout {
    groups: [(u64, f64, f64); POOLED_FROM as usize + 1],
    abs_error: f64,
}

impl Holdout {
    pub fn add(&mut self, frequency: u32, predicted: f64, actual: u32) {
        let g = &mut self.groups[frequency.min(POOLED_FROM) as usize];
        g.0 += 1;
        g.1 += f64::from(actual);
        g.2 += predicted;
        self.abs_error += (f64::from(actual) - predicted).abs();
    }

    pub fn finish(&self) -> Validation {
        let customers: u64 = self.groups.iter().map(|g| g.0).sum();
        let by_frequency = self
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.0 > 0)
            .map(|(i, g)| Row {
                frequency: if i == POOLED_FROM as usize { format!("{POOLED_FROM}+") } else { i.to_string() },
                customers: g.0,
                actual: g.1 / g.0 as f64,
                predicted: g.2 / g.0 as f64,
            })
            .collect();
        Validation {
            by_frequency,
            mean_absolute_error: if customers > 0 { self.abs_error / customers as f64 } else { 0.0 },
            actual_total: self.groups.iter().map(|g| g.1).sum(),
            predicted_total: self.groups.iter().map(|g| g.2).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_error() {
        let mut h = Holdout::default();
        h.add(0, 0.5, 1);
        h.add(0, 0.5, 0);
        h.add(9, 4.0, 2);
        let v = h.finish();
        assert_eq!(v.by_frequency.len(), 2);
        assert_eq!(v.by_frequency[0], Row { frequency: "0".into(), customers: 2, actual: 0.5, predicted: 0.5 });
        assert_eq!(v.by_frequency[1], Row { frequency: "7+".into(), customers: 1, actual: 2.0, predicted: 4.0 });
        assert!((v.mean_absolute_error - 1.0).abs() < 1e-12, "(0.5 + 0.5 + 2) / 3");
        assert_eq!((v.actual_total, v.predicted_total), (3.0, 5.0));
    }
}
