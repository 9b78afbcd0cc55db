//! The outage guard through the real broker: `care run` over a clickstream
//! topic and an orders topic. (a) The clickstream stops for ten days of
//! event time while orders flow: no customer alert comes of it (the
//! outage's openings come days in, after a whole day without clicks, and
//! the first trips the guard), one anomaly record trips and one clears on
//! the anomalies topic (keyed by task id), nothing follows the return, and
//! a customer who really declines after it gets their alert; with 400
//! customers and with 120 (a task whose outage opens fewer a day than the
//! openings-first floor of 50). (b) Every source stops and idle advance
//! carries stream time to the wall clock: no customer alert, one anomaly
//! record; then the sources come back (ahead of the wall clock, which
//! `max_future_skew_secs` allows here), it clears and a real decline after
//! the return is alerted. (c) As (a), care SIGKILLed after the trip and
//! restored from its changelog: it goes on withholding and clears once
//! (restored without the guard's history, it never cleared). The quiet is
//! event time, never a sleep: the records are produced at once and the
//! merge by event time (or idle advance) walks through the gap.

mod common;

use std::time::Duration;

use common::*;

/// Steady customers: 3 clicks a day and an order a week each. Five days
/// into an outage the declines of those without an order since (2 in 7)
/// would open on one day (about 114; 34 with 120 customers): the clicks
/// of the day before stalled, so the first trips the guard and is
/// withheld, and from then on the outage's buckets are no evidence, so
/// the rest never open. (Before a stall was evidence enough, the first 50
/// were sent, the openings-first floor; with 120 customers, 34 the first
/// day and 50 the next.)
const CUSTOMERS: usize = 400;

/// A record to produce: (topic, key, value).
type Record = (String, Option<String>, Vec<u8>);

