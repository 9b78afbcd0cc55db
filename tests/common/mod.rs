//! Helpers for tests against the real local Kafka broker.
//!
//! The broker comes from `deploy/local/kafka.sh start` (or
//! `CARE_TEST_BROKERS` when the caller already started one). A test that
//! needs Kafka and cannot get it fails loudly; it never skips.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer, DefaultProducerContext};
use rdkafka::TopicPartitionList;
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Bootstrap address of the test broker, starting it once if needed.
pub fn brokers() -> String {
    static BROKERS: OnceLock<String> = OnceLock::new();
    BROKERS
        .get_or_init(|| {
            if let Ok(b) = std::env::var("CARE_TEST_BROKERS") {
                return b;
            }
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/local/kafka.sh");
            let out = Command::new("bash").arg(script).arg("start").stderr(Stdio::inherit()).output()
                .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
            assert!(out.status.success(), "this test needs Kafka and `{script} start` failed (see its output above)");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .clone()
}

/// A name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

pub async fn create_topics(names: &[&str], partitions: i32) {
    create_topics_with(names, partitions, &[]).await;
}

/// Creates topics with topic-level settings, e.g. `("max.message.bytes", "12000000")`.
pub async fn create_topics_with(names: &[&str], partitions: i32, settings: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| settings.iter().fold(NewTopic::new(n, partitions, TopicReplication::Fixed(1)), |t, (k, v)| t.set(k, v)))
        .collect();
    for r in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
    // Creation returns before every broker's metadata shows the topics (a
    // care started at once on a fresh broker said "does not exist"): wait.
    let visible = || {
        let md = admin.inner().fetch_metadata(None, Duration::from_secs(5));
        md.is_ok_and(|md| names.iter().all(|n| md.topics().iter().any(|t| t.name() == *n && t.error().is_none() && t.partitions().len() == partitions as usize)))
    };
    assert!(tokio::task::block_in_place(|| wait_for(Duration::from_secs(30), visible)), "topics {names:?} never showed in metadata");
}

/// A topic's setting as the broker reports it, e.g. `cleanup.policy`.
pub async fn topic_setting(topic: &str, key: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new()).await.unwrap();
    let resource = described.into_iter().next()?.ok()?;
    resource.get(key).and_then(|e| e.value.clone())
}

/// Produces (topic, key, value) records and waits for every acknowledgement.
/// Keyed records go where the Java clients' murmur2 partitioner puts them,
/// as care routes them in `replay`.
pub fn produce(records: &[(String, Option<String>, Vec<u8>)]) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("message.max.bytes", "16000000")
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    for (topic, key, value) in records {
        let mut r = BaseRecord::<String, Vec<u8>>::to(topic).payload(value);
        if let Some(k) = key {
            r = r.key(k);
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Got {
    pub topic: String,
    pub partition: i32,
    /// The key as text ("" when null); `raw_key` tells null from empty.
    pub key: String,
    pub raw_key: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub value: Vec<u8>,
    /// The record's timestamp (ms), as the broker stored it.
    pub timestamp: Option<i64>,
}

impl Got {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).unwrap()
    }
}

/// Reads `topics` from the beginning (read_committed) until `want` records
/// arrived or `timeout` passed; returns what arrived.
pub fn consume(topics: &[&str], want: usize, timeout: Duration) -> Vec<Got> {
    consume_isolated(topics, want, timeout, "read_committed")
}

/// Like [`consume`], with `isolation` `read_committed` or `read_uncommitted`.
pub fn consume_isolated(topics: &[&str], want: usize, timeout: Duration, isolation: &str) -> Vec<Got> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(topics).unwrap();
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let headers = m.headers().map_or_else(Vec::new, |h| {
                h.iter().map(|Header { key, value }| (key.to_string(), String::from_utf8_lossy(value.unwrap_or_default()).into_owned())).collect()
            });
            got.push(Got {
                topic: m.topic().to_string(),
                partition: m.partition(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                raw_key: m.key().map(<[u8]>::to_vec),
                headers,
                value: m.payload().unwrap_or_default().to_vec(),
                timestamp: m.timestamp().to_millis(),
            });
        }
    }
    got
}

