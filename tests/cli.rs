//! Start-up checks of the binary: clear errors for missing or unsafe settings, no secrets shown.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gwen-segment"));
    command
        .args(args)
        .env_remove("SEGMENT_WRITE_KEY")
        .env_remove("GWEN_WEBHOOK_KEYS")
        .env_remove("KAFKA_OPTIONS")
        .env_remove("RUST_LOG")
        .env("GWEN_LISTEN", "127.0.0.1:0")
        .env("GWEN_ADMIN_LISTEN", "127.0.0.1:0");
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
fn forwarder_rejects_dlq_as_topic() {
    let text = forwarder_start_error(&["--topic", "same", "--dlq-topic", "same"]);
    assert!(text.contains("--dlq-topic \"same\""), "{text}");
    assert!(text.contains("\"same.dlq\""), "{text}");
}

#[test]
fn operator_commands_reject_dlq_as_topic() {
    for command in [
        &["topics", "check", "--replication-factor", "1"][..],
        &["topics", "ensure", "--replication-factor", "1"][..],
        &["dlq", "redrive"][..],
    ] {
        let mut args = command.to_vec();
        args.extend([
            "--brokers",
            "127.0.0.1:9",
            "--topic",
            "same",
            "--dlq-topic",
            "same",
        ]);
        let output = run(&args, &[]);
        assert!(!output.status.success(), "{command:?}");
        let text = stderr(&output);
        assert!(text.contains("a topic of its own"), "{command:?}: {text}");
    }
}

#[test]
fn forwarder_rejects_segment_url_credentials() {
    let text = forwarder_start_error(&["--segment-url", "https://user:hunter2@proxy.example"]);
    assert!(text.contains("https://***@proxy.example"), "{text}");
    assert!(text.contains("credentials"), "{text}");
    assert!(!text.contains("hunter2"), "the password leaked: {text}");
}

