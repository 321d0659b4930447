//! `replay` and `forwarder --start-at` against a real Kafka broker: offsets are planned, clamped
//! and committed, and replayed events reach the capture server again with their messageIds.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use gwen_segment::kafka::{TopicPolicy, ensure_topics};
use gwen_segment::mapping::message_id;
use gwen_segment::ops::OpsError;
use gwen_segment::ops::replay::{ReplayConfig, ReplayReport, ReplayTarget, replay};
use gwen_segment::ops::start_at::{StartAt, apply_start_at};
use gwen_segment::service::ForwarderOptions;
use rdkafka::producer::FutureRecord;

fn webhook(i: usize) -> String {
    format!(r#"{{"type":"wallet_update","userId":"user-{i}","timestamp":1764853200,"n":{i}}}"#)
}

async fn create_topic(topic: &str, partitions: i32) {
    let policy = TopicPolicy {
        create_missing: true,
        partitions,
    };
    ensure_topics(&kafka_settings(), &[topic], policy)
        .await
        .unwrap();
}

/// Produces `value` to `partition` with the record timestamp `time`.
async fn produce_at(topic: &str, partition: i32, value: &str, time: DateTime<Utc>) -> i64 {
    let record = FutureRecord::<str, str>::to(topic)
        .partition(partition)
        .payload(value)
        .timestamp(time.timestamp_millis());
    producer()
        .send(record, Duration::from_secs(10))
        .await
        .unwrap_or_else(|(e, _)| panic!("produce failed: {e}"))
        .offset
}

fn config(group_id: &str, topic: &str, target: ReplayTarget, execute: bool) -> ReplayConfig {
    ReplayConfig {
        group_id: group_id.to_string(),
        topic: topic.to_string(),
        target,
        partitions: None,
        execute,
    }
}

async fn run_replay(config: ReplayConfig) -> ReplayReport {
    replay(&kafka_settings(), config)
        .await
        .unwrap_or_else(|e| panic!("replay failed: {e}"))
}

fn targets(report: &ReplayReport) -> HashMap<i32, i64> {
    report
        .partitions
        .iter()
        .map(|p| (p.partition, p.target))
        .collect()
}

fn count_by_id(ids: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_earliest_redelivers_same_message_ids() {
    require_broker();
    let topic = unique("replay-earliest");
    let group_id = unique("group");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;
    let options = || forwarder_options(&topic, &unique("dlq"), &group_id, &capture.url);
    let forwarder = start_forwarder(options()).await;

    let webhooks: Vec<String> = (0..10).map(webhook).collect();
    for body in &webhooks {
        post_ok(&receiver.url, body).await;
    }
    wait_until(Duration::from_secs(30), "the first delivery", || {
        capture.capture.events().len() >= webhooks.len()
    })
    .await;
    forwarder.stop().await;
    let ends = end_offsets(&topic, 6);
    let before = committed_offsets(&group_id, &topic, 6);
    for (partition, end) in &ends {
        let expected = (*end > 0).then_some(*end);
        assert_eq!(before[partition], expected, "partition {partition}");
    }

    let plan = run_replay(config(&group_id, &topic, ReplayTarget::Earliest, false)).await;
    assert!(!plan.executed);
    assert_eq!(plan.redelivered(), webhooks.len() as i64);
    assert_eq!(plan.skipped(), 0);
    assert_eq!(committed_offsets(&group_id, &topic, 6), before);

    let done = run_replay(config(&group_id, &topic, ReplayTarget::Earliest, true)).await;
    assert!(done.executed);
    assert_eq!(done.redelivered(), webhooks.len() as i64);
    for (partition, offset) in committed_offsets(&group_id, &topic, 6) {
        assert_eq!(offset, Some(0), "partition {partition}");
    }

    let forwarder = start_forwarder(options()).await;
    wait_until(Duration::from_secs(30), "the replayed events", || {
        capture.capture.events().len() >= 2 * webhooks.len()
    })
    .await;
    forwarder.stop().await;
    receiver.shutdown.cancel();

    let counts = count_by_id(&capture.message_ids());
    assert_eq!(counts.len(), webhooks.len(), "{counts:?}");
    for body in &webhooks {
        let id = message_id("", body.as_bytes());
        assert_eq!(counts.get(&id), Some(&2), "messageId {id}: {counts:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rejected_while_group_has_members() {
    require_broker();
    let topic = unique("replay-active");
    let group_id = unique("group");
    let capture = start_capture().await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &group_id,
        &capture.url,
    ))
    .await;
    produce(&topic, 0, Some("user-1"), webhook(1).as_bytes()).await;
    wait_until(Duration::from_secs(30), "the delivery", || {
        capture.capture.events().len() == 1
    })
    .await;

    for execute in [false, true] {
        let result = replay(
            &kafka_settings(),
            config(&group_id, &topic, ReplayTarget::Earliest, execute),
        )
        .await;
        let error = result.expect_err("replay must be rejected while a forwarder runs");
        assert!(
            matches!(error, OpsError::GroupActive { ref members, .. } if members.len() == 1),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("scale the forwarders"),
            "{error}"
        );
    }
    forwarder.stop().await;
    assert_eq!(committed_offsets(&group_id, &topic, 6)[&0], Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_targets_clamped_to_watermarks() {
    require_broker();
    let topic = unique("replay-targets");
    let group_id = unique("group");
    create_topic(&topic, 2).await;
    let base = DateTime::parse_from_rfc3339("2025-12-04T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let minute = chrono::Duration::minutes(1);
    for i in 0..10 {
        produce_at(&topic, 0, &webhook(i), base + minute * i as i32).await;
    }
    for i in 0..4 {
        produce_at(&topic, 1, &webhook(100 + i), base + minute * i as i32).await;
    }

    // A new group: nothing committed, so the position is the low watermark.
    let at_five = ReplayTarget::Datetime(base + minute * 5);
    let plan = run_replay(config(&group_id, &topic, at_five, false)).await;
    assert_eq!(plan.group_state, "Dead");
    let printed = plan.to_string();
    assert!(printed.contains("check --group-id"), "{printed}");
    assert_eq!(targets(&plan), HashMap::from([(0, 5), (1, 4)]));
    assert_eq!(plan.skipped(), 9);
    assert_eq!(
        committed_offsets(&group_id, &topic, 2),
        HashMap::from([(0, None), (1, None)])
    );

    let latest = run_replay(config(&group_id, &topic, ReplayTarget::Latest, true)).await;
    assert_eq!(targets(&latest), HashMap::from([(0, 10), (1, 4)]));
    assert_eq!(
        committed_offsets(&group_id, &topic, 2),
        HashMap::from([(0, Some(10)), (1, Some(4))])
    );

    let back = run_replay(config(&group_id, &topic, ReplayTarget::ShiftBy(-3), true)).await;
    assert_eq!(targets(&back), HashMap::from([(0, 7), (1, 1)]));
    assert_eq!(back.redelivered(), 6);

    let far_back = run_replay(config(&group_id, &topic, ReplayTarget::ShiftBy(-100), true)).await;
    assert_eq!(targets(&far_back), HashMap::from([(0, 0), (1, 0)]));

    let beyond_end = ReplayConfig {
        partitions: Some(vec![1]),
        ..config(&group_id, &topic, ReplayTarget::Offset(1_000), true)
    };
    let beyond_end = run_replay(beyond_end).await;
    assert_eq!(targets(&beyond_end), HashMap::from([(1, 4)]));

    let at_two = ReplayConfig {
        partitions: Some(vec![0]),
        ..config(
            &group_id,
            &topic,
            ReplayTarget::Datetime(base + minute * 2),
            true,
        )
    };
    run_replay(at_two).await;
    assert_eq!(
        committed_offsets(&group_id, &topic, 2),
        HashMap::from([(0, Some(2)), (1, Some(4))])
    );

    let missing = ReplayConfig {
        partitions: Some(vec![5]),
        ..config(&group_id, &topic, ReplayTarget::Earliest, false)
    };
    let error = replay(&kafka_settings(), missing).await.unwrap_err();
    assert!(
        matches!(error, OpsError::PartitionNotFound { partition: 5, .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_start_at_skips_older_records() {
    require_broker();
    let topic = unique("start-at-new");
    let group_id = unique("group");
    create_topic(&topic, 1).await;
    let now = Utc::now();
    let old: Vec<String> = (0..3).map(webhook).collect();
    let recent: Vec<String> = (3..6).map(webhook).collect();
    for body in &old {
        produce_at(&topic, 0, body, now - chrono::Duration::hours(2)).await;
    }
    for body in &recent {
        produce_at(&topic, 0, body, now - chrono::Duration::minutes(1)).await;
    }

    let capture = start_capture().await;
    let options = ForwarderOptions {
        start_at: Some(now - chrono::Duration::hours(1)),
        ..forwarder_options(&topic, &unique("dlq"), &group_id, &capture.url)
    };
    let forwarder = start_forwarder(options).await;
    wait_until(Duration::from_secs(30), "the offset commit", || {
        committed_offsets(&group_id, &topic, 1)[&0] == Some(6)
    })
    .await;
    forwarder.stop().await;

    let delivered = capture.message_ids();
    let expected: Vec<String> = recent
        .iter()
        .map(|body| message_id("", body.as_bytes()))
        .collect();
    assert_eq!(delivered, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_start_at_ignored_with_committed_offsets() {
    require_broker();
    let topic = unique("start-at-committed");
    let group_id = unique("group");
    create_topic(&topic, 1).await;
    let now = Utc::now();
    let webhooks: Vec<String> = (0..4).map(webhook).collect();
    for body in &webhooks {
        produce_at(&topic, 0, body, now - chrono::Duration::hours(2)).await;
    }
    // Gives the group a committed offset, as a forwarder that ran before would have.
    run_replay(config(&group_id, &topic, ReplayTarget::Offset(1), true)).await;

    let capture = start_capture().await;
    let options = ForwarderOptions {
        start_at: Some(now - chrono::Duration::hours(1)),
        ..forwarder_options(&topic, &unique("dlq"), &group_id, &capture.url)
    };
    let forwarder = start_forwarder(options).await;
    wait_until(
        Duration::from_secs(30),
        "the delivery from the committed offset",
        || capture.capture.events().len() >= 3,
    )
    .await;
    forwarder.stop().await;

    let expected: Vec<String> = webhooks[1..]
        .iter()
        .map(|body| message_id("", body.as_bytes()))
        .collect();
    assert_eq!(capture.message_ids(), expected);
}

#[test]
fn replay_cli_requires_exactly_one_target() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
            .arg("replay")
            .args(args)
            .env_remove("GWEN_GROUP_ID")
            .output()
            .unwrap()
    };
    let none = run(&["--group-id", "g"]);
    assert!(!none.status.success());
    let two = run(&["--group-id", "g", "--to-earliest", "--to-latest"]);
    assert!(!two.status.success());
    let text = String::from_utf8_lossy(&two.stderr);
    assert!(text.contains("cannot be used with"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_cli_prints_dry_run_plan() {
    require_broker();
    let topic = unique("replay-cli");
    let group_id = unique("group");
    create_topic(&topic, 1).await;
    for i in 0..3 {
        produce(&topic, 0, None, webhook(i).as_bytes()).await;
    }

    let output = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .args(["replay", "--brokers", &brokers(), "--group-id", &group_id])
        .args(["--topic", &topic, "--shift-by", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 skipped"), "{stdout}");
    assert!(stdout.contains("add --execute"), "{stdout}");
    assert_eq!(committed_offsets(&group_id, &topic, 1)[&0], None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_commit_rejected_while_group_has_members() {
    require_broker();
    let topic = unique("start-at-race");
    let group_id = unique("group");
    create_topic(&topic, 1).await;
    // A member that joined without --start-at and has nothing to commit yet.
    let capture = start_capture().await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &group_id,
        &capture.url,
    ))
    .await;

    let outcome = apply_start_at(&kafka_settings(), &group_id, &topic, Utc::now())
        .await
        .unwrap();
    forwarder.stop().await;

    assert!(
        matches!(outcome, StartAt::Rejected { ref members } if members.len() == 1),
        "{outcome:?}"
    );
    assert_eq!(committed_offsets(&group_id, &topic, 1)[&0], None);
}
