//! Delivery under faults, against the real broker and a capture server scripted to fail:
//! nothing is lost, nothing is committed before Segment acknowledged it, and memory stays bounded.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use gwen_segment::capture::Failure;
use gwen_segment::mapping::{MappingConfig, map_webhook, message_id};
use serde::Deserialize;
use serde_json::value::RawValue;

fn webhooks(prefix: &str, count: usize, padding: usize) -> Vec<String> {
    let pad = "p".repeat(padding);
    (0..count)
        .map(|n| {
            format!(r#"{{"type":"wallet_update","userId":"{prefix}-{}","timestamp":1764853200,"n":{n},"pad":"{pad}"}}"#, n % 50)
        })
        .collect()
}

fn message_ids(webhooks: &[String]) -> HashSet<String> {
    webhooks
        .iter()
        .map(|w| {
            map_webhook(w.as_bytes(), chrono::Utc::now(), &MappingConfig::default())
                .unwrap()
                .message_id
        })
        .collect()
}

/// Posts the webhooks in arrays of `per_request`.
async fn post_all(url: &str, webhooks: &[String], per_request: usize) {
    for chunk in webhooks.chunks(per_request) {
        post_ok(url, &format!("[{}]", chunk.join(","))).await;
    }
}

fn delivered_ids(capture: &CaptureServer) -> HashSet<String> {
    capture.message_ids().into_iter().collect()
}

/// Resident memory of a process, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    kilobytes * 1024
}

fn nothing_committed(group_id: &str, topic: &str) -> bool {
    committed_offsets(group_id, topic, 6)
        .values()
        .all(Option::is_none)
}

async fn wait_committed_to_end(group_id: &str, topic: &str) {
    let ends = end_offsets(topic, 6);
    wait_until(
        Duration::from_secs(30),
        "offsets committed to the end",
        || {
            let committed = committed_offsets(group_id, topic, 6);
            ends.iter()
                .all(|(p, end)| *end == 0 || committed.get(p) == Some(&Some(*end)))
        },
    )
    .await;
}

