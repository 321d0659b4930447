//! End to end through a real Kafka broker: receiver, forwarder, and the capture server.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use gwen_segment::capture::Failure;
use gwen_segment::kafka::headers;
use gwen_segment::mapping::{MappingConfig, map_webhook};

const FIXTURES: [&str; 6] = [
    "achievement_update.json",
    "progression_update.json",
    "mission_update.json",
    "shop_item_update.json",
    "wallet_update.json",
    "webhook_verification.json",
];

/// Maps a webhook whose own timestamp is used, as the forwarder does.
fn expected_event(webhook: &str) -> serde_json::Value {
    let event = map_webhook(
        webhook.trim().as_bytes(),
        chrono::Utc::now(),
        &MappingConfig::default(),
    )
    .unwrap();
    serde_json::from_slice(&event.json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_reaches_segment_as_expected_event() {
    require_broker();
    let topic = unique("pipeline-fixtures");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &unique("group"),
        &capture.url,
    ))
    .await;

    let mut expected = Vec::new();
    for name in FIXTURES {
        let webhook = fixture(name);
        post_ok(&receiver.url, &webhook).await;
        expected.push(expected_event(&webhook));
    }
    let batch = fixture("batch.json");
    post_ok(&receiver.url, &batch).await;
    let batch: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(&batch).unwrap();
    for webhook in &batch {
        expected.push(expected_event(webhook.get()));
    }

    wait_until(Duration::from_secs(30), "every event at capture", || {
        capture.capture.events().len() >= expected.len()
    })
    .await;
    let events = capture.capture.events();
    assert_eq!(events.len(), expected.len(), "events: {events:#?}");
    for event in &expected {
        assert!(
            events.contains(event),
            "missing event {event:#}\ngot {events:#?}"
        );
    }

    forwarder.stop().await;
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_user_id_key_and_headers() {
    require_broker();
    let topic = unique("pipeline-records");
    let receiver = start_receiver(&topic).await;

    let response = reqwest::Client::new()
        .post(&receiver.url)
        .basic_auth(WEBHOOK_KEY, Some(""))
        .header("x-request-id", "req-123")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .body(format!("{}\n", fixture("wallet_update.json").trim()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"accepted":1}"#);

    let records = read_topic(&topic, 1, Duration::from_secs(20));
    assert_eq!(records.len(), 1);
    let record = &records[0];
    use rdkafka::Message;
    assert_eq!(
        record.key(),
        Some(b"a2d4f6b8-1c3e-4a5b-8d7f-9e0a1b2c3d4e".as_slice())
    );
    assert_eq!(
        record.payload(),
        Some(fixture("wallet_update.json").trim().as_bytes())
    );
    assert_eq!(
        header(record, headers::REQUEST_ID).as_deref(),
        Some("req-123")
    );
    assert_eq!(
        header(record, headers::CONTENT_TYPE).as_deref(),
        Some("application/json")
    );
    assert_eq!(
        header(record, headers::TRACEPARENT).as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    let received_at = header(record, headers::RECEIVED_AT).unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&received_at).is_ok(),
        "{received_at}"
    );
    assert!(
        received_at.ends_with('Z') && received_at.len() == 24,
        "{received_at}"
    );

    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_segment_commits_nothing_until_recovery() {
    require_broker();
    let topic = unique("pipeline-outage");
    let group_id = unique("group");
    let capture = start_capture().await;
    capture.capture.script.fail_next(
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            retry_after: None,
        },
        u64::MAX,
    );
    let receiver = start_receiver(&topic).await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &group_id,
        &capture.url,
    ))
    .await;

    let webhooks: Vec<String> = (0..30)
        .map(|i| {
            format!(
                r#"{{"type":"wallet_update","userId":"user-{i}","timestamp":1764853200,"n":{i}}}"#
            )
        })
        .collect();
    for webhook in &webhooks {
        post_ok(&receiver.url, webhook).await;
    }

    // Several failed attempts, each longer than the commit interval of the test settings.
    wait_until(
        Duration::from_secs(30),
        "retries against the failing capture",
        || capture.capture.request_count() >= 6,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let committed = committed_offsets(&group_id, &topic, 6);
    for (partition, offset) in &committed {
        assert!(
            offset.is_none_or(|o| o == 0),
            "partition {partition} committed {offset:?} while Segment failed"
        );
    }
    assert!(capture.capture.events().is_empty());

    capture.capture.script.recover();
    wait_until(
        Duration::from_secs(30),
        "every event after recovery",
        || capture.capture.events().len() >= webhooks.len(),
    )
    .await;
    let expected: HashSet<String> = webhooks
        .iter()
        .map(|w| expected_event(w)["messageId"].as_str().unwrap().to_string())
        .collect();
    let delivered: HashSet<String> = capture.message_ids().into_iter().collect();
    assert_eq!(delivered, expected);

    let ends = end_offsets(&topic, 6);
    wait_until(
        Duration::from_secs(20),
        "offsets committed to the end",
        || {
            let committed = committed_offsets(&group_id, &topic, 6);
            ends.iter()
                .all(|(p, end)| *end == 0 || committed.get(p) == Some(&Some(*end)))
        },
    )
    .await;

    forwarder.stop().await;
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_go_to_dlq_without_blocking_partition() {
    require_broker();
    let topic = unique("pipeline-dlq");
    let dlq_topic = unique("dlq");
    let group_id = unique("group");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;

    // Partition 0: invalid JSON, then a webhook without userId, then a good webhook.
    let invalid_offset = produce(&topic, 0, Some("key-1"), b"{not json").await;
    let no_user_offset = produce(
        &topic,
        0,
        None,
        br#"{"type":"wallet_update","timestamp":1764853200}"#,
    )
    .await;
    let good = r#"{"type":"wallet_update","userId":"u-good","timestamp":1764853200}"#;
    let good_offset = produce(&topic, 0, Some("u-good"), good.as_bytes()).await;
    // And one without userId through the receiver, which keeps its headers.
    post_ok(
        &receiver.url,
        r#"{"type":"mission_update","timestamp":1764853200}"#,
    )
    .await;

    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &dlq_topic,
        &group_id,
        &capture.url,
    ))
    .await;
    wait_until(Duration::from_secs(30), "the good event", || {
        !capture.capture.events().is_empty()
    })
    .await;
    assert_eq!(
        capture.message_ids(),
        vec![
            expected_event(good)["messageId"]
                .as_str()
                .unwrap()
                .to_string()
        ]
    );

    let letters = read_topic(&dlq_topic, 3, Duration::from_secs(30));
    assert_eq!(letters.len(), 3, "dead letters: {letters:?}");
    use rdkafka::Message;
    let by_offset = |offset: i64| {
        letters
            .iter()
            .find(|m| {
                header(m, headers::DLQ_SOURCE_PARTITION).as_deref() == Some("0")
                    && header(m, headers::DLQ_SOURCE_OFFSET) == Some(offset.to_string())
            })
            .unwrap_or_else(|| panic!("no dead letter for offset {offset}"))
    };

    let invalid = by_offset(invalid_offset);
    assert_eq!(
        header(invalid, headers::DLQ_KIND).as_deref(),
        Some("invalid_webhook")
    );
    assert_eq!(invalid.key(), Some(b"key-1".as_slice()));
    assert_eq!(invalid.payload(), Some(b"{not json".as_slice()));
    assert_eq!(
        header(invalid, headers::DLQ_SOURCE_TOPIC),
        Some(topic.clone())
    );
    assert!(header(invalid, headers::DLQ_REASON).is_some_and(|r| r.contains("not valid JSON")));
    assert!(
        header(invalid, headers::DLQ_FAILED_AT)
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(&t).is_ok())
    );
    assert_eq!(header(invalid, headers::DLQ_SEGMENT_STATUS), None);

    let no_user = by_offset(no_user_offset);
    assert_eq!(
        header(no_user, headers::DLQ_KIND).as_deref(),
        Some("missing_user_id")
    );

    let from_receiver = letters
        .iter()
        .find(|m| header(m, headers::REQUEST_ID).is_some())
        .expect("the receiver's record");
    assert_eq!(
        header(from_receiver, headers::DLQ_KIND).as_deref(),
        Some("missing_user_id")
    );
    assert!(header(from_receiver, headers::RECEIVED_AT).is_some());

    wait_until(
        Duration::from_secs(20),
        "partition 0 committed past the dead letters",
        // At least: the receiver's keyless record may land on partition 0 after the good one.
        || committed_offsets(&group_id, &topic, 1)[&0] >= Some(good_offset + 1),
    )
    .await;

    forwarder.stop().await;
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_event_dead_lettered_rest_delivered_in_order() {
    require_broker();
    let topic = unique("pipeline-rejected");
    let dlq_topic = unique("dlq");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;

    // One user's webhooks, in order on one partition; Segment refuses the fourth.
    let webhooks: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"type":"wallet_update","userId":"same-user","timestamp":1764853200,"n":{i}}}"#
            )
        })
        .collect();
    capture
        .capture
        .script
        .reject_message_id(expected_event(&webhooks[3])["messageId"].as_str().unwrap());
    for webhook in &webhooks {
        produce(&topic, 0, Some("same-user"), webhook.as_bytes()).await;
    }
    receiver.shutdown.cancel();

    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &dlq_topic,
        &unique("group"),
        &capture.url,
    ))
    .await;
    wait_until(Duration::from_secs(30), "the accepted events", || {
        capture.capture.events().len() >= 5
    })
    .await;
    let order: Vec<i64> = capture
        .capture
        .events()
        .iter()
        .map(|e| e["properties"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![0, 1, 2, 4, 5]);

    let letters = read_topic(&dlq_topic, 1, Duration::from_secs(30));
    assert_eq!(letters.len(), 1);
    assert_eq!(
        header(&letters[0], headers::DLQ_KIND).as_deref(),
        Some("segment_rejected")
    );
    assert_eq!(
        header(&letters[0], headers::DLQ_SEGMENT_STATUS).as_deref(),
        Some("400")
    );

    forwarder.stop().await;
}

