//! The config file: brokers, sources, detectors and outputs.
//!
//! Every struct denies unknown keys, so a typo fails at start with the key and
//! the line. Fields carry their unit in the name; defaults are named
//! functions so the documentation and the code cannot drift apart.
//! Cross-field rules live in [`Config::validate`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::event::{Kind, KindSet};

pub mod env;
mod source;
mod value;
// The `[detect]` table is made by the detector registry from the tables
// the detectors define in their own files.
pub use crate::detect::decline::{DeclineConfig, DeclineMethod};
pub use crate::detect::dormancy::DormancyConfig;
pub use crate::detect::registry::DetectConfig;
pub use crate::detect::silence::SilenceConfig;
pub use value::ValueConfig;
pub use source::{FieldPointers, KindRule, KindTarget, OnMisrouted, SourceConfig, TimestampFormat, UnknownKinds};

/// Why a config could not be used. Each variant names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a `source`: the message names the cause once, not twice in a chain.
    #[error("cannot read config file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("invalid config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid config: `{key}` {reason}")]
    Invalid { key: String, reason: String },
}

/// librdkafka options care sets on its clients and that `kafka.options`
/// may not set (one rule for every client: care's defaults, then
/// `kafka.options`, then these), with the config key that sets each.
pub const OWNED_OPTIONS: &[(&str, Option<&str>)] = &[
    ("bootstrap.servers", Some("kafka.brokers")),
    ("group.id", Some("kafka.group_id")),
    ("group.instance.id", Some("kafka.instance_id")),
    ("session.timeout.ms", Some("kafka.session_timeout_ms")),
    ("auto.offset.reset", Some("kafka.auto_offset_reset")),
    ("linger.ms", Some("kafka.linger_ms")),
    ("transactional.id", Some("kafka.group_id and kafka.instance_id")),
    ("transaction.timeout.ms", Some("kafka.transaction_timeout_ms")),
    ("message.max.bytes", Some("engine.max_record_bytes")),
    ("partition.assignment.strategy", None),
    ("group.protocol", None),
    ("isolation.level", None),
    ("enable.auto.commit", None),
    ("enable.auto.offset.store", None),
    ("enable.idempotence", None),
    ("acks", None),
    ("partitioner", None),
    ("statistics.interval.ms", None),
];

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub detect: DetectConfig,
    #[serde(default)]
    pub outputs: OutputsConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub value: ValueConfig,
    /// The profiles topic: when a customer's profile is sent.
    #[serde(default)]
    pub profiles: crate::profile::ProfilesConfig,
    /// Input topics and how their JSON maps to the canonical event.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

/// Connection to Kafka and the consumer group.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// Consumer group shared by all instances.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Stable per-process id: sets `group.instance.id` and the producer's
    /// `transactional.id` (`<group_id>-<instance_id>`), so a restarted
    /// process takes its place at once and fences its dead predecessor.
    /// The StatefulSet pod name in Kubernetes. Overridden by `care run
    /// --instance-id` / `CARE_INSTANCE_ID`; default: the host name.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// How often a running process announces its `instance_id` on
    /// `<group_id>-care-instances`. A process started with the id of a live
    /// one watches about two of these periods, sees the announcements and
    /// exits naming the id, instead of fencing the live one.
    #[serde(default = "default_instance_heartbeat_ms")]
    pub instance_heartbeat_ms: u32,
    /// `exactly_once` (default): outputs, changelog and input offsets are
    /// committed in one Kafka transaction. `at_least_once`: lower latency;
    /// a crash may repeat the last batch.
    #[serde(default)]
    pub delivery: Delivery,
    /// Producer `transaction.timeout.ms`: an open transaction of a process
    /// that died is aborted after this long, unless a restart with the same
    /// `instance_id` aborts it first. At most the broker's
    /// `transaction.max.timeout.ms` (15 min by default).
    #[serde(default = "default_transaction_timeout_ms")]
    pub transaction_timeout_ms: u32,
    /// Consumer session timeout.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u32,
    /// How often outputs are flushed and offsets committed: the latency bound.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// With several source topics, how long a task whose other partitions
    /// have records waits for an empty partition that is known to be caught
    /// up before processing without it (Kafka Streams' `max.task.idle.ms`).
    /// A partition whose lag is unknown or positive is always waited for;
    /// records are merged by event time either way. Raise it when a quiet
    /// topic's records arrive a little behind the others'.
    #[serde(default)]
    pub max_task_idle_ms: u64,
    /// Output records produced but not yet acknowledged before consumption
    /// pauses to let them drain. Nothing is ever dropped.
    #[serde(default = "default_max_inflight_records")]
    pub max_inflight_records: usize,
    /// Producer `linger.ms`: higher batches better, adds latency.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// Where to start a partition with no committed offset: `earliest` so
    /// nothing is skipped, or `latest`.
    #[serde(default = "default_auto_offset_reset")]
    pub auto_offset_reset: String,
    /// Compacted topic holding every task's state; default
    /// `<group_id>-care-changelog`. Created (cleanup.policy=compact) if
    /// missing, with as many partitions as the source topics.
    #[serde(default)]
    pub changelog_topic: Option<String>,
    /// Passed to librdkafka as is (e.g. `security.protocol`). Values that
    /// look like secrets are never logged.
    #[serde(default)]
    pub options: KafkaOptions,
}