/// The forwarder's memory stays under this during a Segment outage with a growing backlog.
const OUTAGE_RSS_LIMIT: u64 = 100 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_of_30s_loses_nothing_with_bounded_memory() {
    require_broker();
    let topic = unique("faults-outage");
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
    // A small in-flight limit, so the 40 MB backlog has to wait in Kafka, not in memory.
    let mut forwarder = spawn_forwarder(
        &topic,
        &unique("dlq"),
        &group_id,
        &capture.url,
        &[
            "--max-in-flight-bytes",
            "8388608",
            "--retry-max-backoff",
            "2s",
        ],
    )
    .await;

    let webhooks = webhooks("outage", 20_000, 2_000);
    let started = Instant::now();
    post_all(&receiver.url, &webhooks, 100).await;

    let mut peak_rss = 0;
    while started.elapsed() < Duration::from_secs(30) {
        peak_rss = peak_rss.max(rss_bytes(forwarder.id()));
        assert!(
            nothing_committed(&group_id, &topic),
            "an offset was committed while Segment failed"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        capture.capture.request_count() >= 3,
        "the forwarder did not retry"
    );
    assert!(capture.capture.events().is_empty());
    assert!(peak_rss > 0, "cannot read the forwarder's memory");
    assert!(
        peak_rss < OUTAGE_RSS_LIMIT,
        "forwarder RSS reached {peak_rss} bytes during the outage"
    );
    eprintln!(
        "forwarder peak RSS during the outage: {} MiB",
        peak_rss / 1024 / 1024
    );

    capture.capture.script.recover();
    let expected = message_ids(&webhooks);
    wait_until(
        Duration::from_secs(120),
        "every event after recovery",
        || delivered_ids(&capture) == expected,
    )
    .await;
    peak_rss = peak_rss.max(rss_bytes(forwarder.id()));
    assert!(
        peak_rss < OUTAGE_RSS_LIMIT,
        "forwarder RSS reached {peak_rss} bytes while catching up"
    );
    wait_committed_to_end(&group_id, &topic).await;

    assert!(terminate(&mut forwarder).success());
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_retry_after_honoured_in_order() {
    require_broker();
    let topic = unique("faults-429");
    let capture = start_capture().await;
    let failure = Failure {
        status: StatusCode::TOO_MANY_REQUESTS,
        retry_after: Some(Duration::from_secs(1)),
    };
    capture.capture.script.fail_next(failure, 3);

    // One user's webhooks, in order on one partition.
    let webhooks: Vec<String> = (0..20)
        .map(|n| {
            format!(r#"{{"type":"wallet_update","userId":"same","timestamp":1764853200,"n":{n}}}"#)
        })
        .collect();
    for webhook in &webhooks {
        produce(&topic, 0, Some("same"), webhook.as_bytes()).await;
    }

    let started = Instant::now();
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &unique("group"),
        &capture.url,
    ))
    .await;
    wait_until(Duration::from_secs(30), "every event", || {
        capture.capture.events().len() >= webhooks.len()
    })
    .await;

    // Three refused requests, each followed by a wait of at least Retry-After, then one success.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(capture.capture.request_count(), 4);
    let order: Vec<i64> = capture
        .capture
        .events()
        .iter()
        .map(|e| e["properties"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, (0..20).collect::<Vec<i64>>());
    forwarder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_halts_until_key_accepted() {
    require_broker();
    let topic = unique("faults-401");
    let group_id = unique("group");
    let capture = start_capture().await;
    capture.capture.script.fail_next(
        Failure {
            status: StatusCode::UNAUTHORIZED,
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

    let webhooks = webhooks("halt", 50, 0);
    post_all(&receiver.url, &webhooks, 10).await;
    wait_until(Duration::from_secs(30), "repeated 401s", || {
        capture.capture.request_count() >= 3
    })
    .await;

    let readiness = forwarder.health.readiness();
    assert!(
        readiness
            .as_ref()
            .is_err_and(|reason| reason.contains("halted")),
        "{readiness:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        nothing_committed(&group_id, &topic),
        "an offset was committed while Segment answered 401"
    );
    assert!(capture.capture.events().is_empty());

    capture.capture.script.recover();
    let expected = message_ids(&webhooks);
    wait_until(
        Duration::from_secs(30),
        "every event after the key was accepted",
        || delivered_ids(&capture) == expected,
    )
    .await;
    wait_until(Duration::from_secs(5), "ready again", || {
        forwarder.health.readiness().is_ok()
    })
    .await;
    wait_committed_to_end(&group_id, &topic).await;

    forwarder.stop().await;
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_batch_exits_cleanly_and_loses_nothing() {
    require_broker();
    let topic = unique("faults-sigterm");
    let dlq_topic = unique("dlq");
    let group_id = unique("group");
    let capture = start_capture().await;
    capture.capture.script.set_latency(Duration::from_secs(2));
    let receiver = start_receiver(&topic).await;

    let webhooks = webhooks("term", 200, 0);
    post_all(&receiver.url, &webhooks, 50).await;
    let mut forwarder = spawn_forwarder(
        &topic,
        &dlq_topic,
        &group_id,
        &capture.url,
        &["--shutdown-timeout", "10s"],
    )
    .await;
    wait_until(Duration::from_secs(60), "a request in flight", || {
        capture.capture.request_count() >= 1
    })
    .await;

    let stopping = Instant::now();
    let status = terminate(&mut forwarder);
    assert!(status.success(), "the forwarder exited with {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        stopping.elapsed()
    );

    capture.capture.script.set_latency(Duration::ZERO);
    let mut restarted = spawn_forwarder(&topic, &dlq_topic, &group_id, &capture.url, &[]).await;
    let expected = message_ids(&webhooks);
    wait_until(
        Duration::from_secs(60),
        "every event after the restart",
        || delivered_ids(&capture) == expected,
    )
    .await;
    assert!(terminate(&mut restarted).success());
    receiver.shutdown.cancel();
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(borrow)]
    properties: &'a RawValue,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_killed_during_load_loses_no_message_id() {
    require_broker();
    let topic = unique("faults-group");
    let dlq_topic = unique("dlq");
    let group_id = unique("group");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;

    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(spawn_forwarder(&topic, &dlq_topic, &group_id, &capture.url, &[]).await);
    }
    let webhooks = webhooks("group", 20_000, 100);
    let (first_half, second_half) = webhooks.split_at(10_000);
    post_all(&receiver.url, first_half, 50).await;

    members[0].kill().unwrap();
    members[0].wait().unwrap();
    members.push(spawn_forwarder(&topic, &dlq_topic, &group_id, &capture.url, &[]).await);
    post_all(&receiver.url, second_half, 50).await;

    let expected = message_ids(&webhooks);
    wait_until(
        Duration::from_secs(120),
        "every messageId at capture",
        || delivered_ids(&capture).is_superset(&expected),
    )
    .await;

    // A duplicate carries the messageId of its original: every id follows from the webhook bytes.
    for raw in capture.capture.raw_events() {
        let event: RawEvent = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            event.message_id,
            message_id("", event.properties.get().as_bytes())
        );
        assert!(
            expected.contains(&event.message_id),
            "unexpected messageId {}",
            event.message_id
        );
    }

    for member in members.iter_mut().skip(1) {
        assert!(terminate(member).success());
    }
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_partition_resumes_after_moving_back() {
    require_broker();
    let topic = unique("faults-pause-move");
    let dlq_topic = unique("dlq");
    let group_id = unique("group");
    let capture = start_capture().await;
    capture.capture.script.fail_next(
        Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: None,
        },
        u64::MAX,
    );
    let receiver = start_receiver(&topic).await;
    let webhooks = webhooks("pause", 3_000, 200);
    post_all(&receiver.url, &webhooks, 100).await;

    // The first member pauses its partitions while Segment fails; a second member takes some of
    // them and gives them back when it stops.
    let first = start_forwarder(forwarder_options(
        &topic,
        &dlq_topic,
        &group_id,
        &capture.url,
    ))
    .await;
    wait_until(Duration::from_secs(30), "retries", || {
        capture.capture.request_count() >= 3
    })
    .await;
    let second = start_forwarder(forwarder_options(
        &topic,
        &dlq_topic,
        &group_id,
        &capture.url,
    ))
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    capture.capture.script.recover();
    let expected = message_ids(&webhooks);
    wait_until(
        Duration::from_secs(60),
        "every event on the remaining member",
        || delivered_ids(&capture) == expected,
    )
    .await;
    first.stop().await;
    receiver.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_out_of_retention_is_counted() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    require_broker();
    let topic = unique("faults-retention");
    let group_id = unique("group");
    let capture = start_capture().await;
    let webhooks: Vec<String> = (0..10)
        .map(|n| {
            format!(r#"{{"type":"wallet_update","userId":"r","timestamp":1764853200,"n":{n}}}"#)
        })
        .collect();
    for webhook in &webhooks {
        produce(&topic, 0, Some("r"), webhook.as_bytes()).await;
    }

    // The group committed offset 3, then records before offset 8 left the log, as retention does.
    let mut committed = TopicPartitionList::new();
    committed
        .add_partition_offset(&topic, 0, Offset::Offset(3))
        .unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", &group_id)
        .create()
        .unwrap();
    consumer.commit(&committed, CommitMode::Sync).unwrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let mut deleted = TopicPartitionList::new();
    deleted
        .add_partition_offset(&topic, 0, Offset::Offset(8))
        .unwrap();
    admin
        .delete_records(&deleted, &AdminOptions::new())
        .await
        .unwrap();

    let resets = || gwen_segment::metrics::metrics().offset_resets.get();
    let before = resets();
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &group_id,
        &capture.url,
    ))
    .await;
    wait_until(
        Duration::from_secs(30),
        "the records still in the log",
        || capture.capture.events().len() >= 2,
    )
    .await;

    let order: Vec<i64> = capture
        .capture
        .events()
        .iter()
        .map(|e| e["properties"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![8, 9]);
    assert!(resets() > before, "the offset reset was not counted");
    forwarder.stop().await;
}

/// Lists the partitions that have a `gwen_consumer_lag` series in a forwarder's `/metrics`.
async fn lag_partitions(admin: &str) -> Vec<String> {
    let Ok(response) = reqwest::get(format!("http://{admin}/metrics")).await else {
        return Vec::new();
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with("gwen_consumer_lag{"))
        .filter_map(|line| line.split('"').nth(1).map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_gauges_only_for_owned_partitions() {
    require_broker();
    let capture = start_capture().await;
    let (topic, dlq, group) = (unique("lag"), unique("lag-dlq"), unique("lag-group"));
    let (first_admin, second_admin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let extra = ["--kafka-option", "statistics.interval.ms=500"];
    let mut first = KillOnDrop(
        spawn_forwarder_at(&first_admin, &topic, &dlq, &group, &capture.url, &extra).await,
    );
    for partition in 0..6 {
        let webhook = format!(r#"{{"type":"wallet_update","userId":"lag-{partition}"}}"#);
        produce(&topic, partition, None, webhook.as_bytes()).await;
    }
    wait_until(Duration::from_secs(30), "six events at capture", || {
        capture.capture.events().len() >= 6
    })
    .await;
    let mut owned_by_first = Vec::new();
    for _ in 0..100 {
        owned_by_first = lag_partitions(&first_admin).await;
        if owned_by_first.len() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(owned_by_first.len(), 6, "{owned_by_first:?}");

    // A second member takes some partitions. Each must then have one series across the group.
    let mut second = KillOnDrop(
        spawn_forwarder_at(&second_admin, &topic, &dlq, &group, &capture.url, &extra).await,
    );
    let mut series = Vec::new();
    for _ in 0..150 {
        let (first_series, second_series) = (
            lag_partitions(&first_admin).await,
            lag_partitions(&second_admin).await,
        );
        series = [first_series.clone(), second_series.clone()].concat();
        if !first_series.is_empty() && !second_series.is_empty() && series.len() == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    series.sort();
    assert_eq!(series, ["0", "1", "2", "3", "4", "5"], "{series:?}");

    assert!(terminate(&mut second.0).success());
    assert!(terminate(&mut first.0).success());
}
