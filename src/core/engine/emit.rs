//! Where a decided signal goes: withheld by the outage guard, suppressed
//! before `emit_from`, or passed on to be rendered.

use super::guard;
use crate::detect::Signal;
use crate::state::codec::{Withheld, WITHHELD_KEY};
use crate::state::Customer;
use crate::tally::Tally;

/// The outage guard and where it reports, lent to [`emit`].
pub(super) struct Guarded<'a> {
    pub(super) guard: &'a mut guard::Guard,
    pub(super) anomalies: &'a mut Vec<guard::Anomaly>,
}

/// Whether a signal is to be rendered: not when the outage guard
/// withholds it or `emit_from` suppresses it, each counted. A withheld
/// episode stays silent to its end: its `resolved` is withheld too. An
/// episode opened before `emit_from` is suppressed whole: its opening was
/// (its trigger is the episode id), so is its closing, or marketing would
/// hear "resolved" of an episode it never saw open.
pub(super) fn admit(tally: &mut Tally, g: Guarded<'_>, emit_from_ms: Option<i64>, c: &mut Customer, s: &Signal) -> bool {
    let t = s.signal_type().idx();
    let bit = 1u32 << t;
    if s.signal_type().0.outage_guarded {
        let withheld = if s.opens() {
            g.guard.opening(s.trigger_ms(), g.anomalies) == guard::Decision::Withhold
        } else {
            c.detectors.get::<Withheld>(WITHHELD_KEY).is_some_and(|w| w.types & bit != 0)
        };
        if withheld {
            let w = c.detectors.get_or_insert_with(WITHHELD_KEY, Withheld::default);
            w.types = if s.opens() { w.types | bit } else { w.types & !bit };
            tally.withheld[t] += 1;
            return false;
        }
        // A withheld episode closed without a message (superseded) leaves
        // its bit: a new, sent one of the type must not inherit it.
        if let Some(w) = c.detectors.get_mut::<Withheld>(WITHHELD_KEY).filter(|_| s.opens()) {
            w.types &= !bit;
        }
    }
    if emit_from_ms.is_some_and(|from| s.episode_ms() < from) {
        tally.suppressed[t] += 1;
        return false;
    }
    tally.emitted[t] += 1;
    true
}