/// Committed offset of `group` on partition 0 of `topic`.
pub fn committed(group: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let r = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    r.elements()[0].offset().to_raw().unwrap_or(-1)
}

/// A free loopback port for the HTTP endpoint.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET over plain HTTP/1.0; returns (status, body), status 0 while
/// nothing listens yet.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http_get_with(port, path, "")
}

/// [`http_get`] with extra header lines, e.g. `"Authorization: Bearer t\r\n"`.
pub fn http_get_with(port: u16, path: &str, headers: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, "not listening".into()) };
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{headers}\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Waits until `f` returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// The `care` binary, started with `args`; killed on drop if still running.
/// A captured stderr is read from the start, on a thread, so a chatty
/// process never blocks on a full pipe.
pub struct CareProcess(pub Child, Option<std::thread::JoinHandle<String>>);

impl CareProcess {
    pub fn start(args: &[&str]) -> CareProcess {
        Self::start_with(args, &[])
    }

    /// Starts care with extra environment variables (e.g. `CARE_FAULT`).
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> CareProcess {
        Self::spawn(args, env, Stdio::inherit())
    }

    /// Starts care with its stderr kept for [`CareProcess::exit_with_stderr`].
    pub fn start_capturing(args: &[&str]) -> CareProcess {
        Self::spawn(args, &[], Stdio::piped())
    }

    /// [`CareProcess::start_capturing`] with extra environment variables
    /// (`CARE_LOG` among them overrides the test's log level).
    pub fn start_capturing_with(args: &[&str], env: &[(&str, &str)]) -> CareProcess {
        Self::spawn(args, env, Stdio::piped())
    }

    fn spawn(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> CareProcess {
        let log = std::env::var("CARE_TEST_LOG").unwrap_or_else(|_| "info".into());
        let care_env = std::env::vars().filter(|(k, _)| k.starts_with("CARE_"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_care")).args(args).envs(care_env).env("CARE_LOG", log).envs(env.iter().copied()).stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
        let reader = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut s = Vec::new();
                let _ = std::io::Read::read_to_end(&mut pipe, &mut s);
                String::from_utf8_lossy(&s).into_owned()
            })
        });
        CareProcess(child, reader)
    }

    /// Waits for a process started with [`CareProcess::start_capturing`]
    /// to exit by itself; returns its status and what it wrote to stderr.
    pub fn exit_with_stderr(mut self, deadline: Duration) -> (std::process::ExitStatus, String) {
        let reader = self.1.take().expect("started with start_capturing");
        let status = self.wait_exit(deadline);
        (status, reader.join().unwrap())
    }

    /// Sends SIGTERM to a process started with
    /// [`CareProcess::start_capturing`]; returns its exit status and stderr.
    pub fn terminate_with_stderr(self, deadline: Duration) -> (std::process::ExitStatus, String) {
        Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status().unwrap();
        self.exit_with_stderr(deadline)
    }

    /// Sends SIGTERM and waits up to `deadline` for a clean exit.
    pub fn terminate(mut self, deadline: Duration) -> std::process::ExitStatus {
        Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status().unwrap();
        self.exit_within(deadline, "of SIGTERM")
    }

    /// SIGKILL: no shutdown, flush or commit runs.
    pub fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits for the process to exit by itself (a crash point).
    pub fn wait_exit(mut self, deadline: Duration) -> std::process::ExitStatus {
        self.exit_within(deadline, "by itself")
    }

    /// Its exit status once it exits; fails the test after `deadline`.
    fn exit_within(&mut self, deadline: Duration, why: &str) -> std::process::ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < until, "care did not exit within {deadline:?} {why}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for CareProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub const DAY: i64 = 86_400_000;
/// 2025-01-01T00:00:00Z: history, so nothing is rejected as future.
pub const T0: i64 = 1_735_689_600_000;

