//! What the worker tells the engine about a source record besides its key
//! and value, and the routing check of a source's producers.
//!
//! The engine reads a record's headers only when it dead-letters it, so
//! they are lent through [`SourceHeaders`], never copied on the hot path.

use care_core::config::{Config, OnMisrouted};
use care_core::decode::RejectCode;
use care_core::engine::{Envelope, Outcome};
use care_core::partition::{Misrouting, RoutingGuard, ROUTING_SAMPLE};
use care_core::render::SourceHeaders;
use rdkafka::message::{Headers, Message};

/// A Kafka record's headers (borrowed from a polled message, or owned by a
/// buffered one), lent to the engine.
pub struct KafkaHeaders<'a, H: Headers>(&'a H);

impl<H: Headers> SourceHeaders for KafkaHeaders<'_, H> {
    fn each(&self, f: &mut dyn FnMut(&str, Option<&[u8]>)) {
        for h in self.0.iter() {
            f(h.key, h.value);
        }
    }
}

/// The headers of `msg`, to lend through [`envelope`].
pub fn headers<M: Message>(msg: &M) -> Option<KafkaHeaders<'_, M::Headers>> {
    msg.headers().map(KafkaHeaders)
}

/// The envelope of `msg`: a null value is a tombstone; its timestamp and
/// headers go on its dead letter.
pub fn envelope<'a, M: Message, H: Headers>(msg: &M, headers: Option<&'a KafkaHeaders<'a, H>>) -> Envelope<'a> {
    Envelope { tombstone: msg.payload().is_none(), timestamp_ms: msg.timestamp().to_millis(), headers: headers.map(|h| h as &dyn SourceHeaders) }
}

/// Watches each source's first records for a producer that does not
/// partition by murmur2(customer id).
#[derive(Debug, Default)]
pub struct Routing(RoutingGuard);

impl Routing {
    /// Counts one processed record.
    ///
    /// # Errors
    /// More than 1 % of the source's first records were misrouted: care
    /// must stop rather than split customers' state across tasks.
    pub fn observe(&mut self, cfg: &Config, source: usize, outcome: Outcome) -> anyhow::Result<()> {
        let misrouted = outcome == Outcome::Rejected(RejectCode::Misrouted);
        let stop = cfg.sources.get(source).is_some_and(|s| s.on_misrouted == OnMisrouted::Stop);
        match self.0.observe(source, misrouted) {
            Err(m) if stop => Err(misrouting_error(cfg, m)),
            _ => Ok(()),
        }
    }
}

fn misrouting_error(cfg: &Config, m: Misrouting) -> anyhow::Error {
    let (name, topic) = cfg.sources.get(m.source).map_or(("?", "?"), |s| (s.name.as_str(), s.topic.as_str()));
    anyhow::anyhow!(
        "source `{name}` (topic {topic:?}): {} of its first {} records are not on the partition murmur2(customer_id) gives, \
         more than 1 % of the first {ROUTING_SAMPLE}. Its producer does not partition by murmur2 of the customer id as the Java clients do: \
         librdkafka-based producers (Python, Go, .NET, Node) default to consistent_random; set partitioner=murmur2_random on them \
         and key each record by its customer id. A source not keyed by customer id needs repartitioning, which care does not do yet. \
         care stops before committing them. Once the producers are fixed, the records they wrote stay in the topic: set \
         `on_misrouted = \"dlq\"` on source `{name}` so care dead-letters them (code misrouted) and goes on.",
        m.misrouted,
        m.seen,
    )
}
