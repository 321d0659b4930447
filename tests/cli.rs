//! Start-up checks of the binary: clear errors for missing or unsafe settings, no secrets shown.

mod common;

use std::process::{Command, Output};

use common::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gwen-segment"));
    command
        .args(args)
        .env_remove("SEGMENT_WRITE_KEY")
        .env_remove("GWEN_WEBHOOK_KEYS")
        .env_remove("KAFKA_OPTIONS");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("cannot run the binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn forwarder_refuses_to_start_without_write_key() {
    let output = run(&["forwarder", "--admin-listen", "127.0.0.1:0"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("SEGMENT_WRITE_KEY"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn forwarder_rejects_malformed_write_key() {
    let output = run(
        &["forwarder", "--admin-listen", "127.0.0.1:0"],
        &[("SEGMENT_WRITE_KEY", "has space")],
    );
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("whitespace"), "{text}");
    assert!(!text.contains("has space"), "the write key leaked: {text}");
}

/// Runs `forwarder` with a write key and `args`, expecting it to stop at start-up.
fn forwarder_start_error(args: &[&str]) -> String {
    // A closed port: a forwarder that gets past the start-up checks fails there instead.
    let mut all = vec![
        "forwarder",
        "--admin-listen",
        "127.0.0.1:0",
        "--brokers",
        "127.0.0.1:9",
    ];
    all.extend_from_slice(args);
    let output = run(&all, &[("SEGMENT_WRITE_KEY", "key")]);
    assert!(!output.status.success());
    stderr(&output)
}

#[test]
fn forwarder_rejects_dlq_topic_equal_to_topic() {
    let text = forwarder_start_error(&["--topic", "same", "--dlq-topic", "same"]);
    assert!(text.contains("--dlq-topic \"same\""), "{text}");
    assert!(text.contains("\"same.dlq\""), "{text}");
}

#[test]
fn forwarder_rejects_segment_url_credentials() {
    let text = forwarder_start_error(&["--segment-url", "https://user:hunter2@proxy.example"]);
    assert!(text.contains("https://***@proxy.example"), "{text}");
    assert!(text.contains("credentials"), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
}

#[test]
fn forwarder_rejects_segment_url_ending_in_batch_path() {
    let text = forwarder_start_error(&["--segment-url", "https://api.segment.io/v1/batch"]);
    assert!(text.contains("ends with /v1/batch"), "{text}");
}

#[test]
fn receiver_rejects_invalid_registry_url() {
    let output = run(
        &[
            "receiver",
            "--allow-unauthenticated",
            "--admin-listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--schema-registry-url",
            "registry",
        ],
        &[],
    );
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("invalid --schema-registry-url"), "{text}");
}

#[test]
fn help_hides_registry_url_value() {
    let output = run(
        &["receiver", "--help"],
        &[("GWEN_SCHEMA_REGISTRY_URL", "http://u:registry-pass@r:8081")],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("GWEN_SCHEMA_REGISTRY_URL"), "{text}");
    assert!(
        !text.contains("registry-pass"),
        "the password leaked: {text}"
    );
}

#[test]
fn receiver_refuses_to_start_without_webhook_key() {
    let output = run(
        &[
            "receiver",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--allow-unauthenticated"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn guarded_kafka_option_rejected_by_name() {
    let output = run(
        &[
            "receiver",
            "--webhook-keys",
            "k",
            "--kafka-option",
            "enable.auto.commit=false",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("enable.auto.commit"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn help_hides_secret_values() {
    let output = run(
        &["forwarder", "--help"],
        &[("SEGMENT_WRITE_KEY", "super-secret-write-key")],
    );
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--segment-write-key"));
    assert!(!help.contains("super-secret-write-key"), "{help}");
}

#[test]
fn missing_topic_named_when_creation_disabled() {
    require_broker();
    let topic = unique("never-created");
    let output = run(
        &[
            "receiver",
            "--brokers",
            &brokers(),
            "--topic",
            &topic,
            "--no-create-topics",
            "--webhook-keys",
            "k",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains(&topic) && text.contains("topics ensure"),
        "{text}"
    );
}