/// A seeded population on 3 partitions: steady customers, customers who
/// stop (decline, then dormancy) and customers who stop and come back
/// (reactivated); orders with fractional amounts; and malformed records
/// with null keys. Returns (key, raw value) in production order.
pub fn stream(seed: u64) -> Vec<(Option<String>, Vec<u8>)> {
    stream_of(seed, 36, 1)
}

/// [`stream`] with `customers` customers and `bad` copies of each of the
/// four malformed records (three dead letters and one skipped type).
pub fn stream_of(seed: u64, customers: usize, bad: usize) -> Vec<(Option<String>, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events: Vec<(i64, Option<String>, Vec<u8>)> = Vec::new();
    for c in 0..customers {
        let id = format!("cust-{c:02}");
        let (stop, back) = match c % 3 {
            0 => (999, 999),
            1 => (rng.random_range(30..45), 999),
            _ => (rng.random_range(25..35), rng.random_range(100..115)),
        };
        let rate = rng.random_range(2..6);
        for d in 0..130 {
            if d >= stop && d < back {
                continue;
            }
            for _ in 0..rate {
                let ts = T0 + d * DAY + rng.random_range(0..DAY);
                let v = if rng.random_range(0..10) == 0 {
                    format!(r#"{{"user":{{"id":"{id}"}},"type":"order","sent_at":{ts},"total":{:.2}}}"#, rng.random_range(5.0..300.0))
                } else {
                    format!(r#"{{"user":{{"id":"{id}"}},"type":"click","sent_at":{ts}}}"#)
                };
                events.push((ts, Some(id.clone()), v.into_bytes()));
            }
        }
    }
    // Three dead letters and one skipped record (a type the source does not map).
    let malformed = ["{not json", r#"{"user":{"id":"x"},"type":"scroll","sent_at":1735689600000}"#, "[1,2,3]", r#"{"user":{"id":"x"},"type":"click","sent_at":"yesterday"}"#];
    for copy in 0..bad {
        for (i, m) in malformed.iter().enumerate() {
            events.push((T0 + (i as i64 + 1) * 20 * DAY + copy as i64 * 3_600_000, None, m.as_bytes().to_vec()));
        }
    }
    events.sort_by_key(|(t, _, _)| *t);
    events.into_iter().map(|(_, k, v)| (k, v)).collect()
}

/// One output record as bytes: (topic, key, headers, value).
pub type Rec = (String, Option<Vec<u8>>, Vec<(String, Vec<u8>)>, Vec<u8>);

#[derive(Deserialize)]
struct Line {
    topic: String,
    key: Option<String>,
    headers: Vec<(String, String)>,
    value: Option<Box<RawValue>>,
    value_b64: Option<String>,
}

pub fn from_line(l: &str) -> Rec {
    let line: Line = serde_json::from_str(l).unwrap_or_else(|e| panic!("bad replay line {l}: {e}"));
    let value = match (line.value, line.value_b64) {
        (Some(raw), None) => raw.get().as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        other => panic!("exactly one of value and value_b64 expected: {other:?}"),
    };
    (line.topic, line.key.map(String::into_bytes), line.headers.into_iter().map(|(k, v)| (k, v.into_bytes())).collect(), value)
}

pub fn from_kafka(g: &Got) -> Rec {
    (g.topic.clone(), g.raw_key.clone(), g.headers.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect(), g.value.clone())
}

/// Signals per (topic, key) in emission order; dead letters as a sorted
/// list without their origin partition and offset (a file has neither).
pub fn arrange(recs: Vec<Rec>, dlq: &str) -> (BTreeMap<(String, Option<Vec<u8>>), Vec<Rec>>, Vec<Rec>) {
    let (mut signals, mut dead) = (BTreeMap::<_, Vec<Rec>>::new(), Vec::new());
    for mut r in recs {
        if r.0 == dlq {
            r.2.retain(|(k, _)| !matches!(k.as_str(), "care_source_partition" | "care_source_offset" | "__connect.errors.partition" | "__connect.errors.offset"));
            dead.push(r);
        } else {
            signals.entry((r.0.clone(), r.1.clone())).or_default().push(r);
        }
    }
    dead.sort();
    (signals, dead)
}


/// A `care run` config: one source `web` (nested JSON, epoch millis),
/// outputs `out`, emit everything, no idle advance; `engine_extra` adds
/// lines to `[engine]`.
pub fn config(source: &str, out: &[String; 3], group: &str, port: u16, engine_extra: &str) -> String {
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
session_timeout_ms = 6000
commit_interval_ms = 100
instance_heartbeat_ms = 100

[engine]
emit_from = "2000-01-01T00:00:00Z"
idle_advance_secs = 0
{engine_extra}

[outputs]
alerts = "{a}"
reactivation = "{r}"
dlq = "{d}"
profiles = "{a}-profiles"
anomalies = "{a}-anomalies"
partitions = 2

[http]
listen = "127.0.0.1:{port}"

[[sources]]
name = "web"
topic = "{source}"
timestamp_format = "epoch_millis"
fields = {{ customer_id = "/user/id", ts = "/sent_at", amount = "/total" }}
kind = {{ field = "/type" }}
"#,
        brokers = brokers(),
        a = out[0],
        r = out[1],
        d = out[2],
    )
}

/// The profiles topic of a [`config`] with outputs `out`.
pub fn profiles_topic(out: &[String; 3]) -> String {
    format!("{}-profiles", out[0])
}

/// The anomalies topic of a [`config`] with outputs `out`: its own, so a
/// test comparing every output sees the outage guard's records too.
pub fn anomalies_topic(out: &[String; 3]) -> String {
    format!("{}-anomalies", out[0])
}

pub fn outputs() -> [String; 3] {
    [unique("alerts"), unique("reactivation"), unique("dlq")]
}

pub fn write_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("care-config")));
    std::fs::write(&path, text).unwrap();
    path
}


