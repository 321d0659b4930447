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
