//! One live process per instance id.
//!
//! Kafka lets the newest holder of a `transactional.id` or a
//! `group.instance.id` win: a process started with a live one's id fences
//! the live one. A copy-pasted id, or two processes on one host that both
//! default to the host name, would silently kill a healthy process. Care
//! makes the newcomer lose instead.
//!
//! Every running process announces its id on `<group_id>-care-instances`
//! every `kafka.instance_heartbeat_ms`, and writes a tombstone when it
//! stops. Before it registers its transactional id, a starting process
//! reads the tail of that topic. If its id's last record is a tombstone, or
//! there is none, the id is free. If it is an announcement, its holder is
//! either alive or died without a word (kill -9); the newcomer watches for
//! two heartbeat periods (the longer of its own and the holder's) plus a
//! second. Two new announcements from one holder mean it is alive, and the
//! newcomer exits naming the id. (One is not enough: a process killed a
//! moment ago may have had one in flight.)
//!
//! The announcement also carries the partitions the process holds and its
//! HTTP address, which the other instances read (see [`crate::shell::peers`]).
//!
//! Two processes that start within the same window both see the id free;
//! the later one then fences the earlier, which exits with Kafka's fencing
//! error.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use care_core::config::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::shell::admin::client_config;
use crate::shell::clock::wall_clock_ms;
use crate::shell::health::TaskStatus;
use crate::shell::peers::Peers;

/// How far back the start-up check reads: announcements of every instance
/// of the group, so this covers `TAIL / instances` seconds at the default
/// heartbeat, far more than the two periods that matter.
const TAIL: i64 = 20_000;
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A running process's claim on its instance id; announces it until dropped,
/// then writes the tombstone that frees the id at once.
pub struct Claim {
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Vec<JoinHandle<()>>,
    /// Who holds which partition, from every instance's announcements.
    pub peers: Peers,
}

/// What this process announces besides its id: the address its HTTP
/// answers at, and (read at each heartbeat) the partitions it holds.
pub struct Announce {
    pub http: Option<String>,
    pub status: TaskStatus,
}

/// Checks that no live process holds this config's instance id, then
/// starts announcing it and reading the others' announcements. Blocks for
/// two heartbeat periods plus a second when the id's last holder did not
/// stop cleanly.
///
/// # Errors
/// A live process holds the id, or the instances topic cannot be read.
pub fn claim(cfg: &Config, me: Announce) -> anyhow::Result<Claim> {
    let id = cfg.kafka.instance_id.clone().unwrap_or_else(|| "care".into());
    let topic = cfg.kafka.instances_topic();
    let heartbeat = Duration::from_millis(u64::from(cfg.kafka.instance_heartbeat_ms));
    let start = match live_holder(cfg, &topic, &id, heartbeat)? {
        Checked::Held(holder) => bail!(
            "instance id {id:?} is in use by a live process ({holder}); every process of group {:?} needs its own \
             --instance-id (CARE_INSTANCE_ID, kafka.instance_id)",
            cfg.kafka.group_id
        ),
        Checked::Free { start } => start,
    };
    // Its fetches wait up to half a second: a quiet topic costs the broker
    // two requests a second per instance, not the check's twenty.
    let follower = reader(cfg, 500)?;
    let producer: ThreadedProducer<DefaultProducerContext> =
        client_config(cfg).set("linger.ms", "0").create().context("cannot create the instance announcer")?;
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let peers = Peers::default();
    let (stopping, announce_topic) = (Arc::clone(&stop), topic.clone());
    let started = wall_clock_ms();
    let nonce = nonce();
    let announcer = std::thread::Builder::new()
        .name("care-announce".into())
        .spawn(move || {
            let value = || announcement(&id, heartbeat, started, nonce, &me);
            announce(&producer, &announce_topic, &id, &value, heartbeat, &stopping)
        })
        .context("cannot start the instance announcer")?;
    let (stopping, directory) = (Arc::clone(&stop), Arc::clone(&peers));
    let following = std::thread::Builder::new()
        .name("care-peers".into())
        .spawn(move || {
            let stopped = || *stopping.0.lock().unwrap_or_else(|p| p.into_inner());
            crate::shell::peers::follow(&follower, &topic, start, &directory, &stopped)
        })
        .context("cannot start the announcement reader")?;
    Ok(Claim { stop, threads: vec![announcer, following], peers })
}