/// Runs `care replay` over the raw values of `recs` with source `web`
/// routed to `partitions` partitions: what an uninterrupted run publishes.
pub fn replay_records(cfg: &std::path::Path, recs: &[(Option<String>, Vec<u8>)], partitions: i32) -> Vec<Rec> {
    replay_with(cfg, recs, partitions, &[])
}

/// Like [`replay_records`], with more `care replay` flags.
pub fn replay_with(cfg: &std::path::Path, recs: &[(Option<String>, Vec<u8>)], partitions: i32, extra: &[&str]) -> Vec<Rec> {
    let input = std::env::temp_dir().join(format!("{}.jsonl", unique("input")));
    let mut text = Vec::new();
    for (_, v) in recs {
        text.extend_from_slice(v);
        text.push(b'\n');
    }
    std::fs::write(&input, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_care"))
        .args(["replay", "--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap(), "--source", "web", "--partitions", &partitions.to_string()])
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(from_line).collect()
}

/// Sum of the committed offsets of `group` over `partitions` partitions of `topic`.
pub fn committed_total(group: &str, topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    // A coordinator still loading (a broker just started) answers with an
    // error: report nothing committed yet and let the caller poll again.
    match c.committed_offsets(tpl, Duration::from_secs(10)) {
        Ok(r) => r.elements().iter().map(|e| e.offset().to_raw().unwrap_or(-1).max(0)).sum(),
        Err(_) => -1,
    }
}

/// Asserts two runs' records are the same, per key in order, dead letters as a set.
pub fn assert_same_records(got: Vec<Rec>, want: Vec<Rec>, dlq: &str) {
    let (want_signals, want_dead) = arrange(want, dlq);
    let (got_signals, got_dead) = arrange(got, dlq);
    assert_eq!(got_signals.keys().collect::<Vec<_>>(), want_signals.keys().collect::<Vec<_>>());
    for (k, want) in &want_signals {
        assert!(got_signals[k] == *want, "records for {:?} differ:\nrun:    {:?}\nreplay: {want:?}", k, got_signals[k]);
    }
    assert!(got_dead == want_dead, "dead letters differ:\nrun:    {got_dead:?}\nreplay: {want_dead:?}");
}
