//! The registry: every detector this binary has, in one table, and the
//! enabled ones compiled from a config with their supersession as bit masks.
//!
//! Adding a detector is one line in the [`detectors!`] list below: its
//! config table's name and type and its [`Entry`], both defined in the
//! detector's own file. The list makes the `[detect]` config table
//! ([`DetectConfig`]) and [`REGISTRY`]. Its order is the order detectors
//! run in: each after every detector that supersedes it (a test checks it).

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::state::codec::StateBlock;
use crate::detect::{csat_low, decline, dormancy, falling_csat, first_order, nps_detractor, purchase_churn, purchases, retention, silence, ticket_surge, tiers, Detector, DetectorId, Hooks, SignalType};

/// Makes [`DetectConfig`] and [`REGISTRY`] from one list of
/// `name: ConfigType => ENTRY`: `name` is the detector's `[detect.<name>]`
/// table, whose type has serde defaults for every key (a missing table is
/// the defaults) and a `validate` that names the first bad key.
macro_rules! detectors {
    ($($name:ident: $config:ty => $entry:expr),* $(,)?) => {
        /// The `[detect]` table: one table per detector, each defined with
        /// its defaults and validation in the detector's own file.
        #[derive(Debug, Clone, Default, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct DetectConfig {
            $(#[serde(default)] pub $name: $config,)*
        }

        impl DetectConfig {
            /// Checks every detector's keys, naming the first bad one.
            pub(crate) fn validate(&self) -> Result<(), ConfigError> {
                $(self.$name.validate()?;)*
                Ok(())
            }
        }

        /// Every detector, each after those that supersede it.
        pub const REGISTRY: [Entry; [$(stringify!($name)),*].len()] = [$($entry),*];
    };
}

detectors! {
    dormancy: dormancy::DormancyConfig => dormancy::ENTRY,
    silence: silence::SilenceConfig => silence::ENTRY,
    decline: decline::DeclineConfig => decline::ENTRY,
    first_order: first_order::FirstOrderConfig => first_order::ENTRY,
    nps_detractor: nps_detractor::NpsDetractorConfig => nps_detractor::ENTRY,
    csat_low: csat_low::CsatLowConfig => csat_low::ENTRY,
    falling_csat: falling_csat::FallingCsatConfig => falling_csat::ENTRY,
    ticket_surge: ticket_surge::TicketSurgeConfig => ticket_surge::ENTRY,
    purchases: purchases::PurchasesConfig => purchases::ENTRY,
    tiers: tiers::TiersConfig => tiers::ENTRY,
    retention: retention::RetentionConfig => retention::ENTRY,
    purchase_churn: purchase_churn::PurchaseChurnConfig => purchase_churn::ENTRY,
}

/// One detector, as the registry knows it.
#[derive(Clone, Copy)]
pub struct Entry {
    pub id: DetectorId,
    /// The detector as the config sets it up, or `None` when disabled.
    pub build: fn(&Config) -> Option<Box<dyn Detector>>,
    /// Buckets of activity it needs each customer to keep (0 for none),
    /// whether enabled or not: turning a detector off does not resize
    /// customers' windows.
    pub window_width: fn(&Config) -> usize,
    /// The signal types it emits, declared in its file.
    pub signals: &'static [SignalType],
    /// The changelog blocks of the per-customer state it keeps, whether
    /// enabled or not: a changelog written while it was on restores with
    /// it off.
    pub blocks: &'static [&'static StateBlock],
}


/// At most this many detectors can be enabled: supersession is a `u64` mask.
const MAX_ENABLED: usize = 64;

/// At most this many signal types: per-type counters are arrays of it.
pub const MAX_SIGNAL_TYPES: usize = 32;

/// Every signal type of every detector, enabled or not, in registry order
/// (alternative methods of one signal share their type): what per-type
/// counters and metric labels are indexed by.
pub fn signal_types() -> &'static [SignalType] {
    static ALL: LazyLock<Vec<SignalType>> = LazyLock::new(|| {
        let mut all: Vec<SignalType> = Vec::new();
        for t in REGISTRY.iter().flat_map(|e| e.signals) {
            if !all.contains(t) {
                all.push(*t);
            }
        }
        assert!(all.len() <= MAX_SIGNAL_TYPES, "at most {MAX_SIGNAL_TYPES} signal types");
        all
    });
    &ALL
}