impl Drop for Claim {
    fn drop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Sends the announcement every `heartbeat` until stopped, then the tombstone.
fn announce(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, id: &str, value: &dyn Fn() -> String, heartbeat: Duration, stop: &(Mutex<bool>, Condvar)) {
    let mut stopped = stop.0.lock().unwrap_or_else(|p| p.into_inner());
    while !*stopped {
        // A full queue or an unreachable broker only delays the next one.
        let _ = producer.send(BaseRecord::<str, str>::to(topic).partition(0).key(id).payload(&value()));
        stopped = stop.1.wait_timeout(stopped, heartbeat).unwrap_or_else(|p| p.into_inner()).0;
    }
    drop(stopped);
    let _ = producer.send(BaseRecord::<str, str>::to(topic).partition(0).key(id));
    let _ = producer.flush(Duration::from_secs(2));
}

/// Who this process is, for the error a duplicate sees (the random nonce
/// tells two holders of one id apart), and what it holds now, for the
/// other instances' directories.
fn announcement(id: &str, heartbeat: Duration, started_ms: i64, nonce: u64, me: &Announce) -> String {
    let mut partitions: Vec<i32> = me.status.tasks.iter().map(|e| e.key().partition).collect();
    partitions.sort_unstable();
    serde_json::json!({
        "instance_id": id,
        "heartbeat_ms": heartbeat.as_millis() as u64,
        "host": host_name(),
        "pid": std::process::id(),
        "started_ms": started_ms,
        "nonce": nonce,
        "partitions": partitions,
        "http": me.http,
    })
    .to_string()
}

/// The host name (the pod name in Kubernetes), the default instance id.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "care".into())
}

/// A random number (std seeds each `RandomState` from the OS).
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// A reader of the instances topic that never joins the group; its
/// fetches wait at most `fetch_wait_ms` for new records.
fn reader(cfg: &Config, fetch_wait_ms: u32) -> anyhow::Result<BaseConsumer> {
    client_config(cfg)
        .set("group.id", format!("{}-instances", cfg.kafka.group_id)) // never joins: assign() only
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        // Retention may delete the start offset between the two calls.
        .set("auto.offset.reset", "earliest")
        .create()
        .context("cannot create a reader of the instances topic")
}

/// What the start-up check found.
enum Checked {
    /// A live process holds the id: it, described.
    Held(String),
    /// The id is free; the other instances' announcements are followed
    /// from `start`, the tail the check read.
    Free { start: i64 },
}

/// The live holder of `id`, described, if there is one.
fn live_holder(cfg: &Config, topic: &str, id: &str, heartbeat: Duration) -> anyhow::Result<Checked> {
    let consumer = reader(cfg, 50)?;
    let (low, high) = consumer.fetch_watermarks(topic, 0, READ_TIMEOUT).with_context(|| format!("cannot read the end of {topic:?}"))?;
    let start = low.max(high - TAIL);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    if start >= high {
        return Ok(Checked::Free { start }); // never announced, or not for an hour
    }
    let mut last = None;
    read_until(&consumer, READ_TIMEOUT, |offset, key, value| {
        if key == id.as_bytes() {
            last = value.map(<[u8]>::to_vec);
        }
        offset + 1 >= high
    })
    .with_context(|| format!("reading the recent announcements on {topic:?}"))?;
    let Some(last) = last else { return Ok(Checked::Free { start }) };
    // The last holder did not stop cleanly: alive, or killed. Watch for two
    // of its heartbeats (it may announce less often than this process).
    let theirs = serde_json::from_slice::<serde_json::Value>(&last).ok().and_then(|v| v["heartbeat_ms"].as_u64()).map_or(heartbeat, Duration::from_millis);
    let watch = heartbeat.max(theirs) * 2 + Duration::from_secs(1);
    tracing::info!(instance_id = id, watch_secs = watch.as_secs_f64(), "The last holder of this instance id did not stop cleanly: watching for its heartbeats before taking the id over");
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut alive = None;
    read_until(&consumer, watch, |_, key, value| {
        if key != id.as_bytes() {
            return false;
        }
        let Some(v) = value else { return true }; // stopped: free
        // By nonce: a holder's announcements change as its partitions do.
        let n = seen.entry(nonce_of(v)).or_default();
        *n += 1;
        if *n >= 2 {
            alive = Some(String::from_utf8_lossy(v).into_owned());
        }
        alive.is_some()
    })
    .or_else(|e| if e.is::<Timeout>() { Ok(()) } else { Err(e) })?;
    // The follower reads the tail again: the directory sees what the check skipped.
    Ok(alive.map_or(Checked::Free { start }, Checked::Held))
}

/// What tells one holder of an id from another: its announcement's nonce
/// (the whole value for one that has none).
fn nonce_of(v: &[u8]) -> Vec<u8> {
    serde_json::from_slice::<serde_json::Value>(v).ok().and_then(|j| j.get("nonce").map(|n| n.to_string().into_bytes())).unwrap_or_else(|| v.to_vec())
}

#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct Timeout;

/// Feeds records to `f(offset, key, value)` until it returns true, or fails
/// with [`Timeout`] after `limit`.
fn read_until(consumer: &BaseConsumer, limit: Duration, mut f: impl FnMut(i64, &[u8], Option<&[u8]>) -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match consumer.poll(left.min(Duration::from_millis(100))) {
            Some(Ok(m)) => {
                if f(m.offset(), m.key().unwrap_or_default(), m.payload()) {
                    return Ok(());
                }
            }
            Some(Err(e)) => return Err(e).context("reading the instances topic"),
            None => {}
        }
    }
    Err(Timeout.into())
}
