//! `transform` prints what the forwarder sends, for files, stdin, arrays and JSON lines.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use gwen_segment::kafka::headers;
use gwen_segment::mapping::{MappingConfig, map_webhook};

fn transform(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .arg("transform")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn expected_event(webhook: &str) -> serde_json::Value {
    let event = map_webhook(
        webhook.trim().as_bytes(),
        chrono::Utc::now(),
        &MappingConfig::default(),
    )
    .unwrap();
    serde_json::from_slice(&event.json).unwrap()
}

#[test]
fn transform_maps_every_fixture_file() {
    for name in [
        "achievement_update.json",
        "progression_update.json",
        "mission_update.json",
        "shop_item_update.json",
        "wallet_update.json",
        "webhook_verification.json",
    ] {
        let path = format!("{}/tests/fixtures/gwen/{name}", env!("CARGO_MANIFEST_DIR"));
        let output = transform(&[&path], b"");
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            lines(&output),
            vec![expected_event(&fixture(name))],
            "{name}"
        );
    }
}

#[test]
fn transform_maps_array_from_stdin() {
    let batch = fixture("batch.json");
    let output = transform(&[], batch.as_bytes());
    assert!(output.status.success());

    let webhooks: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(&batch).unwrap();
    let expected: Vec<serde_json::Value> =
        webhooks.iter().map(|w| expected_event(w.get())).collect();
    assert_eq!(lines(&output), expected);
}

#[test]
fn transform_reports_bad_json_lines_and_fails() {
    let input = [
        r#"{"type":"wallet_update","userId":"u1","timestamp":1764853200}"#,
        "not json",
        r#"{"type":"wallet_update","timestamp":1764853200}"#,
        "",
        r#"{"type":"mission_update","userId":42,"timestamp":1764853200}"#,
    ]
    .join("\n");
    let output = transform(&["-"], input.as_bytes());
    assert_eq!(output.status.code(), Some(1));

    let events = lines(&output);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "Wallet Update");
    assert_eq!(events[1]["userId"], "42");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2: invalid_webhook: "), "{stderr}");
    assert!(stderr.contains("line 3: missing_user_id: "), "{stderr}");
}

#[test]
fn transform_uses_received_at_for_missing_timestamp() {
    let output = transform(
        &["--received-at", "2025-12-04T14:30:00+01:00"],
        br#"{"type":"wallet_update","userId":"u1"}"#,
    );
    assert!(output.status.success());
    let events = lines(&output);
    assert_eq!(events[0]["timestamp"], "2025-12-04T13:30:00.000Z");
    assert_eq!(events[0]["context"]["gwen"]["timestampSource"], "received");
}

#[test]
fn transform_rejects_invalid_received_at() {
    let output = transform(&["--received-at", "yesterday"], b"{}");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--received-at"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_output_matches_forwarder() {
    require_broker();
    let topic = unique("transform-match");
    let capture = start_capture().await;
    let receiver = start_receiver(&topic).await;
    let forwarder = start_forwarder(forwarder_options(
        &topic,
        &unique("dlq"),
        &unique("group"),
        &capture.url,
    ))
    .await;

    // Without a timestamp, so the receive time recorded by the receiver decides the event's.
    let webhook =
        r#"{"type":"shop_item_update","userId":"p-1","big":12345678901234567890.123456789}"#;
    post_ok(&receiver.url, webhook).await;
    wait_until(Duration::from_secs(30), "the event at capture", || {
        !capture.capture.events().is_empty()
    })
    .await;

    let records = read_topic(&topic, 1, Duration::from_secs(20));
    let received_at = header(&records[0], headers::RECEIVED_AT).unwrap();
    let output = transform(&["--received-at", &received_at], webhook.as_bytes());
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim_end(),
        capture.capture.raw_events()[0]
    );

    forwarder.stop().await;
    receiver.shutdown.cancel();
}