/// The signal type whose payload version has `ce_type`, and that version.
pub fn signal_type_of(ce_type: &str) -> Option<(SignalType, u8)> {
    signal_types().iter().find_map(|t| t.0.versions.iter().find(|(_, name)| *name == ce_type).map(|(v, _)| (*t, *v)))
}

/// Every `ce_type` this binary can emit, with its type and version.
pub fn ce_types() -> impl Iterator<Item = (SignalType, u8, &'static str)> {
    signal_types().iter().flat_map(|t| t.0.versions.iter().map(|(v, name)| (*t, *v, *name)))
}

/// The enabled detectors in registry order, and who supersedes whom among
/// them, by index.
pub struct Enabled {
    all: Vec<Box<dyn Detector>>,
    /// The signal types the enabled detectors emit, in registry order.
    types: Vec<SignalType>,
    /// Per detector: the detectors it supersedes.
    weaker: Vec<u64>,
    /// Per detector: the detectors that supersede it.
    stronger: Vec<u64>,
    /// Per hook (`Hooks`' bits, lowest first): the detectors that have it,
    /// as a mask of indexes.
    hooks: [u64; HOOKS],
}

/// `Hooks`' bits.
const HOOKS: usize = 5;

impl fmt::Debug for Enabled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.all.iter()).finish()
    }
}

/// The detectors `cfg` enables.
pub fn enabled(cfg: &Config) -> Enabled {
    let built: Vec<(&Entry, Box<dyn Detector>)> = REGISTRY.iter().filter_map(|e| Some((e, (e.build)(cfg)?))).collect();
    let types = signal_types().iter().filter(|t| built.iter().any(|(e, _)| e.signals.contains(t))).copied().collect();
    Enabled::new(built.into_iter().map(|(_, d)| d).collect(), types)
}

/// Buckets of activity each customer keeps: the most any detector needs.
pub fn window_width(cfg: &Config) -> usize {
    REGISTRY.iter().map(|e| (e.window_width)(cfg)).max().unwrap_or(0)
}

impl Enabled {
    fn new(all: Vec<Box<dyn Detector>>, types: Vec<SignalType>) -> Enabled {
        assert!(all.len() <= MAX_ENABLED, "at most {MAX_ENABLED} detectors");
        let index = |id: &DetectorId| all.iter().position(|d| d.id() == *id);
        let weaker: Vec<u64> = all.iter().map(|d| d.supersedes().iter().filter_map(index).fold(0, |m, j| m | 1 << j)).collect();
        let stronger = (0..all.len()).map(|j| (0..all.len()).filter(|&i| weaker[i] & 1 << j != 0).fold(0, |m, i| m | 1 << i)).collect();
        let hooks = std::array::from_fn(|b| all.iter().enumerate().filter(|(_, d)| d.hooks().has(Hooks::bit(b))).fold(0, |m, (i, _)| m | 1 << i));
        Enabled { all, types, weaker, stronger, hooks }
    }

    /// The signal types the enabled detectors emit, in registry order.
    pub fn signal_types(&self) -> &[SignalType] {
        &self.types
    }

