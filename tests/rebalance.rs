//! Scale-out, checked from outside through a real broker: a second and a
//! third `care run` join the group mid-stream and leave again, and the
//! outputs are exactly those of a single uninterrupted instance. Every
//! move of a task restores its customers from the changelog on the
//! instance that takes it over.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

const PARTITIONS: i32 = 4;

/// An instance of the group, with its own HTTP port.
struct Instance {
    care: CareProcess,
    port: u16,
}

impl Instance {
    fn start(source: &str, outs: &[String; 3], group: &str, id: &str) -> Instance {
        let port = free_port();
        let cfg = write_config(&config(source, outs, group, port, ""));
        let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap(), "--instance-id", id]);
        Instance { care, port }
    }

    /// The tasks this instance holds, by phase.
    fn tasks(&self) -> BTreeMap<String, String> {
        let (status, body) = http_get(self.port, "/tasks");
        if status != 200 {
            return BTreeMap::new();
        }
        serde_json::from_str(&body).unwrap_or_default()
    }

    fn active(&self) -> usize {
        self.tasks().values().filter(|p| *p == "active").count()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_joining_and_leaving_mid_stream_change_no_output() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], PARTITIONS).await;
    let recs = stream_of(67, 60, 2);
    let group = unique("care");
    let cfg = write_config(&config(&source, &outs, &group, free_port(), ""));
    let want = replay_records(&cfg, &recs, PARTITIONS);
    let chunk = recs.len().div_ceil(5);
    let mut sent = 0;
    let mut feed = |upto: usize| {
        let upto = upto.min(recs.len());
        produce(&recs[sent..upto].iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
        sent = upto;
        assert!(
            wait_for(Duration::from_secs(90), || committed_total(&group, &source, PARTITIONS) == upto as i64),
            "{} of {upto} records committed",
            committed_total(&group, &source, PARTITIONS)
        );
    };

    let a = Instance::start(&source, &outs, &group, "a");
    feed(chunk);
    assert_eq!(a.active(), PARTITIONS as usize, "alone, a holds every task");

    let b = Instance::start(&source, &outs, &group, "b");
    assert!(wait_for(Duration::from_secs(60), || b.active() > 0 && a.active() + b.active() == PARTITIONS as usize), "b never took tasks over");
    feed(2 * chunk);

    let c = Instance::start(&source, &outs, &group, "c");
    assert!(wait_for(Duration::from_secs(60), || c.active() > 0 && a.active() + b.active() + c.active() == PARTITIONS as usize), "c never took tasks over");
    feed(3 * chunk);

    // A static member that stops is replaced after the session timeout.
    assert!(b.care.terminate(Duration::from_secs(30)).success());
    assert!(wait_for(Duration::from_secs(60), || a.active() + c.active() == PARTITIONS as usize), "b's tasks were never taken over");
    feed(4 * chunk);

    assert!(c.care.terminate(Duration::from_secs(30)).success());
    assert!(wait_for(Duration::from_secs(60), || a.active() == PARTITIONS as usize), "c's tasks were never taken over");
    feed(recs.len());

    let got = consume(&[&outs[0], &outs[1], &outs[2], &profiles_topic(&outs), &anomalies_topic(&outs)], want.len() + 1, Duration::from_secs(10));
    assert!(a.care.terminate(Duration::from_secs(30)).success());
    assert_eq!(got.len(), want.len(), "published {} records, a single uninterrupted instance {}", got.len(), want.len());
    assert_same_records(got.iter().map(from_kafka).collect(), want, &outs[2]);
    let _ = std::fs::remove_file(cfg);
}
