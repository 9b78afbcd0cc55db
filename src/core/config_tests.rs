use super::*;

#[test]
fn empty_config_gets_documented_defaults() {
    let c = Config::parse("", "t").unwrap();
    assert_eq!(c.engine.bucket_secs, 86_400);
    assert_eq!(c.detect.decline.recent_buckets, 7);
    assert_eq!(c.detect.dormancy.after_days, 60);
    assert_eq!(c.outputs.alerts, "care.alerts");
    assert_eq!(c.kafka.auto_offset_reset, "earliest");
    assert_eq!(c.kafka.changelog(), "care-care-changelog");
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let err = Config::parse("[engine]\nbucket_secs = 3600\nbukcet = 1\n", "t").unwrap_err().to_string();
    assert!(err.contains("bukcet"), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn cross_field_rule_names_the_key() {
    let err = Config::parse("[detect.decline]\nopen_ratio = 0.9\nresolve_ratio = 0.5\n", "t").unwrap_err();
    assert!(err.to_string().contains("detect.decline.resolve_ratio"), "{err}");
}

#[test]
fn detector_settings_out_of_range_fail_naming_the_key() {
    for (text, key) in [
        ("[detect.decline]\ndesign_drop = 1.5\n", "detect.decline.design_drop"),
        ("[detect.decline]\nfalse_alerts_per_1000_customer_months = 0\n", "detect.decline.false_alerts_per_1000_customer_months"),
        ("[detect.decline]\nmin_baseline_rate = -1\n", "detect.decline.min_baseline_rate"),
        ("[detect.decline]\nbaseline_memory_buckets = 0\n", "detect.decline.baseline_memory_buckets"),
        ("[detect.silence]\nfalse_alerts_per_1000_customer_months = -0.1\n", "detect.silence.false_alerts_per_1000_customer_months"),
        ("[detect.silence]\nmin_events = 1\n", "detect.silence.min_events"),
    ] {
        let err = Config::parse(text, "t").unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    let err = Config::parse("[detect.decline]\nmethod = \"magic\"\n", "t").unwrap_err().to_string();
    assert!(err.contains("sequential") && err.contains("window"), "names the choices: {err}");
    let d = Config::parse("", "t").unwrap().detect;
    assert_eq!((d.decline.method, d.decline.false_alerts_per_1000_customer_months, d.silence.false_alerts_per_1000_customer_months), (DeclineMethod::Sequential, 1.0, 0.05));
    assert_eq!((d.decline.baseline_buckets, d.decline.baseline_memory_buckets), (21, 56));
}

#[test]
fn source_kind_rule_needs_one_of_fixed_or_field() {
    let text = r#"
[[sources]]
name = "x"
topic = "x"
fields = { customer_id = "/c", ts = "/t" }
kind = {}
"#;
    let err = Config::parse(text, "t").unwrap_err().to_string();
    assert!(err.contains("sources[0].kind"), "{err}");
}

#[test]
fn instance_heartbeat_has_a_default_and_a_bound() {
    assert_eq!(Config::parse("", "t").unwrap().kafka.instance_heartbeat_ms, 1000);
    let err = Config::parse("[kafka]\ninstance_heartbeat_ms = 0\n", "t").unwrap_err().to_string();
    assert!(err.contains("kafka.instance_heartbeat_ms"), "{err}");
}

#[test]
fn options_care_relies_on_cannot_be_overridden() {
    let err = Config::parse("[kafka.options]\n\"partition.assignment.strategy\" = \"roundrobin\"\n", "t").unwrap_err().to_string();
    assert!(err.contains("kafka.options.\"partition.assignment.strategy\""), "{err}");
    // One that a config key sets names that key.
    let err = Config::parse("[kafka.options]\n\"linger.ms\" = \"50\"\n", "t").unwrap_err().to_string();
    assert!(err.contains("kafka.options.\"linger.ms\"") && err.contains("kafka.linger_ms"), "{err}");
    // Tuning care only defaults stays open.
    assert!(Config::parse("[kafka.options]\n\"compression.type\" = \"gzip\"\n\"fetch.wait.max.ms\" = \"10\"\n", "t").is_ok());
}

#[test]
fn timezone_offsets_parse() {
    assert_eq!(parse_utc_offset("UTC"), Some(0));
    assert_eq!(parse_utc_offset("+02:00"), Some(7200));
    assert_eq!(parse_utc_offset("-05:30"), Some(-19800));
    assert_eq!(parse_utc_offset("Europe/Paris"), None);
    assert!(Config::parse("[engine]\ntimezone = \"Mars\"\n", "t").unwrap_err().to_string().contains("engine.timezone"));
}

#[test]
fn shipped_example_config_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/example.toml");
    let c = Config::load(Path::new(path)).unwrap();
    assert!(c.sources.len() >= 2);
}

/// Config files written for earlier versions keep working: the example
/// config as it was before durability (issue 6) still parses, with the new
/// keys at their defaults.
#[test]
fn a_config_from_before_durability_still_parses() {
    let c = Config::parse(include_str!("fixtures/config-v0.toml"), "config-v0.toml").unwrap();
    assert_eq!(c.kafka.delivery, Delivery::ExactlyOnce);
    assert_eq!(c.kafka.changelog(), format!("{}-care-changelog", c.kafka.group_id));
    assert_eq!(c.sources.len(), 2);
    assert!(c.sources.iter().all(|s| s.unknown_kinds == UnknownKinds::Skip), "sources from before issue 12 skip unknown types");
    assert_eq!(c.engine.max_amount, 1e9);
}

const TWO_ON_ONE_TOPIC: &str = r#"
[[sources]]
name = "clicks"
topic = "web.events"
fields = { customer_id = "/c", ts = "/t" }
kind = { field = "/type" }

[[sources]]
name = "signins"
topic = "web.events"
fields = { customer_id = "/c", ts = "/t" }
kind = { fixed = "login" }
"#;

#[test]
fn two_sources_on_one_topic_are_an_error_naming_both() {
    let err = Config::parse(TWO_ON_ONE_TOPIC, "t").unwrap_err().to_string();
    assert!(err.contains("sources[1].topic") && err.contains("`clicks`") && err.contains("`signins`") && err.contains("web.events"), "{err}");
}

#[test]
fn unknown_kinds_default_to_skip_and_a_type_can_map_to_ignore() {
    let text = TWO_ON_ONE_TOPIC.replace("topic = \"web.events\"\nfields = { customer_id = \"/c\", ts = \"/t\" }\nkind = { fixed", "topic = \"signins\"\nunknown_kinds = \"dlq\"\nfields = { customer_id = \"/c\", ts = \"/t\" }\nkind = { fixed")
        .replace("kind = { field = \"/type\" }", "kind = { field = \"/type\", map = { impression = \"ignore\", page_view = \"click\" } }");
    let c = Config::parse(&text, "t").unwrap();
    assert_eq!((c.sources[0].unknown_kinds, c.sources[1].unknown_kinds), (UnknownKinds::Skip, UnknownKinds::Dlq));
    assert_eq!(c.sources[0].kind.map["impression"], KindTarget::Ignore);
    assert_eq!(c.sources[0].kind.map["page_view"].kind(), Some(Kind::Click));
    let err = Config::parse(&text.replace("\"ignore\"", "\"skip\""), "t").unwrap_err().to_string();
    assert!(err.contains("ignore") && err.contains("click"), "names the choices: {err}");
}

#[test]
fn max_amount_has_a_default_and_a_bound() {
    assert_eq!(Config::parse("", "t").unwrap().engine.max_amount, 1e9);
    for bad in ["0", "-1", "1e300", "nan"] {
        let err = Config::parse(&format!("[engine]\nmax_amount = {bad}\n"), "t").unwrap_err().to_string();
        assert!(err.contains("engine.max_amount"), "{bad}: {err}");
    }
}

#[test]
fn secret_options_never_show_in_debug_output() {
    let cfg = Config::parse("[kafka.options]\n\"sasl.password\" = \"hunter2\"\n\"sasl.oauthbearer.config\" = \"principal=a secret=s3\"\n\"sasl.username\" = \"care\"\n", "t").unwrap();
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("hunter2") && !shown.contains("s3\""), "{shown}");
    assert!(shown.contains("\"sasl.username\": \"care\"") && shown.contains("<redacted>"), "{shown}");
    assert_eq!(cfg.kafka.options["sasl.password"], "hunter2", "the value itself is intact");
}

#[test]
fn surveys_are_never_activity_and_not_by_default() {
    let c = Config::parse("", "t").unwrap();
    assert!(!c.engine.activity_set().contains(Kind::Survey));
    assert_eq!(c.engine.activity_kinds.len(), Kind::TRACKED);
    let err = Config::parse("[engine]\nactivity_kinds = [\"click\", \"survey\"]\n", "t").unwrap_err().to_string();
    assert!(err.contains("engine.activity_kinds") && err.contains("survey"), "{err}");
}