/// librdkafka options passed through as they are. Their `Debug` shows
/// secrets as `<redacted>`, so a config printed for debugging leaks none.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct KafkaOptions(pub BTreeMap<String, String>);

impl KafkaOptions {
    /// Whether an option holds a secret: librdkafka's sensitive properties
    /// (`sasl.password`, `sasl.oauthbearer.config`,
    /// `sasl.oauthbearer.client.secret`, `ssl.key.password`, `ssl.key.pem`,
    /// `ssl.keystore.password`, …) and anything named like one; a `*_file`
    /// key names a file, not a secret.
    pub fn is_secret(key: &str) -> bool {
        !key.ends_with("_file") && ["password", "secret", "token", "key", "oauthbearer.config", "jaas"].iter().any(|s| key.contains(s))
    }

    /// The options with every secret replaced by `<redacted>`.
    pub fn redacted(&self) -> KafkaOptions {
        KafkaOptions(self.0.iter().map(|(k, v)| (k.clone(), if Self::is_secret(k) { "<redacted>".into() } else { v.clone() })).collect())
    }
}

impl std::fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.redacted().0.iter()).finish()
    }
}

impl std::ops::Deref for KafkaOptions {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KafkaOptions {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_group_id() -> String {
    "care".into()
}
fn default_session_timeout_ms() -> u32 {
    10_000
}
fn default_commit_interval_ms() -> u64 {
    100
}
fn default_instance_heartbeat_ms() -> u32 {
    1_000
}
fn default_transaction_timeout_ms() -> u32 {
    60_000
}

/// The delivery guarantee of `care run`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    #[default]
    ExactlyOnce,
    AtLeastOnce,
}
fn default_max_inflight_records() -> usize {
    10_000
}
fn default_linger_ms() -> u32 {
    5
}
fn default_auto_offset_reset() -> String {
    "earliest".into()
}

impl KafkaConfig {
    /// Where running processes announce their instance id.
    pub fn instances_topic(&self) -> String {
        format!("{}-care-instances", self.group_id)
    }

