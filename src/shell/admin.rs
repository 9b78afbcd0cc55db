//! Start-up checks against Kafka: the brokers answer, the source topics
//! exist with equal partition counts, the changelog has that count too
//! (created compacted if missing), the instances topic exists, the output topics exist (or are created)
//! and the DLQ takes the largest dead letter care can write. Every error
//! names the broker, topic or config key at fault.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use care_core::config::Config;
use care_core::render::TopicRole;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::shell::publish::{max_output_bytes, TOPIC_DEFAULT_MAX_BYTES};

/// Client settings of a plain client (admin, metadata): the brokers and
/// `kafka.options`.
pub fn client_config(cfg: &Config) -> ClientConfig {
    client_config_with(cfg, &[], &[])
}

/// Every Kafka client's settings, by one rule: care's `defaults` for the
/// role, then `kafka.options` (which may tune them), then the settings
/// care `owns` (config validation keeps those out of `kafka.options`, see
/// `care_core::config::OWNED_OPTIONS`), the brokers among them.
pub fn client_config_with(cfg: &Config, defaults: &[(&str, String)], owns: &[(&str, String)]) -> ClientConfig {
    let mut cc = ClientConfig::new();
    for (k, v) in defaults {
        cc.set(*k, v);
    }
    for (k, v) in cfg.kafka.options.iter() {
        cc.set(k, v);
    }
    cc.set("bootstrap.servers", &cfg.kafka.brokers);
    for (k, v) in owns {
        cc.set(*k, v);
    }
    cc
}

/// Checks the brokers answer, the source topics exist with one partition
/// count that an existing changelog shares, an existing instances topic
/// has one partition and an existing DLQ takes the largest dead letter;
/// only then creates what is missing (the changelog, the instances topic,
/// output topics), or, with `outputs.create_topics = false`, fails naming
/// every missing topic and the settings it needs. So a start that fails
/// leaves nothing behind. Returns the partition count.
///
/// # Errors
/// Kafka unreachable, a source topic missing, partition counts that differ,
/// a topic missing with `outputs.create_topics` off, or a DLQ whose
/// `max.message.bytes` is too small.
pub async fn preflight(cfg: &Config) -> anyhow::Result<i32> {
    let md = tokio::task::block_in_place(|| first_contact(cfg))?;
    let admin: AdminClient<DefaultClientContext> = client_config(cfg).create().context("cannot create Kafka admin client")?;
    let partitions = |name: &str| md.topics().iter().find(|t| t.name() == name && t.error().is_none()).map(|t| t.partitions().len() as i32);
    let n = check_partition_counts(cfg, &partitions)?;
    let instances = cfg.kafka.instances_topic();
    if let Some(p) = partitions(&instances).filter(|p| *p != 1) {
        bail!("topic {instances:?} has {p} partitions; care's instance-id check reads one: recreate it with 1");
    }
    let o = &cfg.outputs;
    if partitions(&o.dlq).is_some() {
        check_dlq_size(cfg, &admin).await?;
    }
    let changelog = cfg.kafka.changelog();
    let missing_changelog = partitions(&changelog).is_none();
    let missing_instances = partitions(&instances).is_none();
    let missing_outputs: Vec<TopicRole> = TopicRole::ALL.into_iter().filter(|r| partitions(r.topic(o)).is_none()).collect();
    if !o.create_topics {
        let mut needed = Vec::new();
        if missing_changelog {
            needed.push(format!("{changelog:?} ({n} partitions, cleanup.policy=compact)"));
        }
        if missing_instances {
            needed.push(format!("{instances:?} (1 partition, retention.ms=3600000)"));
        }
        for r in &missing_outputs {
            let dlq = if *r == TopicRole::Dlq { format!(", max.message.bytes >= {}", max_output_bytes(cfg)) } else { String::new() };
            let compact = if r.compacted() { ", cleanup.policy=compact" } else { "" };
            needed.push(format!("{:?} (any partition count{dlq}{compact})", r.topic(o)));
        }
        if !needed.is_empty() {
            bail!("outputs.create_topics is false and these topics do not exist on {}: {}", cfg.kafka.brokers, needed.join(", "));
        }
    }
    let mut created: Vec<&str> = Vec::new();
    if missing_changelog {
        create_changelog(cfg, &admin, &changelog, n).await?;
        created.push(&changelog);
    }
    if missing_instances {
        create_instances_topic(cfg, &admin).await?;
        created.push(&instances);
    }
    if !missing_outputs.is_empty() {
        create_outputs(cfg, &admin, &missing_outputs).await?;
        created.extend(missing_outputs.iter().map(|r| r.topic(o)));
    }
    tokio::task::block_in_place(|| await_metadata(&admin, &created))?;
    Ok(n)
}

