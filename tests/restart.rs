//! A forwarder process killed while a Segment request is in flight loses nothing: its successor
//! delivers the same events with the same messageIds.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use gwen_segment::mapping::{MappingConfig, map_webhook};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_forwarder_redelivers_same_message_ids() {
    require_broker();
    let topic = unique("restart");
    let dlq_topic = unique("dlq");
    let group_id = unique("group");
    let capture = start_capture().await;
    capture.capture.script.set_latency(Duration::from_secs(5));
    let receiver = start_receiver(&topic).await;

    let webhooks: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"type":"mission_update","userId":"player-{i}","timestamp":1764853200,"step":{i}}}"#))
        .collect();
    for webhook in &webhooks {
        post_ok(&receiver.url, webhook).await;
    }
    let expected: HashSet<String> = webhooks
        .iter()
        .map(|w| {
            map_webhook(w.as_bytes(), chrono::Utc::now(), &MappingConfig::default())
                .unwrap()
                .message_id
        })
        .collect();

    let mut first = spawn_forwarder(&topic, &dlq_topic, &group_id, &capture.url, &[]).await;
    wait_until(
        Duration::from_secs(60),
        "a request in flight at capture",
        || capture.capture.request_count() >= 1,
    )
    .await;
    first.kill().unwrap();
    first.wait().unwrap();

    let committed = committed_offsets(&group_id, &topic, 6);
    assert!(
        committed.values().all(Option::is_none),
        "committed before Segment answered: {committed:?}"
    );

    capture.capture.script.set_latency(Duration::ZERO);
    let mut second = spawn_forwarder(&topic, &dlq_topic, &group_id, &capture.url, &[]).await;
    wait_until(
        Duration::from_secs(60),
        "every event from the second forwarder",
        || capture.message_ids().into_iter().collect::<HashSet<_>>() == expected,
    )
    .await;

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
    let status = terminate(&mut second);
    assert!(
        status.success(),
        "the forwarder exited with {status} on SIGTERM"
    );
    receiver.shutdown.cancel();
}
