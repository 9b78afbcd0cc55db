use std::path::PathBuf;

use super::*;
use crate::event::Kind;
use crate::state::codec::encode_customer;
use crate::detect::{csat_low, nps_detractor};
use crate::state::{CsatWindow, DeclineStat, Episode, TaskState};

const WIDTH: usize = 29;
const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z, bucket 20_454 of daily buckets.
const T0: i64 = 1_767_225_600_000;
const B0: i64 = 20_454;

/// `changelog-v1.bin`: written before blocks 3–5 (the sequential decline,
/// silence, event id times) existed. `changelog-v1-blocks.bin`: every
/// block, written before each detector defined its own (the block table).
/// `changelog-v1-satisfaction.bin`: the satisfaction detectors' blocks.
fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn meta() -> Meta {
    let offsets = vec![("web-events".into(), 1_234), ("orders".into(), 0)];
    Meta { stream_time_ms: Some(T0 + 40 * DAY), emit_from_ms: Some(T0 + 39 * DAY), offsets, guard: None }
}

/// Folds `per_day` events of `kind` a day over `days`, each with an event id.
fn activity(p: &mut TaskState, slot: u32, kind: Kind, days: std::ops::Range<i64>, per_day: i64) {
    let c = p.customer_mut(slot);
    for day in days {
        for i in 0..per_day {
            let ts = T0 + day * DAY + i * 3_600_000;
            // Time 0: as a changelog written before event times were kept.
            c.remember_event_id(&format!("{}-{day}-{i}", c.id), 0, 0);
            c.activity.add(B0 + day, kind);
            c.last_seen_ms[kind.idx()] = Some(ts);
            c.last_activity_ms = Some(ts);
            c.activity_events += 1;
        }
    }
}

/// The customers of the v1 fixture, built in code: what restoring the
/// checked-in file must give, and what the fixture writer encodes.
fn fixture_customers() -> TaskState {
    let mut p = TaskState::new();
    let (open, _) = p.slot_or_insert("open-decline", T0, WIDTH);
    activity(&mut p, open, Kind::Click, 0..21, 3);
    activity(&mut p, open, Kind::Login, 25..26, 1);
    p.customer_mut(open).decline = Episode::Open { episode_ms: T0 + 28 * DAY, expected: 6.75 };
    p.schedule(open, Some(T0 + 41 * DAY + 3_600_000));

    let (cool, _) = p.slot_or_insert("cooling", T0 + DAY, WIDTH);
    activity(&mut p, cool, Kind::Chat, 1..40, 2);
    let c = p.customer_mut(cool);
    c.decline = Episode::Cooldown { until: B0 + 45 };
    c.fold_lifetime(Kind::Order, T0 + 5 * DAY, Some(19.99), None, None);
    c.fold_lifetime(Kind::Ticket, T0 + 6 * DAY, None, Some(2), Some(3));
    p.schedule(cool, Some(T0 + 70 * DAY));

    let (dormant, _) = p.slot_or_insert("dormant", T0 - 300 * DAY, WIDTH);
    activity(&mut p, dormant, Kind::Login, 0..2, 1);
    p.customer_mut(dormant).dormant_since = Some(T0 + 31 * DAY);

    let (buyer, _) = p.slot_or_insert("buyer-ü", T0 + 2 * DAY, WIDTH);
    let c = p.customer_mut(buyer);
    for (day, amount, csat, nps) in [(2, 120.5, Some(5), Some(10)), (9, 0.0, None, Some(6)), (30, 75.25, Some(4), None)] {
        let ts = T0 + day * DAY;
        c.remember_event_id(&format!("order-{day}"), 0, 0);
        c.fold_lifetime(Kind::Order, ts, Some(amount), csat, nps);
        c.activity.add(B0 + day, Kind::Order);
        c.last_seen_ms[Kind::Order.idx()] = Some(ts);
    }
    p.schedule(buyer, Some(T0 + 60 * DAY));
    p.take_dirty();
    p
}

/// Customer ids in the order the fixture writes them.
const IDS: [&str; 4] = ["open-decline", "cooling", "dormant", "buyer-ü"];