/// Waits until topics just created show in the metadata with their
/// partitions: creation returns before the broker serves them, and the
/// instance check and the first produce would fail on an unknown partition.
fn await_metadata(admin: &AdminClient<DefaultClientContext>, topics: &[&str]) -> anyhow::Result<()> {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let md = admin.inner().fetch_metadata(None, Duration::from_secs(5));
        let pending: Vec<&str> = match &md {
            Ok(md) => topics.iter().copied().filter(|t| !md.topics().iter().any(|m| m.name() == *t && m.error().is_none() && !m.partitions().is_empty())).collect(),
            Err(_) => topics.to_vec(),
        };
        if pending.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= until {
            bail!("topics {pending:?} were created but do not show in the metadata after 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sources' partition count, which every source topic and an existing
/// changelog must share: a task holds partition n of each, and its state
/// lives in changelog partition n.
fn check_partition_counts(cfg: &Config, partitions: &impl Fn(&str) -> Option<i32>) -> anyhow::Result<i32> {
    let mut counts = Vec::new();
    for s in &cfg.sources {
        let n = partitions(&s.topic).ok_or_else(|| anyhow!("source topic {:?} (source `{}`) does not exist on {}", s.topic, s.name, cfg.kafka.brokers))?;
        counts.push((s.topic.clone(), n));
    }
    let n = counts.first().map_or(1, |(_, n)| *n);
    let changelog = cfg.kafka.changelog();
    if let Some(c) = partitions(&changelog) {
        counts.push((changelog, c));
    }
    if counts.iter().any(|(_, c)| *c != n) {
        let listed: Vec<String> = counts.iter().map(|(t, c)| format!("{t:?} has {c}")).collect();
        bail!(
            "source topics and the changelog must have equal partition counts, so that a customer's records and state \
             live in one task: {}",
            listed.join(", ")
        );
    }
    Ok(n)
}

/// How long the first metadata request may take before start-up fails.
const FIRST_CONTACT_TIMEOUT: Duration = Duration::from_secs(15);

/// The first metadata request. A failed authentication, an untrusted
/// certificate or a mechanism the broker does not offer only shows in
/// librdkafka's error and log callbacks (the request itself just fails
/// with a transport error), and those are served only by polling: so the
/// request is retried in short steps, polling between them, and such a
/// cause ends start-up at once, named. An unreachable broker is retried
/// until the time-out (it may be starting).
///
/// # Errors
/// No metadata within [`FIRST_CONTACT_TIMEOUT`], or a cause that will not
/// go away by waiting.
pub fn first_contact(cfg: &Config) -> anyhow::Result<rdkafka::metadata::Metadata> {
    let probe: BaseProducer<FirstContact> = client_config(cfg).create_with_context(FirstContact::default()).context("cannot create a Kafka client")?;
    let until = std::time::Instant::now() + FIRST_CONTACT_TIMEOUT;
    let mut told = false;
    loop {
        let err = match probe.client().fetch_metadata(None, Duration::from_secs(2)) {
            Ok(md) => return Ok(md),
            Err(e) => e,
        };
        if !std::mem::replace(&mut told, true) {
            tracing::info!(brokers = %cfg.kafka.brokers, error = %err, timeout_secs = FIRST_CONTACT_TIMEOUT.as_secs(), "Waiting for Kafka to answer");
        }
        probe.poll(Duration::from_millis(200));
        let cause = probe.context().cause();
        let fatal = cause.as_deref().is_some_and(|c| ["SASL", "SSL", "uthenticat", "ertificate"].iter().any(|w| c.contains(w)));
        if fatal || std::time::Instant::now() >= until {
            let said = cause.map_or_else(String::new, |c| format!(" (the client said: {c})"));
            bail!("cannot reach Kafka at {}: {err}{said}", cfg.kafka.brokers);
        }
    }
}

/// The first contact's client context: it keeps the first failure
/// librdkafka reports. librdkafka's messages name the cause (mechanism,
/// certificate check) and never a credential.
#[derive(Default)]
struct FirstContact {
    cause: std::sync::Mutex<Option<String>>,
}

impl FirstContact {
    fn cause(&self) -> Option<String> {
        self.cause.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn remember(&self, message: &str) {
        let mut cause = self.cause.lock().unwrap_or_else(|p| p.into_inner());
        // The first failure tells why; "all brokers down" follows it.
        if cause.is_none() && !message.contains("brokers are down") {
            *cause = Some(message.to_string());
        }
    }
}

impl ClientContext for FirstContact {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // Debug only: a failure ends start-up with an error naming it.
        tracing::debug!(target: "librdkafka", facility = fac, "{message}");
        if (level as i32) <= (RDKafkaLogLevel::Error as i32) {
            self.remember(message);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "Kafka client error at start");
        self.remember(reason);
    }
}

/// It never produces: no delivery reports to handle.
impl rdkafka::producer::ProducerContext for FirstContact {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

/// Creates the compacted changelog with one partition per task.
async fn create_changelog(cfg: &Config, admin: &AdminClient<DefaultClientContext>, name: &str, partitions: i32) -> anyhow::Result<()> {
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(cfg.outputs.replication_factor)).set("cleanup.policy", "compact");
    for r in admin.create_topics([&topic], &AdminOptions::new()).await.context("creating the changelog topic")? {
        match r {
            Ok(t) => tracing::info!(topic = %t, partitions, "Created changelog topic"),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic = %t, "Changelog topic already exists"),
            Err((t, e)) => bail!("cannot create changelog topic {t:?}: {e}"),
        }
    }
    Ok(())
}

/// Creates the topic where running processes announce their instance id
/// (see `shell::instance`): one partition, an hour of announcements.
async fn create_instances_topic(cfg: &Config, admin: &AdminClient<DefaultClientContext>) -> anyhow::Result<()> {
    let name = cfg.kafka.instances_topic();
    let topic = NewTopic::new(&name, 1, TopicReplication::Fixed(cfg.outputs.replication_factor))
        .set("retention.ms", "3600000")
        .set("segment.ms", "600000");
    for r in admin.create_topics([&topic], &AdminOptions::new()).await.context("creating the instances topic")? {
        match r {
            Ok(t) => tracing::info!(topic = %t, "Created instances topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("cannot create instances topic {t:?}: {e}"),
        }
    }
    Ok(())
}

/// Creates output topics; the DLQ with a `max.message.bytes` that takes a
/// dead letter of `max_record_bytes` plus its headers.
async fn create_outputs(cfg: &Config, admin: &AdminClient<DefaultClientContext>, missing: &[TopicRole]) -> anyhow::Result<()> {
    let o = &cfg.outputs;
    let dlq_bytes = max_output_bytes(cfg).max(TOPIC_DEFAULT_MAX_BYTES).to_string();
    let new: Vec<NewTopic> = missing
        .iter()
        .map(|r| {
            let topic = NewTopic::new(r.topic(o), o.partitions, TopicReplication::Fixed(o.replication_factor));
            let topic = if r.compacted() { topic.set("cleanup.policy", "compact") } else { topic };
            if *r == TopicRole::Dlq {
                topic.set("max.message.bytes", &dlq_bytes)
            } else {
                topic
            }
        })
        .collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await.context("creating output topics")? {
        match r {
            Ok(t) => tracing::info!(topic = %t, partitions = o.partitions, "Created output topic"),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic = %t, "Output topic already exists"),
            Err((t, e)) => bail!("cannot create output topic {t:?}: {e}"),
        }
    }
    Ok(())
}

/// An existing DLQ too small for the largest dead letter would refuse it for
/// ever and stall the pipeline on that record: fail at start instead.
async fn check_dlq_size(cfg: &Config, admin: &AdminClient<DefaultClientContext>) -> anyhow::Result<()> {
    let dlq = &cfg.outputs.dlq;
    let results = admin.describe_configs([&ResourceSpecifier::Topic(dlq)], &AdminOptions::new()).await.context("describing the DLQ topic")?;
    let limit = results
        .into_iter()
        .filter_map(Result::ok)
        .find_map(|r| r.get("max.message.bytes").and_then(|e| e.value.as_deref()?.parse::<usize>().ok()));
    let need = max_output_bytes(cfg);
    match limit {
        Some(have) if have < need => bail!(
            "DLQ topic {dlq:?} accepts records up to {have} bytes (max.message.bytes), but a dead letter may be {need} bytes \
             (engine.max_record_bytes {} plus headers): raise the topic's max.message.bytes or lower engine.max_record_bytes",
            cfg.engine.max_record_bytes
        ),
        Some(_) => Ok(()),
        None => {
            tracing::warn!(topic = %dlq, "Cannot read the DLQ topic's max.message.bytes; oversized dead letters may be refused");
            Ok(())
        }
    }
}