/// Reads one sample's value from Prometheus text, summing over label sets that contain `labels`.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_deliveries_and_dead_letters() {
    require_broker();
    let topic = unique("pipeline-metrics");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &unique("group"),
        &capture.url,
    ))
    .await;
    let before = gwen_segment::metrics::render();

    post_ok(&receiver.url, &fixture("batch.json")).await;
    post_ok(&receiver.url, r#"{"type":"wallet_update"}"#).await;
    assert_eq!(post(&receiver.url, "not json").await.status(), 400);
    wait_until(Duration::from_secs(30), "three events", || {
        capture.capture.events().len() >= 3
    })
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(gwen_segment::admin::run(
        listener,
        vec![forwarder.health.clone()],
        std::future::pending(),
    ));
    let delta = |name: &str, labels: &str, text: &str| {
        sample(text, name, labels) - sample(&before, name, labels)
    };
    let mut text = String::new();
    for _ in 0..300 {
        text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if delta("gwen_dlq_messages_total", "kind=\"missing_user_id\"", &text) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        delta("gwen_dlq_messages_total", "kind=\"missing_user_id\"", &text) >= 1.0,
        "{text}"
    );

    // Other tests in this binary record into the same metrics, so the checks are lower bounds.
    assert!(
        delta("gwen_receiver_requests_total", "status=\"200\"", &text) >= 2.0,
        "{text}"
    );
    assert!(
        delta("gwen_receiver_requests_total", "status=\"400\"", &text) >= 1.0,
        "{text}"
    );
    assert!(
        delta("gwen_receiver_webhooks_accepted_total", "", &text) >= 4.0,
        "{text}"
    );
    assert!(
        delta("gwen_forwarder_events_delivered_total", "", &text) >= 3.0,
        "{text}"
    );
    assert!(
        delta("gwen_segment_requests_total", "class=\"2xx\"", &text) >= 1.0,
        "{text}"
    );
    assert!(text.contains("gwen_forwarder_halted 0"), "{text}");
    assert!(!text.contains("userId"), "a userId leaked into a label");

    forwarder.stop().await;
    receiver.shutdown.cancel();
}
