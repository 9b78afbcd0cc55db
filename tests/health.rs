//! Honest probes, as Kubernetes would read them: `/livez` fails when the
//! processing loop is stuck (and only then: a broker outage is tested in
//! broker_restart.rs), and an instance whose assignment holds no task is
//! ready, so a rollout with more replicas than partitions does not stall.

mod common;

use std::time::Duration;

use common::*;

fn with_stall_secs(text: &str, port: u16, secs: u64) -> String {
    text.replace(&format!("listen = \"127.0.0.1:{port}\""), &format!("listen = \"127.0.0.1:{port}\"\nstall_secs = {secs}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_processing_loop_fails_livez_while_metrics_still_answer() {
    let source = unique("web");
    create_topics(&[&source], 1).await;
    let recs = stream_of(5, 6, 0);
    produce(&recs.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
    let (outs, port) = (outputs(), free_port());
    let cfg = write_config(&with_stall_secs(&config(&source, &outs, &unique("care"), port, ""), port, 2));
    let _care = CareProcess::start_with(&["run", "--config", cfg.to_str().unwrap()], &[("CARE_FAULT", "stall:50")]);
    assert!(wait_for(Duration::from_secs(30), || http_get(port, "/livez").0 == 200), "live at first");
    assert!(wait_for(Duration::from_secs(30), || http_get(port, "/livez").0 == 503), "not live once the loop is stuck");
    let (status, body) = http_get(port, "/healthz");
    assert!(status == 503 && body.contains("has not turned"), "/healthz is /livez: {status} {body}");
    assert_eq!(http_get(port, "/metrics").0, 200);
    let _ = std::fs::remove_file(cfg);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_without_tasks_is_ready() {
    let source = unique("web");
    create_topics(&[&source], 1).await;
    let (outs, group) = (outputs(), unique("care"));
    let (p1, p2) = (free_port(), free_port());
    let c1 = write_config(&config(&source, &outs, &group, p1, ""));
    let c2 = write_config(&config(&source, &outs, &group, p2, ""));
    let first = CareProcess::start(&["run", "--config", c1.to_str().unwrap(), "--instance-id", "one"]);
    assert!(wait_for(Duration::from_secs(30), || http_get(p1, "/readyz").0 == 200), "the first instance holds the one task");
    let second = CareProcess::start(&["run", "--config", c2.to_str().unwrap(), "--instance-id", "two"]);
    assert!(wait_for(Duration::from_secs(30), || http_get(p2, "/readyz").1.contains("no tasks")), "{:?}", http_get(p2, "/readyz"));
    assert_eq!(http_get(p2, "/readyz").0, 200);
    assert_eq!(http_get(p2, "/tasks").1.trim(), "{}");
    assert!(second.terminate(Duration::from_secs(30)).success());
    assert!(first.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(c1);
    let _ = std::fs::remove_file(c2);
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_lookups_need_the_bearer_token_and_a_miss_names_the_partition() {
    let source = unique("web");
    create_topics(&[&source], 3).await;
    let (outs, port) = (outputs(), free_port());
    let cfg = write_config(&config(&source, &outs, &unique("care"), port, ""));
    let care = CareProcess::start_with(&["run", "--config", cfg.to_str().unwrap()], &[("CARE_HTTP__TOKEN", "tok-4c2e")]);
    assert!(wait_for(Duration::from_secs(30), || http_get(port, "/readyz").0 == 200));
    assert_eq!(http_get(port, "/customers/nobody").0, 401, "no token");
    assert_eq!(http_get_with(port, "/customers/nobody", "Authorization: Bearer wrong\r\n").0, 401, "a wrong token");
    let (status, body) = http_get_with(port, "/customers/nobody", "Authorization: Bearer tok-4c2e\r\n");
    let p = care::partition::for_key(b"nobody", 3);
    assert!(status == 404 && body.contains(&format!("partition {p}")), "{status} {body}");
    assert_eq!(http_get(port, "/metrics").0, 200, "only customer look-ups are guarded");
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
}

/// The one task an instance holds, from its `/tasks`, once it holds exactly one.
fn only_task(port: u16) -> Option<i32> {
    let tasks: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&http_get(port, "/tasks").1).ok()?;
    let mut keys = tasks.keys();
    let only = keys.next()?.strip_prefix("0_")?.parse().ok();
    keys.next().is_none().then_some(only?)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_held_by_another_instance_gets_a_404_naming_the_instance_to_ask() {
    let source = unique("web");
    create_topics(&[&source], 2).await;
    let (outs, group) = (outputs(), unique("care"));
    let (p1, p2) = (free_port(), free_port());
    let c1 = write_config(&config(&source, &outs, &group, p1, ""));
    let c2 = write_config(&config(&source, &outs, &group, p2, ""));
    let first = CareProcess::start(&["run", "--config", c1.to_str().unwrap(), "--instance-id", "one"]);
    assert!(wait_for(Duration::from_secs(30), || http_get(p1, "/readyz").0 == 200));
    let second = CareProcess::start(&["run", "--config", c2.to_str().unwrap(), "--instance-id", "two"]);
    assert!(
        wait_for(Duration::from_secs(60), || only_task(p1).is_some() && only_task(p2).is_some() && http_get(p2, "/readyz").0 == 200),
        "the two instances split the two tasks: {:?} {:?}",
        http_get(p1, "/tasks"),
        http_get(p2, "/tasks")
    );
    let theirs = only_task(p2).unwrap();
    let id = (0..).map(|i| format!("cust-{i}")).find(|id| care::partition::for_key(id.as_bytes(), 2) == theirs).unwrap();
    let path = format!("/customers/{id}");
    // The first learns what the second holds from its announcements.
    let want = format!("held by instance two: ask http://127.0.0.1:{p2}{path}");
    assert!(wait_for(Duration::from_secs(30), || http_get(p1, &path).1.contains(&want)), "{:?}", http_get(p1, &path));
    assert_eq!(http_get(p1, &path).0, 404);
    assert!(http_get(p1, &path).1.contains(&format!("task 0_{theirs} (partition {theirs})")));
    // Asked there, the instance that holds the task says it has no such customer.
    let (status, body) = http_get(p2, &path);
    assert!(status == 404 && body.contains("held by this instance (two)"), "{status} {body}");
    // Once the second stops, its tombstone takes it out of the first's directory at once.
    assert!(second.terminate(Duration::from_secs(30)).success());
    assert!(wait_for(Duration::from_secs(10), || !http_get(p1, &path).1.contains("instance two")), "{:?}", http_get(p1, &path));
    assert!(first.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(c1);
    let _ = std::fs::remove_file(c2);
}

#[test]
fn a_broker_that_does_not_answer_at_start_is_waited_for_and_named() {
    // A port nothing listens on: care says what it waits for, then gives up naming it.
    let port = free_port();
    let cfg = write_config(&config("web", &outputs(), &unique("care"), free_port(), "").replace(&format!("brokers = \"{}\"", brokers()), &format!("brokers = \"127.0.0.1:{port}\"")));
    let started = std::time::Instant::now();
    let (status, log) = CareProcess::start_capturing(&["run", "--config", cfg.to_str().unwrap()]).exit_with_stderr(Duration::from_secs(60));
    assert!(!status.success(), "{log}");
    let waiting = log.find("Waiting for Kafka to answer").unwrap_or_else(|| panic!("no wait named: {log}"));
    let failed = log.find(&format!("cannot reach Kafka at 127.0.0.1:{port}")).unwrap_or_else(|| panic!("{log}"));
    assert!(waiting < failed, "{log}");
    assert!(started.elapsed() < Duration::from_secs(40), "{:?}", started.elapsed());
    let _ = std::fs::remove_file(cfg);
}