    /// The changelog topic: configured, or `<group_id>-care-changelog`.
    pub fn changelog(&self) -> String {
        self.changelog_topic.clone().unwrap_or_else(|| format!("{}-care-changelog", self.group_id))
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// Time, windows and input hygiene shared by all detectors.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Width of one activity bucket.
    #[serde(default = "default_bucket_secs")]
    pub bucket_secs: u32,
    /// `UTC` or a fixed offset like `+02:00`: sets bucket (day) boundaries.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Events this far behind their partition's stream time are late: they
    /// count in lifetime totals but never in buckets or alerts.
    #[serde(default = "default_allowed_lateness_secs")]
    pub allowed_lateness_secs: u32,
    /// Events this far ahead of the wall clock go to the DLQ.
    #[serde(default = "default_max_future_skew_secs")]
    pub max_future_skew_secs: u32,
    /// Records larger than this go to the DLQ undecoded.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// Largest order `amount` accepted; beyond it the record goes to the
    /// DLQ (`invalid_amount`). Two amounts of 1e308 would make a
    /// customer's lifetime spend infinite for good.
    #[serde(default = "default_max_amount")]
    pub max_amount: f64,
    /// Kinds that count as activity for decline, silence and dormancy.
    /// Default: every kind but `survey`, which can never be activity.
    #[serde(default = "default_activity_kinds")]
    pub activity_kinds: Vec<Kind>,
    /// In `run`, a task with no record for this long has its stream time
    /// moved to the wall clock minus allowed lateness, so silence on a
    /// genuinely quiet topic is still detected. Off (0) by default: when a
    /// producer upstream breaks, it would read as every customer going
    /// quiet. Never in `replay`.
    #[serde(default)]
    pub idle_advance_secs: u64,
    /// In `run`, outputs whose trigger is older than this (RFC 3339) are
    /// suppressed while state still folds. Default: start time minus 24 h.
    #[serde(default)]
    pub emit_from: Option<String>,
    /// The outage guard (see `engine::guard`): an activity opening after a
    /// day on which some kind stalled (under half its quietest day of the
    /// baseline), or one that takes its day past this many times the
    /// task's usual daily openings while a kind is short, withholds them
    /// until the sources are back. 0 turns it off.
    #[serde(default = "default_outage_guard_factor")]
    pub outage_guard_factor: f64,
    /// ... and past this many openings in the day (the second rule, for
    /// an outage's first day, before a whole day of a kind is missing).
    #[serde(default = "default_outage_guard_min_openings")]
    pub outage_guard_min_openings: u32,
}

fn default_outage_guard_factor() -> f64 {
    10.0
}
fn default_outage_guard_min_openings() -> u32 {
    50
}

fn default_bucket_secs() -> u32 {
    86_400
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_allowed_lateness_secs() -> u32 {
    3_600
}
fn default_max_future_skew_secs() -> u32 {
    300
}
fn default_max_record_bytes() -> usize {
    64 * 1024
}
fn default_max_amount() -> f64 {
    1e9
}
fn default_activity_kinds() -> Vec<Kind> {
    Kind::TRACKED_ALL.to_vec()
}

impl Default for EngineConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl EngineConfig {
    /// The timezone as seconds east of UTC.
    pub fn utc_offset_secs(&self) -> Result<i32, ConfigError> {
        parse_utc_offset(&self.timezone)
            .ok_or_else(|| invalid("engine.timezone", format!("must be `UTC` or `+HH:MM`/`-HH:MM`, got {:?}", self.timezone)))
    }

    /// The timezone's offset east of UTC in milliseconds, for a validated
    /// config (0 for a timezone validation would refuse).
    pub fn utc_offset_ms(&self) -> i64 {
        i64::from(self.utc_offset_secs().unwrap_or(0)) * 1000
    }

    /// The activity kinds as a set.
    pub fn activity_set(&self) -> KindSet {
        KindSet::of(&self.activity_kinds)
    }
}

fn parse_utc_offset(tz: &str) -> Option<i32> {
    if tz.eq_ignore_ascii_case("utc") || tz == "Z" {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn yes() -> bool {
    true
}

/// Output topics and how care creates them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsConfig {
    #[serde(default = "default_alerts_topic")]
    pub alerts: String,
    #[serde(default = "default_reactivation_topic")]
    pub reactivation: String,
    #[serde(default = "default_dlq_topic")]
    pub dlq: String,
    /// Source anomalies the outage guard reports, keyed by task id.
    #[serde(default = "default_anomalies_topic")]
    pub anomalies: String,
    /// Customer profiles (compacted), keyed by customer id.
    #[serde(default = "default_profiles_topic")]
    pub profiles: String,
    /// Create missing output topics at start.
    #[serde(default = "yes")]
    pub create_topics: bool,
    /// Partitions of topics care creates.
    #[serde(default = "default_topic_partitions")]
    pub partitions: i32,
    /// Replication factor of topics care creates.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// CloudEvents `source` attribute of every output.
    #[serde(default = "default_ce_source")]
    pub ce_source: String,
}

fn default_alerts_topic() -> String {
    "care.alerts".into()
}
fn default_reactivation_topic() -> String {
    "care.triggers.reactivation".into()
}
fn default_dlq_topic() -> String {
    "care.dlq".into()
}
fn default_anomalies_topic() -> String {
    "care.anomalies".into()
}
fn default_profiles_topic() -> String {
    "care.customer-profiles".into()
}
fn default_topic_partitions() -> i32 {
    3
}
fn default_replication_factor() -> i32 {
    1
}
fn default_ce_source() -> String {
    "urn:care".into()
}

impl Default for OutputsConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// The HTTP endpoint for metrics, health and customer look-ups.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; empty disables HTTP.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `/livez` fails once the processing loop has not turned for this
    /// long outside a Kafka call (a stuck process; a broker outage is not
    /// one).
    #[serde(default = "default_stall_secs")]
    pub stall_secs: u64,
    /// When set, `/customers/{id}` requires `Authorization: Bearer <token>`.
    /// Set it from the environment (`CARE_HTTP__TOKEN`), not in the file.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The address (`host:port`) other instances and clients reach this
    /// one's HTTP at, announced on the instances topic so a look-up of a
    /// customer held elsewhere names it. Default: the listen address, an
    /// unspecified host (`0.0.0.0`) replaced by the host name.
    #[serde(default)]
    pub advertised_address: Option<String>,
}

/// A secret config value: `Debug` and `check-config` show `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Serialised only by `check-config`, which must never print it.
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

fn default_stall_secs() -> u64 {
    60
}

fn default_listen() -> String {
    "127.0.0.1:9898".into()
}

impl Default for HttpConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    ///
    /// # Errors
    /// Unreadable file, TOML syntax, unknown keys (named with their line), or
    /// a failed cross-field rule (named by key).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::iter::empty()).map(|(config, _)| config)
    }