/// The customers of the every-block fixture: each detector's state block
/// and the event id times, in the combinations the detectors leave.
fn every_block_customers() -> TaskState {
    let mut p = TaskState::new();
    let (open, _) = p.slot_or_insert("sequential-open", T0, WIDTH);
    activity(&mut p, open, Kind::Click, 0..30, 2);
    let c = p.customer_mut(open);
    c.decline = Episode::Open { episode_ms: T0 + 31 * DAY, expected: 0.0 };
    c.decline_stat = DeclineStat { rate: 2.125, stat: 3.5, buckets: 30, next: B0 + 32 };
    for (i, ts) in [T0 + 29 * DAY, T0 + 29 * DAY + 60_000].into_iter().enumerate() {
        c.remember_event_id(&format!("timed-{i}"), ts, T0);
    }
    p.schedule(open, Some(T0 + 33 * DAY));

    let (silent, _) = p.slot_or_insert("silent", T0 + DAY, WIDTH);
    activity(&mut p, silent, Kind::Login, 1..20, 1);
    let c = p.customer_mut(silent);
    c.decline = Episode::Cooldown { until: B0 + 50 };
    c.decline_stat = DeclineStat { rate: 0.75, stat: 0.0, buckets: 19, next: B0 + 36 };
    c.silent_since = Some(T0 + 35 * DAY + 7);
    p.schedule(silent, Some(T0 + 80 * DAY));

    let (dormant, _) = p.slot_or_insert("dormant-unset", T0 + 2 * DAY, WIDTH);
    activity(&mut p, dormant, Kind::Order, 2..3, 1);
    p.customer_mut(dormant).dormant_since = Some(T0 + 62 * DAY);
    p.take_dirty();
    p
}

const EVERY_BLOCK_IDS: [&str; 3] = ["sequential-open", "silent", "dormant-unset"];

/// The customers of the satisfaction fixture: a detractor alerted on, who
/// answered surveys besides visiting.
fn satisfaction_customers() -> TaskState {
    let mut p = TaskState::new();
    let (d, _) = p.slot_or_insert("detractor", T0, WIDTH);
    activity(&mut p, d, Kind::Chat, 0..3, 1);
    let c = p.customer_mut(d);
    for (day, csat, nps) in [(1, Some(2), Some(3)), (4, None, Some(1)), (5, Some(1), None)] {
        c.fold_lifetime(Kind::Survey, T0 + day * DAY, None, csat, nps);
    }
    c.detectors.insert(nps_detractor::ID.0, nps_detractor::Alerted { last_alert_ms: T0 + DAY });
    let w = c.detectors.get_or_insert_with(csat_low::ID.0, CsatWindow::default);
    for (day, satisfied) in [(1, false), (5, false), (40, true)] {
        w.add((T0 + day * DAY).div_euclid(15 * DAY), satisfied);
    }
    w.open_since_ms = Some(T0 + 5 * DAY);
    p.take_dirty();
    p
}

const SATISFACTION_IDS: [&str; 1] = ["detractor"];

/// The fixture's records: meta, each customer, and a customer written
/// then tombstoned.
fn fixture_records(p: &TaskState, ids: &[&str]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut records = vec![(META_KEY.to_vec(), Some(meta().encode()))];
    let gone = Customer::new("gone".into(), T0, WIDTH);
    for c in ids.iter().filter_map(|id| p.get(id)).chain([&gone]) {
        let mut v = Vec::new();
        encode_customer(c, &mut v);
        records.push((c.id.as_bytes().to_vec(), Some(v)));
    }
    records.push((b"gone".to_vec(), None));
    records
}

/// `[key len u32 LE][key][value len u32 LE, or 0xFFFFFFFF for null][value]`.
fn frame(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
    }
    out
}

fn unframe(mut bytes: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    fn take(bytes: &mut &[u8], n: usize) -> Vec<u8> {
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        head.to_vec()
    }
    let len = |b: Vec<u8>| u32::from_le_bytes(b.try_into().unwrap());
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let key_len = len(take(&mut bytes, 4));
        let key = take(&mut bytes, key_len as usize);
        let value_len = len(take(&mut bytes, 4));
        let value = (value_len != u32::MAX).then(|| take(&mut bytes, value_len as usize));
        records.push((key, value));
    }
    records
}