fn record(customer: &str, kind: &str, ts: i64) -> Vec<u8> {
    let extra = if kind == "order" { r#","total":20"# } else { "" };
    format!(r#"{{"user":{{"id":"{customer}"}},"type":"{kind}","sent_at":{ts}{extra}}}"#).into_bytes()
}

/// The settings a test changes.
#[derive(Clone, Copy)]
struct Knobs {
    idle_advance_secs: u64,
    max_future_skew_secs: u64,
    max_task_idle_ms: u64,
}

/// The defaults: no idle advance, records at most 5 min ahead of the wall
/// clock, no wait for an empty partition.
const DEFAULTS: Knobs = Knobs { idle_advance_secs: 0, max_future_skew_secs: 300, max_task_idle_ms: 0 };

/// `care run` over `clicks` and `orders`, anomalies on `anomalies`.
fn config(clicks: &str, orders: &str, out: &[String; 3], anomalies: &str, group: &str, port: u16, k: Knobs) -> String {
    let source = |name: &str, topic: &str| {
        format!(
            "[[sources]]\nname = \"{name}\"\ntopic = \"{topic}\"\ntimestamp_format = \"epoch_millis\"\nfields = {{ customer_id = \"/user/id\", ts = \"/sent_at\", amount = \"/total\" }}\nkind = {{ field = \"/type\" }}\n"
        )
    };
    format!(
        "[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\nsession_timeout_ms = 6000\ncommit_interval_ms = 100\ninstance_heartbeat_ms = 100\nmax_task_idle_ms = {max_task_idle_ms}\n\n\
         [engine]\nemit_from = \"2000-01-01T00:00:00Z\"\nidle_advance_secs = {idle_advance_secs}\nmax_future_skew_secs = {max_future_skew_secs}\n\n\
         [outputs]\nalerts = \"{a}\"\nreactivation = \"{r}\"\ndlq = \"{d}\"\nanomalies = \"{anomalies}\"\npartitions = 1\n\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n\n{}\n{}",
        source("clicks", clicks),
        source("orders", orders),
        brokers = brokers(),
        a = out[0],
        r = out[1],
        d = out[2],
        idle_advance_secs = k.idle_advance_secs,
        max_future_skew_secs = k.max_future_skew_secs,
        max_task_idle_ms = k.max_task_idle_ms,
    )
}

/// Days `days` of `customers` steady customers from `t0`: clicks (to
/// `clicks`) unless `quiet` says the day's clickstream is out, orders (to
/// `orders`) a week apart; c000 stops clicking from day `decline_from`.
fn population(customers: usize, t0: i64, days: std::ops::Range<i64>, quiet: impl Fn(i64) -> bool, decline_from: i64, clicks: &str, orders: &str) -> Vec<Record> {
    timed_population(customers, t0, days, quiet, decline_from, clicks, orders).into_iter().map(|(_, r)| r).collect()
}

/// [`population`]'s records with their event times.
fn timed_population(customers: usize, t0: i64, days: std::ops::Range<i64>, quiet: impl Fn(i64) -> bool, decline_from: i64, clicks: &str, orders: &str) -> Vec<(i64, Record)> {
    let mut recs: Vec<(i64, String, Vec<u8>)> = Vec::new();
    for d in days {
        for c in 0..customers {
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
    async fn new(topics: [&str; 2], knobs: Knobs) -> Setup {
        let (outs, anomalies) = (outputs(), unique("anomalies"));
        create_topics(&topics, 1).await;
        let cfg = write_config(&config(topics[0], topics[1], &outs, &anomalies, &unique("care"), free_port(), knobs));
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
async fn run(records: Vec<Record>, topics: [&str; 2], done: impl Fn(&Run) -> bool) -> Run {
    let setup = Setup::new(topics, DEFAULTS).await;
    produce(&records);
    let care = setup.start();
    let got = setup.wait(done);
    assert!(care.terminate(Duration::from_secs(30)).success());
    got
}

/// Whether c000, who stops clicking on day `from`, got a decline for it.
fn decliner_alerted(r: &Run, t0: i64, from: i64) -> bool {
    openings(&r.alerts, t0).iter().any(|(c, t, d)| c == "c000" && t.contains("activity_decline") && *d >= from)
}

/// Checks what care published over an outage that ended: one record trips
/// it on a day of `outage`, one clears it; no customer but c000 (who stops
/// clicking on day `decline_from`, after the return) was alerted, and c000
/// got that decline. Returns the day it tripped.
fn assert_no_alert_and_one_episode(got: &Run, t0: i64, outage: std::ops::Range<i64>, kinds: serde_json::Value, decline_from: i64) -> i64 {
    let a: Vec<serde_json::Value> = got.anomalies.iter().map(Got::json).collect();
    assert_eq!(a.len(), 2, "one record trips, one clears: {a:?}");
    assert_eq!((a[0]["status"].as_str(), a[1]["status"].as_str()), (Some("opened"), Some("resolved")), "{a:?}");
    assert_eq!(a[0]["episode_started_at"], a[1]["episode_started_at"], "one episode: {a:?}");
    assert_eq!(a[0]["kinds_affected"], kinds);
    assert!(got.anomalies.iter().all(|g| g.key == "0_0" && g.json()["task"] == "0_0"), "keyed by task id");
    let tripped_on = day_of(&got.anomalies[0], t0);
    assert!(outage.contains(&tripped_on), "tripped in the outage, on day {tripped_on}");
    assert!(a[1]["openings_withheld"].as_u64().unwrap() >= 1, "{}", a[1]);
    let opened = openings(&got.alerts, t0);
    // What the outage caused: nothing, before the trip, on its day or
    // after the return; the decliner's alert after the return is sent.
    let steady: Vec<_> = opened.iter().filter(|(c, _, _)| c != "c000").collect();
    assert!(steady.is_empty(), "steady customers' openings: {steady:?}");
    assert!(decliner_alerted(got, t0, decline_from), "the customer who declines after the return is alerted: {opened:?}");
    assert!(opened.iter().all(|(c, _, d)| c != "c000" || *d >= decline_from), "{opened:?}");
    tripped_on
}

/// The clickstream of `customers` out on days 40-49 while orders flow.
async fn clickstream_outage(customers: usize) {
    use common::T0;
    let (clicks, orders) = (unique("clicks"), unique("orders"));
    // 40 days of history (the guard judges from day 35), clicks out on days
    // 40-49, back for 25 days; c000 stops clicking on day 58.
    let records = population(customers, T0, 0..75, |d| (40..50).contains(&d), 58, &clicks, &orders);
    let got = run(records, [&clicks, &orders], |r| r.anomalies.len() >= 2 && decliner_alerted(r, T0, 58)).await;
    let tripped_on = assert_no_alert_and_one_episode(&got, T0, 40..50, serde_json::json!(["click"]), 58);
    eprintln!("{customers} customers: tripped on day {tripped_on}, {} withheld", got.anomalies[1].json()["openings_withheld"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clickstream_stopping_while_orders_flow_sends_no_alert_and_a_real_decline_after_it_is_alerted() {
    clickstream_outage(CUSTOMERS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_tasks_outage_opening_fewer_than_the_floor_a_day_sends_no_alert() {
    clickstream_outage(120).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_source_stopping_with_idle_advance_on_sends_no_alert_and_alerts_resume_when_they_return() {
    // Forty days of history ending ten days before the wall clock: after
    // one idle second, stream time jumps to now minus the lateness and the
    // customers' silence and decline deadlines of those ten days come due.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let t0 = now.div_euclid(DAY) * DAY - 50 * DAY;
    let (clicks, orders) = (unique("clicks"), unique("orders"));
    // The return is from tomorrow on: ahead of the wall clock by up to 26
    // days. Produced while care runs, its two topics are fetched a little
    // apart: a caught-up, empty partition holds the task back 2 s, so the
    // merge by event time does not run one topic ahead of the other.
    let knobs = Knobs { idle_advance_secs: 1, max_future_skew_secs: 30 * 86_400, max_task_idle_ms: 2000 };
    let setup = Setup::new([&clicks, &orders], knobs).await;
    produce(&population(CUSTOMERS, t0, 0..40, |_| false, i64::MAX, &clicks, &orders));
    let care = setup.start();
    let tripped = setup.wait(|r| !r.anomalies.is_empty());
    let a: Vec<serde_json::Value> = tripped.anomalies.iter().map(Got::json).collect();
    assert_eq!(a.len(), 1, "one record: tripped, and nothing has come back to clear it: {a:?}");
    assert_eq!(a[0]["status"], "opened");
    assert_eq!(a[0]["kinds_affected"], serde_json::json!(["click", "order"]));
    assert!(openings(&tripped.alerts, t0).is_empty(), "no customer alert: {:?}", openings(&tripped.alerts, t0));
    // The sources come back from tomorrow (today's records would be late
    // behind the advanced stream time); c000 stops clicking on day 59.
    produce(&population(CUSTOMERS, t0, 51..76, |_| false, 59, &clicks, &orders));
    let got = setup.wait(|r| r.anomalies.len() >= 2 && decliner_alerted(r, t0, 59));
    assert!(care.terminate(Duration::from_secs(30)).success());
    let tripped_on = assert_no_alert_and_one_episode(&got, t0, 40..51, serde_json::json!(["click", "order"]), 59);
    eprintln!("idle advance: tripped on day {tripped_on}, {} withheld", got.anomalies[1].json()["openings_withheld"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_care_killed_mid_outage_restores_the_guard_and_goes_on_withholding() {
    use common::T0;
    let (clicks, orders) = (unique("clicks"), unique("orders"));
    let records = timed_population(CUSTOMERS, T0, 0..75, |d| (40..50).contains(&d), 58, &clicks, &orders);
    // Up to day 46: the guard trips on day 45; SIGKILL once that is
    // committed, then the rest, to a care restored from its changelog.
    let (first, rest): (Vec<_>, Vec<_>) = records.into_iter().partition(|(ts, _)| *ts < T0 + 47 * DAY);
    let setup = Setup::new([&clicks, &orders], DEFAULTS).await;
    produce(&first.into_iter().map(|(_, r)| r).collect::<Vec<_>>());
    let care = setup.start();
    let before = setup.wait(|r| !r.anomalies.is_empty());
    assert_eq!(before.anomalies.len(), 1, "tripped before the kill");
    care.kill9();
    produce(&rest.into_iter().map(|(_, r)| r).collect::<Vec<_>>());
    let care = setup.start();
    let got = setup.wait(|r| r.anomalies.len() >= 2 && decliner_alerted(r, T0, 58));
    assert!(care.terminate(Duration::from_secs(30)).success());
    // The trip before the kill, the clear after it, nothing twice, one
    // episode across the restart, and no customer alerted for the outage.
    assert_no_alert_and_one_episode(&got, T0, 40..50, serde_json::json!(["click"]), 58);
}
