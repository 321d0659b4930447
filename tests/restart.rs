//! A forwarder process killed while a Segment request is in flight loses nothing: its successor
//! delivers the same events with the same messageIds.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use gwen_segment::mapping::{MappingConfig, map_webhook};

fn spawn_forwarder(topic: &str, dlq_topic: &str, group_id: &str, segment_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .arg("forwarder")
        .args([
            "--brokers",
            &brokers(),
            "--topic",
            topic,
            "--dlq-topic",
            dlq_topic,
            "--group-id",
            group_id,
        ])
        .args([
            "--segment-url",
            segment_url,
            "--admin-listen",
            "127.0.0.1:0",
            "--batch-linger",
            "50ms",
        ])
        .args([
            "--kafka-option",
            &format!("session.timeout.ms={SESSION_TIMEOUT_MS}"),
        ])
        .args(["--kafka-option", "auto.commit.interval.ms=200"])
        .env("SEGMENT_WRITE_KEY", WRITE_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the forwarder binary")
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success(), "cannot send SIGTERM to {pid}");
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("the forwarder did not exit within 30 s of SIGTERM");
}

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

    let mut first = spawn_forwarder(&topic, &dlq_topic, &group_id, &capture.url);
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
    let mut second = spawn_forwarder(&topic, &dlq_topic, &group_id, &capture.url);
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
