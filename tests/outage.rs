//! The outage guard through the real broker: `care run` over a clickstream
//! topic and an orders topic. (a) The clickstream stops for ten days of
//! event time while orders flow: the openings it causes stop at the guard's
//! floor on the day it trips, one anomaly record trips and one clears on
//! the anomalies topic (keyed by task id), nothing follows the return, and
//! a customer who really declines after it gets their alert. (b) Every
//! source stops and idle advance carries stream time to the wall clock:
//! the same floor, one anomaly record. (c) As (a), care SIGKILLed after the
//! trip and restored from its changelog: it goes on withholding and clears
//! once (restored without the guard's history, it never cleared). The
//! quiet is event time, never a sleep: the records are produced at once and
//! the merge by event time (or idle advance) walks through the gap.

mod common;

use std::time::Duration;

use common::*;

/// Steady customers: 3 clicks a day and an order a week each. Five days
/// into an outage the declines of those without an order since (2 in 7)
/// open on one day, past the floor of 50: the first 50 are sent, the 51st
/// trips the guard, and from then on the outage's buckets are no evidence,
/// so the rest never open. (With 120 customers, 34 opened the first day,
/// under the floor and sent, and 50 more the next before it tripped: the
/// floor holds a day, and a task opening fewer a day than it is not held.)
const CUSTOMERS: usize = 400;
/// The guard's floor of openings a day (`engine.outage_guard_min_openings`).
const FLOOR: usize = 50;

/// A record to produce: (topic, key, value).
type Record = (String, Option<String>, Vec<u8>);

fn record(customer: &str, kind: &str, ts: i64) -> Vec<u8> {
    let extra = if kind == "order" { r#","total":20"# } else { "" };
    format!(r#"{{"user":{{"id":"{customer}"}},"type":"{kind}","sent_at":{ts}{extra}}}"#).into_bytes()
}

/// `care run` over `clicks` and `orders`, anomalies on `anomalies`.
fn config(clicks: &str, orders: &str, out: &[String; 3], anomalies: &str, group: &str, port: u16, idle_advance_secs: u64) -> String {
    let source = |name: &str, topic: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\ntopic = \"{topic}\"\ntimestamp_format = \"epoch_millis\"\nfields = {{ customer_id = \"/user/id\", ts = \"/sent_at\", amount = \"/total\" }}\nkind = {{ field = \"/type\" }}\n"
        )
    };
    format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\nsession_timeout_ms = 6000\ncommit_interval_ms = 100\ninstance_heartbeat_ms = 100\n\n\
         [engine]\nemit_from = \"2000-01-01T00:00:00Z\"\nidle_advance_secs = {idle_advance_secs}\n\n\
         [outputs]\nalerts = \"{a}\"\nreactivation = \"{r}\"\ndlq = \"{d}\"\nanomalies = \"{anomalies}\"\npartitions = 1\n\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n\n{}\n{}",
        source("clicks", clicks),
        source("orders", orders),
        brokers = brokers(),
        a = out[0],
        r = out[1],
        d = out[2],
    )
}

/// Days `days` of the steady customers from `t0`: clicks (to `clicks`)
/// unless `quiet` says the day's clickstream is out, orders (to `orders`)
/// a week apart; `decliner` stops clicking from day `decline_from`.
fn population(t0: i64, days: std::ops::Range<i64>, quiet: impl Fn(i64) -> bool, decline_from: i64, clicks: &str, orders: &str) -> Vec<Record> {
    timed_population(t0, days, quiet, decline_from, clicks, orders).into_iter().map(|(_, r)| r).collect()
}

/// [`population`]'s records with their event times.
fn timed_population(t0: i64, days: std::ops::Range<i64>, quiet: impl Fn(i64) -> bool, decline_from: i64, clicks: &str, orders: &str) -> Vec<(i64, Record)> {
    let mut recs: Vec<(i64, String, Vec<u8>)> = Vec::new();
    for d in days {
        for c in 0..CUSTOMERS {
            let id = format!("c{c:03}");
            let at = |minute: usize| t0 + d * DAY + (minute as i64 * 60_000);
            let declined = c == 0 && d >= decline_from;
            if !(quiet(d) || declined) {
                recs.extend((0..3).map(|h| (at(c + h * 400), clicks.to_string(), record(&id, "click", at(c + h * 400)))));
            }
            if (d + c as i64) % 7 == 0 {
                recs.push((at(c + 1300), orders.to_string(), record(&id, "order", at(c + 1300))));
            }
        }
    }
    recs.sort_by_key(|r| r.0);
    recs.into_iter().map(|(ts, topic, v)| (ts, (topic, None, v))).collect()
}

