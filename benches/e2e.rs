//! End to end through a real broker: what `care run` costs beside a bare
//! consumer, in one run, as ratios.
//!
//! 1. A topic of 4 partitions is filled once with canonical JSON events
//!    (`care demo`'s line format) for `CARE_BENCH_CUSTOMERS` customers
//!    (default 1,000,000), 1–3 events each over 60 days, keyed by customer
//!    id and sorted by event time.
//! 2. `bare`: an rdkafka `BaseConsumer` with care's fetch settings
//!    (read_committed, defaults otherwise) reads every record and touches
//!    its payload. The baseline.
//! 3. `at_least_once` and `exactly_once` (the default 100 ms commit
//!    interval, and `exactly_once 1s` with 1 s): the release `care run`
//!    binary, a fresh consumer group each, from start until the group has
//!    committed every input offset. Every output is published (emit_from
//!    far back).
//! 4. Changelog bytes per input event: the changelog partitions' size on
//!    the broker's disk (lz4 batches, before any compaction) after the
//!    exactly-once run, divided by the input events.
//! 5. Restore: a new `care run` of the exactly-once group restores every
//!    customer from the changelog; timed from process start until `/readyz`
//!    is 200 (so it includes start-up, joining the group and the input
//!    check), with care's own `care_restore_seconds` beside it. The
//!    baseline is a bare consumer reading the same changelog partitions.
//!
//! Run: `cargo bench --bench e2e` (starts `deploy/local/kafka.sh` if
//! `CARE_TEST_BROKERS` is not set). Measured, never asserted.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use care::apps::demo::write_event_line;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;
const DAY_MS: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z, as in `care demo`.
const START_MS: i64 = 1_767_225_600_000;

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let customers: u32 = std::env::var("CARE_BENCH_CUSTOMERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let input = unique("bench-in");
    rt.block_on(create_topics(&[&input], PARTITIONS));
    let t = Instant::now();
    let events = fill(&input, customers);
    println!("input: {events} events for {customers} customers on {PARTITIONS} partitions, produced in {:.1} s", t.elapsed().as_secs_f64());

    let (read, bare) = read_all(&input);
    assert_eq!(read, events);
    report("bare consumer", events, bare, bare);
    let alo = run_care(&input, "at_least_once", 100, events);
    report("care at_least_once", events, alo.elapsed, bare);
    let eos_1s = run_care(&input, "exactly_once", 1000, events);
    report("care exactly_once 1s", events, eos_1s.elapsed, bare);
    let eos = run_care(&input, "exactly_once", 100, events);
    report("care exactly_once", events, eos.elapsed, bare);

    let changelog = format!("{}-care-changelog", eos.group);
    match changelog_disk_bytes(&changelog) {
        Some(bytes) => println!("changelog: {bytes} bytes on disk, {:.1} bytes per input event", bytes as f64 / events as f64),
        None => println!("changelog: broker data dir not found (set CARE_KAFKA_DATA); size not measured"),
    }
    restore(&eos, &changelog);
}

/// Produces the input; returns the number of events.
fn fill(topic: &str, customers: u32) -> u64 {
    let mut rng = StdRng::seed_from_u64(7);
    let mut lines: Vec<(i64, u32, String)> = Vec::new();
    for id in 0..customers {
        for _ in 0..rng.random_range(1..=3) {
            let ts = START_MS + rng.random_range(0..60 * DAY_MS);
            let mut line = String::with_capacity(112);
            write_event_line(&mut rng, &mut line, id, ts, 40.0, id % 10 == 0);
            lines.push((ts, id, line));
        }
    }
    lines.sort_unstable_by_key(|(ts, id, _)| (*ts, *id));
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "50")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for (_, id, line) in &lines {
        let key = format!("cust-{id:07}");
        let mut r = BaseRecord::<String, String>::to(topic).key(&key).payload(line);
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
    lines.len() as u64
}

/// A bare consumer with care's fetch settings reads every partition of
/// `topic` to its end; returns the records read and the time taken.
fn read_all(topic: &str) -> (u64, Duration) {
    let started = Instant::now();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("bench-bare"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let (mut n, mut bytes, mut ended) = (0u64, 0usize, 0);
    while ended < PARTITIONS {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                bytes += m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
                n += 1;
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => ended += 1,
            _ => {}
        }
    }
    std::hint::black_box(bytes);
    (n, started.elapsed())
}

