//! What care publishes, checked from outside through a real broker:
//! `replay` prints byte for byte what `run` publishes, and no single record
//! — however large — can stop `run` or make it loop.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn replay_prints_byte_for_byte_what_run_publishes() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 3).await;
    let recs = stream(11);
    produce(&recs.iter().map(|(k, v)| (source.clone(), k.clone(), v.clone())).collect::<Vec<_>>());
    let port = free_port();
    let cfg = write_config(&config(&source, &outs, &unique("care"), port, ""));

    let replayed = replay_records(&cfg, &recs, 3);
    let count = |t: &str| replayed.iter().filter(|r| r.0 == t).count();
    assert!(count(&outs[0]) >= 10 && count(&outs[1]) >= 10 && count(&outs[2]) == 3, "a stream worth comparing: {} alerts, {} triggers, {} dead letters", count(&outs[0]), count(&outs[1]), count(&outs[2]));

    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);
    let got = consume(&[&outs[0], &outs[1], &outs[2], &profiles_topic(&outs), &anomalies_topic(&outs)], replayed.len(), Duration::from_secs(90));
    // Nothing more arrives late: the count matches exactly.
    let extra = consume(&[&outs[0], &outs[1], &outs[2], &profiles_topic(&outs), &anomalies_topic(&outs)], replayed.len() + 1, Duration::from_secs(2));
    assert_eq!(extra.len(), replayed.len(), "run published {} records, replay printed {}", extra.len(), replayed.len());
    let published: Vec<Rec> = got.iter().map(from_kafka).collect();
    assert!(published.iter().filter(|r| r.0 == outs[2]).all(|r| r.1.is_none()), "null keys stay null");
    assert_same_records(published, replayed, &outs[2]);
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_10_mb_record_is_dead_lettered_cut_and_the_stream_goes_on() {
    let source = unique("web");
    let outs = outputs();
    create_topics_with(&[&source], 1, &[("max.message.bytes", "12000000")]).await;
    let click = |id: &str, d: i64| format!(r#"{{"user":{{"id":"{id}"}},"type":"click","sent_at":{}}}"#, T0 + d * DAY).into_bytes();
    let mut huge = br#"{"user":{"id":"p"},"type":"click","sent_at":1735689600000,"pad":""#.to_vec();
    huge.resize(10 * 1024 * 1024 - 2, b'x');
    huge.extend_from_slice(b"\"}");
    let records = vec![
        (source.clone(), Some("a".to_string()), click("a", 0)),
        (source.clone(), None, huge.clone()),
        (source.clone(), Some("a".to_string()), click("a", 1)),
        (source.clone(), Some("b".to_string()), click("b", 70)), // a turns dormant
    ];
    produce(&records);
    let port = free_port();
    let group = unique("care");
    let cfg = write_config(&config(&source, &outs, &group, port, ""));
    let care = CareProcess::start(&["run", "--config", cfg.to_str().unwrap()]);

    let got = consume(&[&outs[1], &outs[2]], 2, Duration::from_secs(90));
    let dead: Vec<&Got> = got.iter().filter(|g| g.topic == outs[2]).collect();
    assert_eq!(dead.len(), 1, "{:?}", got.iter().map(|g| (&g.topic, g.value.len())).collect::<Vec<_>>());
    let d = dead[0];
    assert_eq!(d.raw_key, None, "a null key stays null");
    assert_eq!(d.header("care_error_code"), Some("oversized"));
    assert_eq!(d.header("care_original_size"), Some((10 * 1024 * 1024).to_string().as_str()));
    assert!(d.value.len() == 64 * 1024 && d.value == huge[..64 * 1024], "the first max_record_bytes bytes, {} here", d.value.len());
    let dormant: Vec<&Got> = got.iter().filter(|g| g.topic == outs[1]).collect();
    assert_eq!(dormant.len(), 1, "records after the huge one are processed");
    assert_eq!(dormant[0].key, "a");
    assert!(wait_for(Duration::from_secs(20), || committed(&group, &source) == records.len() as i64), "every offset committed, the huge one included");
    assert!(care.terminate(Duration::from_secs(30)).success());
    let _ = std::fs::remove_file(cfg);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dlq_too_small_for_the_largest_dead_letter_fails_at_start_naming_it() {
    let source = unique("web");
    let outs = outputs();
    create_topics(&[&source], 1).await;
    create_topics_with(&[&outs[2]], 1, &[("max.message.bytes", "100000")]).await;
    let cfg = write_config(&config(&source, &outs, &unique("care"), free_port(), "max_record_bytes = 200000"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_care")).args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&outs[2]) && err.contains("max.message.bytes") && err.contains("engine.max_record_bytes"), "{err}");
    let _ = std::fs::remove_file(cfg);
}