/// The decline and silence `opened` alerts, as (customer, type, trigger day).
fn openings(alerts: &[Got], t0: i64) -> Vec<(String, String, i64)> {
    alerts
        .iter()
        .filter(|g| g.json()["status"] == "opened")
        .map(|g| {
            (g.key.clone(), g.header("ce_type").unwrap_or_default().to_string(), day_of(g, t0))
        })
        .filter(|(_, t, _)| t.contains("activity_decline") || t.contains("silence"))
        .collect()
}

/// The day from `t0` a record's `ce_time` (its trigger) falls on.
fn day_of(g: &Got, t0: i64) -> i64 {
    let t = chrono::DateTime::parse_from_rfc3339(g.header("ce_time").unwrap_or_default()).map_or(0, |t| t.timestamp_millis());
    (t - t0).div_euclid(DAY)
}

struct Run {
    alerts: Vec<Got>,
    anomalies: Vec<Got>,
}

/// A care run's topics and config.
struct Setup {
    outs: [String; 3],
    anomalies: String,
    cfg: std::path::PathBuf,
}

impl Setup {
    async fn new(topics: [&str; 2], idle_advance_secs: u64) -> Setup {
        let (outs, anomalies) = (outputs(), unique("anomalies"));
        create_topics(&topics, 1).await;
        let cfg = write_config(&config(topics[0], topics[1], &outs, &anomalies, &unique("care"), free_port(), idle_advance_secs));
        Setup { outs, anomalies, cfg }
    }

    fn start(&self) -> CareProcess {
        CareProcess::start(&["run", "--config", self.cfg.to_str().unwrap()])
    }

    /// What care published (read_committed), once `done` holds of it or
    /// 60 s passed, with the time of one more read for whatever else it
    /// would publish.
    fn wait(&self, done: impl Fn(&Run) -> bool) -> Run {
        let read = || Run { alerts: consume(&[&self.outs[0]], usize::MAX, Duration::from_secs(3)), anomalies: consume(&[&self.anomalies], usize::MAX, Duration::from_secs(2)) };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done(&read()) && std::time::Instant::now() < deadline {}
        read()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cfg);
    }
}