struct Run {
    group: String,
    cfg: std::path::PathBuf,
    elapsed: Duration,
}

/// `care run` with `delivery` and a commit every `commit_interval_ms` over the input, from start until every input
/// offset is committed; then stopped cleanly.
fn run_care(input: &str, delivery: &str, commit_interval_ms: u32, events: u64) -> Run {
    let group = unique("bench-care");
    let cfg = write_config(&care_config(input, &group, delivery, commit_interval_ms));
    let started = Instant::now();
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap(), "--instance-id", "bench"]);
    while committed_total(&group, input, PARTITIONS) < events as i64 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed();
    assert!(care.terminate(Duration::from_secs(60)).success());
    Run { group, cfg, elapsed }
}

fn care_config(input: &str, group: &str, delivery: &str, commit_interval_ms: u32) -> String {
    let outs = outputs();
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
delivery = "{delivery}"
commit_interval_ms = {commit_interval_ms}

[engine]
emit_from = "2000-01-01T00:00:00Z"
idle_advance_secs = 0

[outputs]
alerts = "{a}"
reactivation = "{r}"
dlq = "{d}"
partitions = {PARTITIONS}

[http]
listen = "127.0.0.1:{port}"

[[sources]]
name = "events"
topic = "{input}"
timestamp_format = "epoch_millis"
fields = {{ customer_id = "/customer_id", ts = "/ts", event_id = "/event_id", amount = "/amount", csat = "/csat", nps = "/nps" }}
kind = {{ field = "/kind" }}
"#,
        brokers = brokers(),
        port = free_port(),
        a = outs[0],
        r = outs[1],
        d = outs[2],
    )
}

fn report(what: &str, events: u64, took: Duration, bare: Duration) {
    let secs = took.as_secs_f64();
    println!("{what:>20}: {secs:7.2} s  {:>9.0} events/s  {:5.2}x bare", events as f64 / secs, secs / bare.as_secs_f64());
    let _ = std::io::stdout().flush();
}

/// Bytes of `topic`'s partition directories in the local broker's log dir.
fn changelog_disk_bytes(topic: &str) -> Option<u64> {
    let data = std::env::var("CARE_KAFKA_DATA").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/kafka").into());
    let dirs = std::fs::read_dir(std::path::Path::new(&data).join("kraft")).ok()?;
    let mut total = 0;
    let mut found = false;
    for d in dirs.flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        if name.rsplit_once('-').is_some_and(|(t, p)| t == topic && p.parse::<u32>().is_ok()) {
            found = true;
            for f in std::fs::read_dir(d.path()).ok()?.flatten() {
                if f.file_name().to_string_lossy().ends_with(".log") {
                    total += f.metadata().ok()?.len();
                }
            }
        }
    }
    found.then_some(total)
}

/// A fresh `care run` of the exactly-once group restores every task; beside
/// it, a bare consumer reads the same changelog.
fn restore(eos: &Run, changelog: &str) {
    let (records, bare) = read_all(changelog);
    let port = std::fs::read_to_string(&eos.cfg).unwrap().lines().find_map(|l| l.strip_prefix("listen = \"127.0.0.1:")?.strip_suffix('"')?.parse::<u16>().ok()).unwrap();
    let started = Instant::now();
    let care = CareProcess::start(&["run", "--config", eos.cfg.to_str().unwrap(), "--instance-id", "bench"]);
    while http_get(port, "/readyz").0 != 200 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed();
    let metrics = http_get(port, "/metrics").1;
    let restore_secs: f64 = metrics.lines().find_map(|l| l.strip_prefix("care_restore_seconds_sum ")?.parse().ok()).unwrap_or(f64::NAN);
    let customers: f64 = metrics.lines().find_map(|l| l.strip_prefix("care_customers ")?.parse().ok()).unwrap_or(f64::NAN);
    assert!(care.terminate(Duration::from_secs(60)).success());
    println!("restore: {records} changelog records, {customers} customers");
    println!("{:>20}: {:7.2} s  {:>9.0} records/s", "bare changelog read", bare.as_secs_f64(), records as f64 / bare.as_secs_f64());
    let secs = ready.as_secs_f64();
    println!("{:>20}: {secs:7.2} s  {:>9.0} customers/s  {:5.2}x bare  (process start to ready)", "care restore", customers / secs, secs / bare.as_secs_f64());
    println!("{:>20}: {restore_secs:7.2} s  (care_restore_seconds summed over tasks, which restore interleaved)", "");
}
