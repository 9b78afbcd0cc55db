//! Who holds which partition. Every instance announces, with its heartbeat
//! on the instances topic, the input partitions it is assigned and the
//! address its HTTP answers at; each instance reads the others'
//! announcements into a [`Directory`], so a customer look-up that lands on
//! the wrong instance answers with the one to ask.
//!
//! An announcement counts while it is fresh: younger (by its record's
//! timestamp) than three of its sender's heartbeats. A process that stops
//! cleanly writes a tombstone, which removes it at once; one that dies
//! goes stale. During a rebalance two instances may both claim a partition
//! for a heartbeat: the freshest announcement wins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use crate::shell::clock::wall_clock_ms;

/// An announcement counts for this many of its sender's heartbeats.
const FRESH_HEARTBEATS: i64 = 3;

/// The fields of an announcement the directory reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Announcement {
    pub instance_id: String,
    pub heartbeat_ms: i64,
    #[serde(default)]
    pub partitions: Vec<i32>,
    #[serde(default)]
    pub http: Option<String>,
}

/// The instance that holds a partition, as it announced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub instance_id: String,
    pub http: Option<String>,
}

/// The latest announcement of each instance id, with its record's time.
#[derive(Debug, Default)]
pub struct Directory {
    peers: Mutex<HashMap<String, (Announcement, i64)>>,
}

impl Directory {
    /// Takes one record of the instances topic: an announcement sent at
    /// `ts_ms`, or a tombstone (`value` None) for the instance id `key`.
    /// A record that is not an announcement is ignored.
    pub fn observe(&self, key: &[u8], value: Option<&[u8]>, ts_ms: i64) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        match value {
            None => {
                peers.remove(String::from_utf8_lossy(key).as_ref());
            }
            Some(v) => {
                if let Ok(a) = serde_json::from_slice::<Announcement>(v) {
                    peers.insert(a.instance_id.clone(), (a, ts_ms));
                }
            }
        }
    }

    /// The instance that announced `partition` most recently, among fresh
    /// announcements at `now_ms`, leaving `except` (this instance) out.
    pub fn holder(&self, partition: i32, except: &str, now_ms: i64) -> Option<Holder> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .values()
            .filter(|(a, ts)| a.instance_id != except && now_ms - ts <= FRESH_HEARTBEATS * a.heartbeat_ms.max(1) && a.partitions.contains(&partition))
            .max_by_key(|(_, ts)| *ts)
            .map(|(a, _)| Holder { instance_id: a.instance_id.clone(), http: a.http.clone() })
    }
}

/// Reads the instances topic from `start` into `directory` until `stop`
/// says so, on the calling thread.
pub fn follow(consumer: &BaseConsumer, topic: &str, start: i64, directory: &Directory, stop: &dyn Fn() -> bool) {
    let mut tpl = TopicPartitionList::new();
    if tpl.add_partition_offset(topic, 0, Offset::Offset(start)).is_err() || consumer.assign(&tpl).is_err() {
        tracing::warn!(topic, "Cannot read other instances' announcements; look-ups of customers held elsewhere name only the partition");
        return;
    }
    while !stop() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => directory.observe(m.key().unwrap_or_default(), m.payload(), m.timestamp().to_millis().unwrap_or_else(wall_clock_ms)),
            Some(Err(e)) => tracing::debug!(error = %e, "Reading announcements retried"),
            None => {}
        }
    }
}

/// A directory shared with HTTP.
pub type Peers = Arc<Directory>;

#[cfg(test)]
mod tests {
    use super::*;

    fn announce(d: &Directory, id: &str, partitions: &[i32], ts: i64) {
        let v = serde_json::json!({"instance_id": id, "heartbeat_ms": 1000, "partitions": partitions, "http": format!("{id}:9898"), "nonce": 7});
        d.observe(id.as_bytes(), Some(v.to_string().as_bytes()), ts);
    }

    #[test]
    fn the_freshest_live_announcement_names_the_holder() {
        let d = Directory::default();
        announce(&d, "care-0", &[0, 1], 10_000);
        announce(&d, "care-1", &[2], 10_500);
        let at = |p, now| d.holder(p, "care-9", now).map(|h| h.instance_id);
        assert_eq!(at(1, 11_000), Some("care-0".into()));
        assert_eq!(d.holder(2, "care-9", 11_000).and_then(|h| h.http), Some("care-1:9898".into()));
        assert_eq!(at(3, 11_000), None, "nobody announced partition 3");
        assert_eq!(at(1, 13_001), None, "three heartbeats without a word: stale");
        assert_eq!(d.holder(1, "care-0", 11_000), None, "this instance is not asked about itself");
        // A rebalance moved partition 1: the newer announcement wins.
        announce(&d, "care-1", &[1, 2], 11_000);
        assert_eq!(at(1, 11_100), Some("care-1".into()));
        d.observe(b"care-1", None, 11_200);
        assert_eq!(at(1, 11_300), Some("care-0".into()), "a stopped instance is gone at once");
        d.observe(b"care-0", Some(b"not json"), 11_300);
        assert_eq!(at(0, 11_400), Some("care-0".into()), "a record that is not an announcement changes nothing");
    }
}