    /// The detectors, in the order they run.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Detector> {
        self.all.iter().map(AsRef::as_ref)
    }

    /// The detectors with episodes, each with its index: those that may
    /// have one open.
    pub fn with_episodes(&self) -> impl Iterator<Item = (usize, &dyn Detector)> {
        indexes(self.with(Hooks::EPISODES)).map(|i| (i, self.get(i)))
    }

    pub fn get(&self, i: usize) -> &dyn Detector {
        self.all[i].as_ref()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The detectors that have hook `h` (one of `Hooks`' constants, not a
    /// union), as a mask of indexes.
    pub fn with(&self, h: Hooks) -> u64 {
        debug_assert_eq!(h.0.count_ones(), 1, "one hook");
        self.hooks[h.0.trailing_zeros() as usize]
    }

    /// The same detectors, each called on every hook whatever it declares:
    /// what the engine's test of the declarations compares against.
    #[cfg(test)]
    pub fn calling_every_hook(mut self) -> Enabled {
        self.hooks = [(1 << self.all.len()) - 1; HOOKS];
        self
    }

    /// The detectors detector `i` supersedes, as a mask of indexes.
    pub fn weaker(&self, i: usize) -> u64 {
        self.weaker[i]
    }

    /// The detectors that supersede detector `i`, as a mask of indexes.
    pub fn stronger(&self, i: usize) -> u64 {
        self.stronger[i]
    }
}

/// The indexes set in `mask`, lowest first.
pub fn indexes(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_detector_runs_after_those_that_supersede_it() {
        let cfg = crate::test_support::with_fit("[detect.first_order]\nenabled = true\n[detect.nps_detractor]\nenabled = true\n[detect.csat_low]\nenabled = true\n[detect.falling_csat]\nenabled = true\n[detect.ticket_surge]\nenabled = true\n[detect.tiers]\nenabled = true\n");
        let all: Vec<Box<dyn Detector>> = REGISTRY.iter().filter_map(|e| (e.build)(&cfg)).collect();
        assert_eq!(all.len(), REGISTRY.len(), "every detector enabled");
        for (i, d) in all.iter().enumerate() {
            assert_eq!(d.id(), REGISTRY[i].id);
            for weaker in d.supersedes() {
                let j = all.iter().position(|w| w.id() == *weaker).unwrap_or_else(|| panic!("{weaker:?} is not registered"));
                assert!(j > i, "{:?} supersedes {weaker:?} but runs after it", d.id());
            }
        }
    }

    #[test]
    fn signal_types_have_unique_names_and_ce_types() {
        let names: Vec<&str> = signal_types().iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["dormant", "reactivated", "silence", "activity_decline", "first_order", "nps_detractor", "csat_low", "falling_csat", "ticket_surge", "tier_changed", "purchase_churn_risk"]);
        let ce: Vec<&str> = ce_types().map(|(_, _, name)| name).collect();
        let mut unique = ce.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ce.len(), "{ce:?}");
        for (t, v, name) in ce_types() {
            assert_eq!(name, format!("io.care.{}.v{v}", t.as_str()), "a ce_type names its type and version");
            assert_eq!(signal_type_of(name), Some((t, v)));
            assert_eq!(t.idx(), signal_types().iter().position(|x| *x == t).unwrap());
        }
        assert_eq!(signal_type_of("io.care.nothing.v1"), None);
        let default = enabled(&Config::parse("", "t").unwrap());
        let on: Vec<&str> = default.signal_types().iter().map(|t| t.as_str()).collect();
        assert_eq!(on, ["dormant", "reactivated", "silence", "activity_decline", "nps_detractor"]);
    }

    #[test]
    fn the_activity_chain_is_dormancy_over_silence_over_decline() {
        let e = enabled(&Config::parse("", "t").unwrap());
        let ids: Vec<&str> = e.iter().map(|d| d.id().0).collect();
        assert_eq!(ids, ["dormancy", "silence", "decline", "nps_detractor", "purchases", "retention"]);
        assert_eq!((e.weaker(0), e.weaker(1), e.weaker(2), e.weaker(3)), (0b110, 0b100, 0, 0));
        assert_eq!((e.stronger(0), e.stronger(1), e.stronger(2), e.stronger(3)), (0, 0b001, 0b011, 0), "the detractor alert stands beside the chain");
        let off = enabled(&Config::parse("[detect.silence]\nenabled = false\n", "t").unwrap());
        assert_eq!((off.weaker(0), off.stronger(1)), (0b10, 0b01), "masks follow the enabled detectors' indexes");
        assert_eq!(indexes(0b1010).collect::<Vec<_>>(), [1, 3]);
    }
}