#[test]
#[ignore = "writes the fixture: run once per new state version, then check the file in"]
fn write_changelog_fixture() {
    std::fs::create_dir_all(fixture_path("").parent().unwrap()).unwrap();
    std::fs::write(fixture_path("changelog-v1.bin"), frame(&fixture_records(&fixture_customers(), &IDS))).unwrap();
}

#[test]
#[ignore = "writes the fixture: run once per new state block or version, then check the file in"]
fn write_every_block_fixture() {
    let records = fixture_records(&every_block_customers(), &EVERY_BLOCK_IDS);
    std::fs::write(fixture_path("changelog-v1-blocks.bin"), frame(&records)).unwrap();
}

#[test]
#[ignore = "writes the fixture: run once per new satisfaction block or version, then check the file in"]
fn write_satisfaction_fixture() {
    let records = fixture_records(&satisfaction_customers(), &SATISFACTION_IDS);
    std::fs::write(fixture_path("changelog-v1-satisfaction.bin"), frame(&records)).unwrap();
}

#[test]
fn the_satisfaction_fixture_restores_to_the_customers_built_in_code() {
    let want = satisfaction_customers();
    assert!(want.get("detractor").is_some_and(|c| nps_detractor::last_alert_ms(c).is_some() && c.nps.detractors == 2 && csat_low::window(c).is_some_and(|w| w.totals() == (3, 1))));
    assert_fixture_restores("changelog-v1-satisfaction.bin", &want, &SATISFACTION_IDS);
}

#[test]
fn the_v1_fixture_restores_to_the_customers_built_in_code() {
    assert_fixture_restores("changelog-v1.bin", &fixture_customers(), &IDS);
}

#[test]
fn the_every_block_fixture_restores_to_the_customers_built_in_code() {
    let want = every_block_customers();
    assert!(want.get("sequential-open").is_some_and(|c| c.decline_stat != DeclineStat::default() && c.timer_at().is_some()));
    assert_fixture_restores("changelog-v1-blocks.bin", &want, &EVERY_BLOCK_IDS);
}

fn assert_fixture_restores(name: &str, want: &TaskState, ids: &[&str]) {
    let bytes = std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixtures/{name} is checked in: {e}"));
    let mut restored = TaskState::new();
    let mut metas = Vec::new();
    for (key, value) in unframe(&bytes) {
        match decode_record(&key, value.as_deref(), WIDTH) {
            Ok(Record::Meta(m)) => metas.push(m),
            Ok(Record::Customer(c)) => restored.restore(c),
            Ok(Record::Tombstone(id)) => _ = restored.remove(&id),
            Err(e) => panic!("{}: {e}", String::from_utf8_lossy(&key)),
        }
    }
    assert_eq!(metas, [meta()]);
    for &id in ids {
        assert_eq!(restored.get(id), want.get(id), "{id}");
    }
    assert_eq!((restored.len(), restored.timer_count()), (want.len(), want.timer_count()));
    assert!(restored.get("gone").is_none(), "tombstoned");
    assert!(restored.take_dirty().is_empty(), "restoring writes nothing back");
}

/// [`meta`] with the history of a guard tripped by a clickstream stopping
/// on day 40.
fn meta_with_guard() -> Meta {
    use crate::engine::guard::{Guard, GuardParams};
    let mut g = Guard::new(GuardParams { factor: 10.0, min_openings: 50, activity: crate::event::KindSet::ALL });
    let mut out = Vec::new();
    for d in 0..40 {
        (0..100).for_each(|i| g.event(Kind::Click, T0 + d * DAY + i, &mut out));
    }
    (0..60).for_each(|i| _ = g.opening(T0 + 40 * DAY + DAY / 2 + i, &mut out));
    assert!(g.is_tripped() && out.len() == 1, "{out:?}");
    Meta { guard: g.history(), ..meta() }
}