#[test]
fn forwarder_rejects_batch_path_url() {
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

/// Asserts that the command exits with status 2 within 20 s and that stderr names every one of
/// `names`. A command that accepted the options would run on, so it is killed after that time.
fn assert_usage_error(args: &[&str], names: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .args(args)
        .env_remove("SEGMENT_WRITE_KEY")
        .env_remove("RUST_LOG")
        .env("GWEN_LISTEN", "127.0.0.1:0")
        .env("GWEN_ADMIN_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the binary");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
    for name in names {
        assert!(text.contains(name), "{args:?}: {name} missing from: {text}");
    }
}

#[test]
fn zero_byte_limits_rejected() {
    for flag in ["--max-body-bytes", "--max-record-bytes"] {
        assert_usage_error(
            &["receiver", "--webhook-keys", "k", flag, "0"],
            &[flag, "'0'", "at least 1"],
        );
    }
    assert_usage_error(
        &[
            "topics",
            "check",
            "--replication-factor",
            "1",
            "--max-record-bytes",
            "0",
        ],
        &["--max-record-bytes", "'0'", "at least 1"],
    );
}

#[test]
fn byte_limit_unit_rejected() {
    assert_usage_error(
        &[
            "receiver",
            "--webhook-keys",
            "k",
            "--max-body-bytes",
            "1MiB",
        ],
        &[
            "--max-body-bytes",
            "'1MiB'",
            "whole number of bytes",
            "1048576",
        ],
    );
}

#[test]
fn record_limit_above_body_limit_rejected() {
    assert_usage_error(
        &[
            "standalone",
            "--webhook-keys",
            "k",
            "--max-body-bytes",
            "1000",
            "--max-record-bytes",
            "2000",
        ],
        &["--max-record-bytes 2000", "--max-body-bytes 1000"],
    );
}

#[test]
fn zero_timeouts_rejected() {
    assert_usage_error(
        &["forwarder", "--segment-timeout", "0s"],
        &["--segment-timeout", "'0s'", "above zero"],
    );
    assert_usage_error(
        &[
            "topics",
            "ensure",
            "--replication-factor",
            "1",
            "--retention",
            "0s",
        ],
        &["--retention", "'0s'", "above zero"],
    );
}

#[test]
fn produce_timeout_within_linger_rejected() {
    for timeout in ["0s", "1ms"] {
        assert_usage_error(
            &[
                "receiver",
                "--webhook-keys",
                "k",
                "--produce-timeout",
                timeout,
            ],
            &[&format!("--produce-timeout {timeout}"), "linger.ms (1 ms"],
        );
    }
    assert_usage_error(
        &[
            "receiver",
            "--webhook-keys",
            "k",
            "--produce-timeout",
            "50ms",
            "--kafka-option",
            "linger.ms=100",
        ],
        &[
            "--produce-timeout 50ms",
            "linger.ms (100 ms",
            "--kafka-option",
        ],
    );
}

#[test]
fn invalid_durations_rejected() {
    assert_usage_error(
        &["forwarder", "--batch-linger", "fast"],
        &["--batch-linger", "'fast'", "500ms, 5s or 2m"],
    );
    assert_usage_error(
        &["receiver", "--produce-timeout=-1s"],
        &["--produce-timeout", "'-1s'", "500ms, 5s or 2m"],
    );
}

#[test]
fn invalid_log_level_rejected_once() {
    let filter = "gwen[[[=debug";
    assert_usage_error(
        &["--log-level", filter, "transform", "/dev/null"],
        &["--log-level", &format!("{filter:?}")],
    );
    let text = stderr(&run(
        &["--log-level", filter, "transform", "/dev/null"],
        &[],
    ));
    assert_eq!(text.matches(filter).count(), 1, "{text}");
}

/// Runs the receiver with `extra` options on an address already in use, so it stops at start-up
/// after its options were checked and its start-up warnings were logged.
fn receiver_on_taken_address(extra: &[&str]) -> Output {
    let busy_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy_listener.local_addr().unwrap().to_string();
    let mut args = vec!["receiver", "--listen", &address];
    args.extend_from_slice(extra);
    run(&args, &[])
}

#[test]
fn receiver_defaults_pass_checks() {
    let output = receiver_on_taken_address(&["--webhook-keys", "k"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("cannot listen"), "{text}");
    assert!(!text.contains("invalid"), "{text}");
}

#[test]
fn allow_unauthenticated_with_keys_warns() {
    let output = receiver_on_taken_address(&["--webhook-keys", "k", "--allow-unauthenticated"]);
    let text = stderr(&output);
    assert!(
        text.contains("--allow-unauthenticated has no effect"),
        "{text}"
    );
}

/// Starts the binary with stdout on a pipe whose reading end is already closed, as after
/// `| head -1`, and returns its exit status and stderr.
fn run_with_closed_stdout(args: &[&str], stdin: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the binary");
    drop(child.stdout.take());
    let mut input = child.stdin.take().unwrap();
    // The binary may stop reading early, so a failed write is not an error here.
    let _ = input.write_all(stdin);
    drop(input);
    let output = child.wait_with_output().unwrap();
    (output.status.code(), stderr(&output))
}

#[test]
fn transform_quiet_on_closed_stdout() {
    let line = r#"{"type":"achievement_update","userId":"u1","timestamp":1700000000}"#;
    let input = format!("{line}\n").repeat(10_000);
    let (code, text) = run_with_closed_stdout(
        &["transform", "--received-at", "2025-12-04T13:00:00Z"],
        input.as_bytes(),
    );
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("Broken pipe"), "{text}");
}

#[test]
fn dlq_list_quiet_on_closed_stdout() {
    require_broker();
    let topic = unique("closed-stdout");
    let dlq_topic = format!("{topic}.dlq");
    let created = run(
        &[
            "topics",
            "ensure",
            "--brokers",
            &brokers(),
            "--replication-factor",
            "1",
            "--partitions",
            "1",
            "--topic",
            &topic,
            "--dlq-topic",
            &dlq_topic,
        ],
        &[],
    );
    assert!(created.status.success(), "{}", stderr(&created));

    for command in ["list", "show"] {
        let (code, text) = run_with_closed_stdout(
            &[
                "dlq",
                command,
                "--brokers",
                &brokers(),
                "--dlq-topic",
                &dlq_topic,
            ],
            b"",
        );
        assert!(!text.contains("panicked"), "dlq {command}: {text}");
        assert_eq!(code, Some(0), "dlq {command}: {text}");
    }
}

#[tokio::test]
async fn future_start_at_warns() {
    require_broker();
    let topic = unique("future-start");
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .args(["forwarder", "--brokers", &brokers(), "--topic", &topic])
        .args(["--dlq-topic", &format!("{topic}.dlq")])
        .args(["--group-id", &format!("{topic}-group")])
        .args([
            "--segment-url",
            "http://127.0.0.1:1",
            "--admin-listen",
            &admin,
        ])
        .args(["--start-at", "2099-01-01T00:00:00Z"])
        .env("SEGMENT_WRITE_KEY", WRITE_KEY)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the forwarder binary");

    let (lines, received) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut warning = None;
    while let Ok(line) = received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.contains("--start-at is in the future") {
            warning = Some(line);
            break;
        }
    }
    terminate(&mut child);
    let warning = warning.expect("no warning about the future --start-at within 30 s");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("end of each partition"), "{warning}");
}