    /// Reads the files the config names (the fit of `value.params`),
    /// relative to the config file's directory.
    fn load_files(&mut self, config_path: &Path) -> Result<(), ConfigError> {
        self.value.load(config_path.parent().unwrap_or(Path::new(".")))
    }

    /// Reads a config file, applies the config variables among `vars` (see
    /// [`env`]; defaults < file < environment), and validates the result.
    /// Returns the overrides applied, for `check-config`.
    ///
    /// # Errors
    /// As [`Config::load`], plus a config variable naming no section or
    /// source, or one whose value has the wrong type (named by key).
    pub fn load_with_env(path: &Path, vars: impl IntoIterator<Item = (String, String)>) -> Result<(Config, Vec<env::Override>), ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: origin.clone(), error: source })?;
        let (mut config, applied) = Self::parse_with_env(&text, &origin, vars)?;
        config.load_files(path)?;
        Ok((config, applied))
    }

    /// [`Config::load_with_env`] over config text.
    ///
    /// # Errors
    /// As [`Config::load_with_env`].
    pub fn parse_with_env(text: &str, origin: &str, vars: impl IntoIterator<Item = (String, String)>) -> Result<(Config, Vec<env::Override>), ConfigError> {
        // The file alone first, so its errors carry their line numbers.
        let from_file = Self::parse(text, origin)?;
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?;
        let applied = env::apply(&mut doc, vars)?;
        if applied.is_empty() {
            return Ok((from_file, applied));
        }
        let with_env = format!("{origin} with the environment's {}", applied.iter().map(|o| o.var.as_str()).collect::<Vec<_>>().join(", "));
        let config: Config = toml::Value::Table(doc).try_into().map_err(|e: toml::de::Error| ConfigError::Parse { path: with_env, message: e.to_string() })?;
        config.validate()?;
        Ok((config, applied))
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: origin.to_string(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field rules that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.bucket_secs < 60 {
            return Err(invalid("engine.bucket_secs", "must be at least 60"));
        }
        e.utc_offset_secs()?;
        if !(e.outage_guard_factor >= 0.0 && e.outage_guard_factor <= 1e6) {
            return Err(invalid("engine.outage_guard_factor", "must be from 0 (off) to 1e6"));
        }
        if e.outage_guard_min_openings == 0 {
            return Err(invalid("engine.outage_guard_min_openings", "must be at least 1"));
        }
        self.value.validate()?;
        self.profiles.validate()?;
        if !(e.max_amount.is_finite() && e.max_amount > 0.0 && e.max_amount <= 1e15) {
            return Err(invalid("engine.max_amount", "must be a number above 0 and at most 1e15"));
        }
        if e.activity_kinds.is_empty() {
            return Err(invalid("engine.activity_kinds", "must name at least one kind"));
        }
        if e.activity_kinds.contains(&Kind::Survey) {
            return Err(invalid("engine.activity_kinds", "`survey` is an answer, not activity: map a chat or ticket that carries one to its own kind"));
        }
        if let Some(from) = &e.emit_from {
            chrono::DateTime::parse_from_rfc3339(from)
                .map_err(|err| invalid("engine.emit_from", format!("is not RFC 3339: {err}")))?;
        }
        self.detect.validate()?;
        if self.kafka.instance_id.as_deref().is_some_and(|id| id.is_empty() || id.len() > 200) {
            return Err(invalid("kafka.instance_id", "must be 1 to 200 characters"));
        }
        if !(50..=60_000).contains(&self.kafka.instance_heartbeat_ms) {
            return Err(invalid("kafka.instance_heartbeat_ms", "must be 50 to 60000"));
        }
        if self.kafka.transaction_timeout_ms < 1_000 {
            return Err(invalid("kafka.transaction_timeout_ms", "must be at least 1000"));
        }
        for (key, instead) in OWNED_OPTIONS {
            if self.kafka.options.contains_key(*key) {
                let why = match instead {
                    Some(k) => format!("is set by care from `{k}`: set that instead"),
                    None => "is set by care itself and cannot be overridden".to_string(),
                };
                return Err(invalid(format!("kafka.options.\"{key}\""), why));
            }
        }
        if self.kafka.max_inflight_records == 0 {
            return Err(invalid("kafka.max_inflight_records", "must be at least 1"));
        }
        if !matches!(self.kafka.auto_offset_reset.as_str(), "earliest" | "latest") {
            return Err(invalid("kafka.auto_offset_reset", "must be `earliest` or `latest`"));
        }
        if self.outputs.partitions < 1 || self.outputs.replication_factor < 1 {
            return Err(invalid("outputs.partitions", "and outputs.replication_factor must be at least 1"));
        }
        source::validate(&self.sources)
    }

    /// The source config by name.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