/// Starts care over the records, waits until `done` holds of what it
/// published (or 60 s), stops it.
async fn run(records: Vec<Record>, idle_advance_secs: u64, topics: [&str; 2], done: impl Fn(&Run) -> bool) -> Run {
    let setup = Setup::new(topics, idle_advance_secs).await;
    produce(&records);
    let care = setup.start();
    let got = setup.wait(done);
    assert!(care.terminate(Duration::from_secs(30)).success());
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clickstream_stopping_while_orders_flow_trips_the_guard_once_and_a_real_decline_after_it_is_alerted() {
    use common::T0;
    let (clicks, orders) = (unique("clicks"), unique("orders"));
    // 40 days of history (the guard judges from day 35), clicks out on days
    // 40-49, back for 25 days; c000 stops clicking on day 58.
    let records = population(T0, 0..75, |d| (40..50).contains(&d), 58, &clicks, &orders);
    let decliner_alerted = |r: &Run| openings(&r.alerts, T0).iter().any(|(c, t, d)| c == "c000" && t.contains("activity_decline") && *d >= 58);
    let got = run(records, 0, [&clicks, &orders], |r| r.anomalies.len() >= 2 && decliner_alerted(r)).await;

    let a: Vec<serde_json::Value> = got.anomalies.iter().map(Got::json).collect();
    assert_eq!(a.len(), 2, "one record trips, one clears: {a:?}");
    assert_eq!((a[0]["status"].as_str(), a[1]["status"].as_str()), (Some("opened"), Some("resolved")), "{a:?}");
    assert_eq!(a[0]["kinds_affected"], serde_json::json!(["click"]));
    assert!(got.anomalies.iter().all(|g| g.key == "0_0" && g.json()["task"] == "0_0"), "keyed by task id");
    let tripped_on = day_of(&got.anomalies[0], T0);
    assert!((40..50).contains(&tripped_on), "tripped in the outage, on day {tripped_on}");
    assert!(a[1]["openings_withheld"].as_u64().unwrap() >= 1, "{}", a[1]);

    let opened = openings(&got.alerts, T0);
    // What the outage caused: at most the floor, on the day it tripped
    // (the openings of that day before the line was passed); nothing
    // before it, nothing after the return but the decliner's alert.
    let steady: Vec<_> = opened.iter().filter(|(c, _, _)| c != "c000").collect();
    assert!(steady.len() <= FLOOR && steady.iter().all(|(_, _, d)| *d == tripped_on), "steady customers' openings: {steady:?}");
    assert!(decliner_alerted(&got), "the customer who declines after the return is alerted: {opened:?}");
    assert!(opened.iter().filter(|(c, _, d)| c == "c000" && *d < 58).count() <= 1, "{opened:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_source_stopping_with_idle_advance_on_trips_the_guard_once() {
    // Forty days of history ending ten days before the wall clock: after
    // one idle second, stream time jumps to now minus the lateness and the
    // customers' silence and decline deadlines of those ten days come due.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let t0 = now.div_euclid(DAY) * DAY - 50 * DAY;
    let (clicks, orders) = (unique("clicks"), unique("orders"));
    let records = population(t0, 0..40, |_| false, i64::MAX, &clicks, &orders);
    let got = run(records, 1, [&clicks, &orders], |r| !r.anomalies.is_empty() && openings(&r.alerts, t0).len() >= FLOOR).await;

    let a: Vec<serde_json::Value> = got.anomalies.iter().map(Got::json).collect();
    assert_eq!(a.len(), 1, "one record: tripped, and nothing comes back to clear it: {a:?}");
    assert_eq!(a[0]["status"], "opened");
    assert_eq!(a[0]["kinds_affected"], serde_json::json!(["click", "order"]));
    assert_eq!(got.anomalies[0].key, "0_0");
    let tripped_on = day_of(&got.anomalies[0], t0);
    let opened = openings(&got.alerts, t0);
    assert!(opened.len() <= FLOOR && opened.iter().all(|(_, _, d)| *d == tripped_on), "at most the floor, on the day it tripped: {opened:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_care_killed_mid_outage_restores_the_guard_and_goes_on_withholding() {
    use common::T0;
    let (clicks, orders) = (unique("clicks"), unique("orders"));
    let records = timed_population(T0, 0..75, |d| (40..50).contains(&d), 58, &clicks, &orders);
    // Up to day 46: the guard trips on day 45; SIGKILL once that is
    // committed, then the rest, to a care restored from its changelog.
    let (first, rest): (Vec<_>, Vec<_>) = records.into_iter().partition(|(ts, _)| *ts < T0 + 47 * DAY);
    let setup = Setup::new([&clicks, &orders], 0).await;
    produce(&first.into_iter().map(|(_, r)| r).collect::<Vec<_>>());
    let care = setup.start();
    let before = setup.wait(|r| !r.anomalies.is_empty());
    assert_eq!(before.anomalies.len(), 1, "tripped before the kill");
    care.kill9();
    produce(&rest.into_iter().map(|(_, r)| r).collect::<Vec<_>>());
    let care = setup.start();
    let decliner_alerted = |r: &Run| openings(&r.alerts, T0).iter().any(|(c, t, d)| c == "c000" && t.contains("activity_decline") && *d >= 58);
    let got = setup.wait(|r| r.anomalies.len() >= 2 && decliner_alerted(r));
    assert!(care.terminate(Duration::from_secs(30)).success());

    let a: Vec<serde_json::Value> = got.anomalies.iter().map(Got::json).collect();
    assert_eq!(a.len(), 2, "the trip before the kill, the clear after it, nothing twice: {a:?}");
    assert_eq!((a[0]["status"].as_str(), a[1]["status"].as_str()), (Some("opened"), Some("resolved")));
    assert_eq!(a[0]["episode_started_at"], a[1]["episode_started_at"], "one episode across the restart");
    let opened = openings(&got.alerts, T0);
    let steady: Vec<_> = opened.iter().filter(|(c, _, _)| c != "c000").collect();
    let tripped_on = day_of(&got.anomalies[0], T0);
    assert!(steady.len() <= FLOOR && steady.iter().all(|(_, _, d)| *d == tripped_on), "steady customers' openings: {steady:?}");
    assert!(decliner_alerted(&got), "{opened:?}");
}
