//! `dlq list`, `dlq show` and `dlq redrive` against a real Kafka broker, with forwarders that
//! dead-letter messages and deliver the re-driven ones to the capture server.

mod common;

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use gwen_segment::kafka::headers;
use gwen_segment::mapping::{MappingConfig, UnknownTypes, message_id};
use gwen_segment::ops::OpsError;
use gwen_segment::ops::dlq::{self, DlqRecord, DlqSelection, DlqSummary};
use gwen_segment::ops::redrive::{RedriveConfig, RedriveReport, redrive};
use gwen_segment::ops::topics::{self, TopicSpec, TopicsConfig};
use rdkafka::Message;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

/// Creates both topics with one partition each, so offsets in the tests are predictable.
async fn create_topics(topic: &str, dlq_topic: &str) {
    let config = TopicsConfig {
        topic: topic.to_string(),
        dlq_topic: dlq_topic.to_string(),
        spec: TopicSpec {
            partitions: 1,
            replication_factor: 1,
            retention: None,
            min_insync_replicas: None,
            max_record_bytes: 900_000,
        },
    };
    let report = topics::ensure(&kafka_settings(), &config).await.unwrap();
    assert!(report.matches(), "{report}");
}

async fn list(dlq_topic: &str, selection: DlqSelection) -> DlqSummary {
    dlq::list(&kafka_settings(), dlq_topic, selection)
        .await
        .unwrap_or_else(|e| panic!("dlq list failed: {e}"))
}