#[test]
#[ignore = "writes the fixture: run once per new meta format, then check the file in"]
fn write_meta_v2_fixture() {
    std::fs::write(fixture_path("changelog-meta-v2.bin"), frame(&[(META_KEY.to_vec(), Some(meta_with_guard().encode()))])).unwrap();
}

/// `changelog-meta-v2.bin`: a meta record of format 2, with the history of
/// a guard tripped on its day 40. Later binaries must read it as written.
#[test]
fn the_meta_v2_fixture_restores_a_tripped_guard() {
    let bytes = std::fs::read(fixture_path("changelog-meta-v2.bin")).expect("fixtures/changelog-meta-v2.bin is checked in");
    let records = unframe(&bytes);
    let (key, value) = &records[0];
    let Ok(Record::Meta(m)) = decode_record(key, value.as_deref(), WIDTH) else { panic!("a meta record") };
    assert_eq!(Meta { guard: None, ..m.clone() }, meta());
    assert_eq!(m.encode(), *value.as_ref().unwrap(), "read as written");
    let mut g = crate::engine::guard::Guard::new(crate::engine::guard::GuardParams { factor: 10.0, min_openings: 50, activity: crate::event::KindSet::ALL });
    g.restore(m.guard);
    assert!(g.is_tripped());
}

#[test]
fn meta_round_trips_and_refuses_newer_formats() {
    for m in [meta(), Meta::default(), meta_with_guard()] {
        assert_eq!(Meta::decode(&m.encode()), Ok(m));
    }
    assert_eq!(meta().encode()[0], 1, "without a guard history, the format an older binary reads");
    let mut newer = meta_with_guard().encode();
    assert_eq!(newer[0], META_FORMAT);
    newer[0] = 3;
    let err = Meta::decode(&newer).unwrap_err();
    assert_eq!(err.to_string(), "changelog meta format 3 is newer than this binary supports (2): upgrade care");
    let mut history_in_v1 = meta_with_guard().encode();
    history_in_v1[0] = 1;
    assert_eq!(Meta::decode(&history_in_v1).map_err(|e| e.code()), Err("corrupt"), "format 1 never held a history");
    for full in [meta().encode(), meta_with_guard().encode()] {
        for len in 0..full.len() {
            assert!(Meta::decode(&full[..len]).is_err(), "{len}");
        }
    }
    let mut huge_count = vec![META_FORMAT, 0];
    put_varint(&mut huge_count, u64::MAX >> 1);
    assert_eq!(Meta::decode(&huge_count).map_err(|e| e.code()), Err("truncated"));
}

proptest::proptest! {
    #[test]
    fn arbitrary_records_never_panic(key in bytes(140), value in proptest::option::of(bytes(120))) {
        let _ = decode_record(&key, value.as_deref(), WIDTH);
        let _ = decode_record(META_KEY, value.as_deref(), WIDTH);
    }
}

fn bytes(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..max)
}

#[test]
fn keys_are_the_meta_key_or_a_customer_id() {
    let m = meta().encode();
    assert_eq!(decode_record(META_KEY, Some(&m), WIDTH), Ok(Record::Meta(meta())));
    assert_eq!(decode_record(b"c-1", None, WIDTH), Ok(Record::Tombstone("c-1".into())));
    let mut v = Vec::new();
    let c = Customer::new("c-1".into(), T0, WIDTH);
    encode_customer(&c, &mut v);
    assert_eq!(decode_record(b"c-1", Some(&v), WIDTH), Ok(Record::Customer(c)));
    let long = [b'x'; MAX_CUSTOMER_ID_BYTES + 1];
    for bad in [&b""[..], b"\xff\xfe", &long] {
        assert_eq!(decode_record(bad, None, WIDTH).map_err(|e| e.code()), Err("bad_key"));
    }
    assert_eq!(decode_record(META_KEY, None, WIDTH).map_err(|e| e.code()), Err("corrupt"));
    assert!(std::str::from_utf8(std::hint::black_box(META_KEY)).is_err(), "no customer id can be the meta key");
}
