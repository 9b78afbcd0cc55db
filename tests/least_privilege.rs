//! Start-up creates nothing until every check that can fail has passed,
//! and nothing at all with `outputs.create_topics = false`: a failed start
//! leaves the cluster as it was, and a locked-down cluster gets a list of
//! the topics to create, with their settings.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// Which of `topics` exist on the broker.
fn existing(topics: &[&str]) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    topics.iter().filter(|t| md.topics().iter().any(|m| m.name() == **t && m.error().is_none())).map(|t| t.to_string()).collect()
}

fn run_fails(cfg_text: &str) -> String {
    let cfg = write_config(cfg_text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    let _ = std::fs::remove_file(cfg);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_count_mismatch_fails_before_anything_is_created() {
    let (web, orders) = (unique("web"), unique("orders"));
    create_topics(&[&web], 2).await;
    create_topics(&[&orders], 3).await;
    let (outs, group) = (outputs(), unique("care"));
    let text = config(&web, &outs, &group, free_port(), "")
        + &format!("\n[[sources]]\nname = \"orders\"\ntopic = \"{orders}\"\nfields = {{ customer_id = \"/c\", ts = \"/t\" }}\nkind = {{ fixed = \"order\" }}\n");
    let err = run_fails(&text);
    assert!(err.contains(&format!("{web:?} has 2")) && err.contains(&format!("{orders:?} has 3")), "{err}");
    let changelog = format!("{group}-care-changelog");
    let instances = format!("{group}-care-instances");
    let created = existing(&[&changelog, &instances, &outs[0], &outs[1], &outs[2]]);
    assert!(created.is_empty(), "a failed start created {created:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_create_topics_off_nothing_is_created_and_every_missing_topic_is_named() {
    let web = unique("web");
    create_topics(&[&web], 2).await;
    let (outs, group) = (outputs(), unique("care"));
    let text = config(&web, &outs, &group, free_port(), "").replace("partitions = 2\n", "partitions = 2\ncreate_topics = false\n");
    let err = run_fails(&text);
    let changelog = format!("{group}-care-changelog");
    let instances = format!("{group}-care-instances");
    assert!(err.contains(&format!("{changelog:?} (2 partitions, cleanup.policy=compact)")), "{err}");
    assert!(err.contains(&format!("{instances:?} (1 partition")), "{err}");
    for t in &outs {
        assert!(err.contains(&format!("{t:?}")), "{t} not named: {err}");
    }
    assert!(err.contains("max.message.bytes"), "{err}");
    let created = existing(&[&changelog, &instances, &outs[0], &outs[1], &outs[2]]);
    assert!(created.is_empty(), "created {created:?} although create_topics is false");
}