async fn wait_for_dead_letters(dlq_topic: &str, count: u64) -> DlqSummary {
    for _ in 0..150 {
        let summary = list(dlq_topic, DlqSelection::default()).await;
        if summary.total >= count {
            return summary;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{dlq_topic} did not reach {count} record(s) within 30 s");
}

fn redrive_config(topic: &str, dlq_topic: &str, execute: bool) -> RedriveConfig {
    RedriveConfig {
        dlq_topic: dlq_topic.to_string(),
        topic: topic.to_string(),
        selection: DlqSelection::default(),
        include_redriven: false,
        execute,
    }
}

async fn run_redrive(config: RedriveConfig) -> RedriveReport {
    redrive(&kafka_settings(), config)
        .await
        .unwrap_or_else(|e| panic!("dlq redrive failed: {e}"))
}

fn names(record: &DlqRecord, name: &str) -> usize {
    record.headers.iter().filter(|(key, _)| key == name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_delivers_records_after_mapping_fix() {
    require_broker();
    let topic = unique("dlq-redrive");
    let dlq_topic = unique("dlq");
    let group_id = unique("group");
    create_topics(&topic, &dlq_topic).await;
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;
    let mut options = forwarder_options(&topic, &dlq_topic, &group_id, &capture.url);
    options.config.mapping = MappingConfig {
        unknown_types: UnknownTypes::Dlq,
        ..MappingConfig::default()
    };
    let forwarder = start_forwarder(options).await;

    let undocumented: Vec<String> = (0..2)
        .map(|i| {
            format!(r#"{{"type":"season_pass_update","userId":"user-{i}","timestamp":1764853200}}"#)
        })
        .collect();
    for body in &undocumented {
        post_ok(&receiver.url, body).await;
    }
    post_ok(&receiver.url, &fixture("wallet_update.json")).await;
    let summary = wait_for_dead_letters(&dlq_topic, 2).await;
    wait_until(Duration::from_secs(30), "the documented event", || {
        capture.capture.events().len() == 1
    })
    .await;
    forwarder.stop().await;

    assert_eq!(summary.total, 2);
    assert_eq!(summary.by_kind.get("unknown_type"), Some(&2));
    assert_eq!(summary.by_source.get(&(topic.clone(), Some(0))), Some(&2));
    assert_eq!(summary.redriven, 0);

    let first_records = dlq::show(&kafka_settings(), &dlq_topic, DlqSelection::default(), 1)
        .await
        .unwrap();
    assert_eq!(first_records.len(), 1);
    assert_eq!(first_records[0].kind(), "unknown_type");
    let source_offset: usize = first_records[0]
        .header(headers::DLQ_SOURCE_OFFSET)
        .and_then(|offset| offset.parse().ok())
        .expect("a numeric gwen-dlq-source-offset");
    assert_eq!(
        first_records[0].payload.as_deref(),
        Some(undocumented[source_offset].as_bytes())
    );

    let plan = run_redrive(redrive_config(&topic, &dlq_topic, false)).await;
    assert_eq!(plan.selected.total, 2);
    assert_eq!(plan.written, 0);
    assert_eq!(plan.offsets.get(&0), Some(&(0, 1)));
    assert_eq!(end_offsets(&topic, 1)[&0], 3);

    let done = run_redrive(redrive_config(&topic, &dlq_topic, true)).await;
    assert_eq!(done.written, 2);
    let records = read_topic(&topic, 5, Duration::from_secs(20));
    assert_eq!(records.len(), 5);
    for copy in &records[3..] {
        let original = records[..2]
            .iter()
            .find(|original| original.payload() == copy.payload())
            .expect("the copy of an original record");
        assert_eq!(copy.key(), original.key());
        for name in [headers::RECEIVED_AT, headers::REQUEST_ID] {
            assert_eq!(header(copy, name), header(original, name), "{name}");
        }
        assert_eq!(
            header(copy, headers::REDRIVEN_AT).as_deref(),
            Some(done.redriven_at.as_str())
        );
        assert_eq!(header(copy, headers::DLQ_KIND), None);
        assert_eq!(header(copy, headers::DLQ_SOURCE_OFFSET), None);
    }

    // The operator switched the mapping to forward undocumented types.
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &dlq_topic,
        &group_id,
        &capture.url,
    ))
    .await;
    wait_until(Duration::from_secs(30), "the re-driven events", || {
        capture.capture.events().len() == 3
    })
    .await;
    forwarder.stop().await;
    receiver.shutdown.cancel();

    let delivered = capture.message_ids();
    for body in &undocumented {
        let id = message_id("", body.as_bytes());
        assert!(delivered.contains(&id), "missing {id} in {delivered:?}");
    }
    assert_eq!(list(&dlq_topic, DlqSelection::default()).await.total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redriven_record_failing_again_skipped_by_default() {
    require_broker();
    let topic = unique("dlq-again");
    let dlq_topic = unique("dlq");
    let group_id = unique("group");
    create_topics(&topic, &dlq_topic).await;
    let capture = start_capture().await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &dlq_topic,
        &group_id,
        &capture.url,
    ))
    .await;

    let no_user = r#"{"type":"wallet_update","timestamp":1764853200}"#;
    produce(&topic, 0, None, no_user.as_bytes()).await;
    wait_for_dead_letters(&dlq_topic, 1).await;

    let first = run_redrive(redrive_config(&topic, &dlq_topic, true)).await;
    assert_eq!(first.written, 1);
    let summary = wait_for_dead_letters(&dlq_topic, 2).await;
    assert_eq!(summary.by_kind.get("missing_user_id"), Some(&2));
    assert_eq!(summary.redriven, 1);
    wait_until(Duration::from_secs(30), "the commit past the copy", || {
        committed_offsets(&group_id, &topic, 1)[&0] == Some(2)
    })
    .await;
    forwarder.stop().await;

    let records = dlq::show(&kafka_settings(), &dlq_topic, DlqSelection::default(), 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    let again = &records[1];
    assert_eq!(
        again.header(headers::REDRIVEN_AT).as_deref(),
        Some(first.redriven_at.as_str())
    );
    assert_eq!(
        again.header(headers::DLQ_SOURCE_OFFSET).as_deref(),
        Some("1")
    );
    assert_eq!(names(again, headers::DLQ_KIND), 1);
    assert_eq!(names(again, headers::DLQ_SOURCE_OFFSET), 1);

    let plan = run_redrive(redrive_config(&topic, &dlq_topic, false)).await;
    assert_eq!(plan.skipped_redriven, 1);
    assert_eq!(plan.selected.total, 1);
    assert_eq!(plan.offsets.get(&0), Some(&(0, 0)));
    assert!(plan.to_string().contains("--include-redriven"), "{plan}");

    let everything = RedriveConfig {
        include_redriven: true,
        ..redrive_config(&topic, &dlq_topic, false)
    };
    let everything = run_redrive(everything).await;
    assert_eq!(everything.selected.total, 2);
    assert_eq!(everything.skipped_redriven, 0);

    let only_second = RedriveConfig {
        selection: DlqSelection {
            from_offset: Some(1),
            ..DlqSelection::default()
        },
        ..redrive_config(&topic, &dlq_topic, false)
    };
    let only_second = run_redrive(only_second).await;
    assert_eq!(only_second.selected.total, 0);
    assert_eq!(only_second.skipped_redriven, 1);
    assert_eq!(end_offsets(&topic, 1)[&0], 2);
}

/// Writes a dead-letter record by hand, with a kind and a record timestamp.
async fn produce_dead_letter(dlq_topic: &str, kind: &str, payload: &str, time: DateTime<Utc>) {
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: headers::DLQ_KIND,
            value: Some(kind),
        })
        .insert(Header {
            key: headers::DLQ_SOURCE_TOPIC,
            value: Some("gwen.webhooks"),
        })
        .insert(Header {
            key: headers::DLQ_SOURCE_PARTITION,
            value: Some("3"),
        });
    let record = FutureRecord::<str, str>::to(dlq_topic)
        .partition(0)
        .payload(payload)
        .headers(headers)
        .timestamp(time.timestamp_millis());
    producer()
        .send(record, Duration::from_secs(10))
        .await
        .unwrap_or_else(|(e, _)| panic!("produce failed: {e}"));
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_selection_by_time_kind_and_offsets() {
    require_broker();
    let topic = unique("dlq-select");
    let dlq_topic = unique("dlq");
    create_topics(&topic, &dlq_topic).await;
    let kinds = [
        "invalid_webhook",
        "missing_user_id",
        "missing_user_id",
        "event_too_large",
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let time = at("2025-12-04T13:00:00Z") + chrono::Duration::hours(i as i64);
        produce_dead_letter(&dlq_topic, kind, &format!("payload-{i}"), time).await;
    }

    let all = list(&dlq_topic, DlqSelection::default()).await;
    assert_eq!(all.total, 4);
    assert_eq!(
        all.by_source.get(&("gwen.webhooks".to_string(), Some(3))),
        Some(&4)
    );

    let middle = DlqSelection {
        since: Some(at("2025-12-04T14:00:00Z")),
        until: Some(at("2025-12-04T16:00:00Z")),
        ..DlqSelection::default()
    };
    let middle = list(&dlq_topic, middle).await;
    assert_eq!(middle.total, 2);
    assert_eq!(middle.by_kind.get("missing_user_id"), Some(&2));

    let one_kind = DlqSelection {
        kinds: vec!["missing_user_id".to_string()],
        to_offset: Some(1),
        ..DlqSelection::default()
    };
    let selected = dlq::show(&kafka_settings(), &dlq_topic, one_kind, 10)
        .await
        .unwrap();
    let offsets: Vec<i64> = selected.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, vec![1]);

    let after_end = DlqSelection {
        from_offset: Some(10),
        ..DlqSelection::default()
    };
    assert_eq!(list(&dlq_topic, after_end).await.total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_cli_shows_payload_only_when_asked() {
    require_broker();
    let topic = unique("dlq-cli");
    let dlq_topic = unique("dlq");
    create_topics(&topic, &dlq_topic).await;
    produce_dead_letter(&dlq_topic, "missing_user_id", "secret-payload", Utc::now()).await;

    let run = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
            .args(["dlq"])
            .args(extra)
            .args(["--brokers", &brokers(), "--dlq-topic", &dlq_topic])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };

    let hidden = run(&["show"]);
    assert!(
        hidden.contains("gwen-dlq-kind: missing_user_id"),
        "{hidden}"
    );
    assert!(!hidden.contains("secret-payload"), "{hidden}");
    let with_payload = run(&["show", "--show-payload"]);
    assert!(with_payload.contains("secret-payload"), "{with_payload}");
    let listed = run(&["list"]);
    assert!(listed.contains("missing_user_id"), "{listed}");
    let planned = run(&["redrive", "--topic", &topic]);
    assert!(planned.contains("dry run"), "{planned}");
    assert_eq!(end_offsets(&topic, 1)[&0], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_rejects_missing_main_topic() {
    require_broker();
    let dlq_topic = unique("dlq");
    create_topics(&unique("dlq-missing-main"), &dlq_topic).await;
    let missing = unique("missing-main");

    let result = redrive(
        &kafka_settings(),
        redrive_config(&missing, &dlq_topic, true),
    )
    .await;

    let error = result.expect_err("a redrive to a missing topic must fail");
    assert!(
        matches!(error, OpsError::TopicNotFound { ref topic } if *topic == missing),
        "{error:?}"
    );
    assert_eq!(partition_count_of(&missing), None);
}

fn partition_count_of(topic: &str) -> Option<usize> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_rejects_reversed_offset_range() {
    let config = RedriveConfig {
        selection: DlqSelection {
            from_offset: Some(5),
            to_offset: Some(2),
            ..DlqSelection::default()
        },
        ..redrive_config("gwen.webhooks", "gwen.webhooks.dlq", true)
    };

    let error = redrive(&kafka_settings(), config).await.unwrap_err();

    assert!(
        matches!(
            error,
            OpsError::InvalidOption {
                option: "--from-offset",
                ..
            }
        ),
        "{error:?}"
    );
}
