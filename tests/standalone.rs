//! `standalone` end to end over HTTP, on its embedded broker: batches printed to stdout without
//! a write key, delivered to Segment (capture) with one.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use gwen_segment::mapping::{MappingConfig, map_webhook};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Standalone {
    child: Child,
    webhook_url: String,
    admin_url: String,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_standalone(extra: &[&str]) -> Standalone {
    let (listen, admin) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
        .arg("standalone")
        .args(["--webhook-keys", WEBHOOK_KEY, "--batch-linger", "50ms"])
        .args([
            "--listen",
            &format!("127.0.0.1:{listen}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .args(extra)
        .env_remove("KAFKA_BROKERS")
        .env_remove("SEGMENT_WRITE_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start standalone");
    let standalone = Standalone {
        child,
        webhook_url: format!("http://127.0.0.1:{listen}/webhooks/gwen"),
        admin_url: format!("http://127.0.0.1:{admin}/readyz"),
    };

    for _ in 0..300 {
        let ready = reqwest::get(&standalone.admin_url)
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return standalone;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("standalone was not ready within 30 s");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_prints_batches_without_write_key() {
    let mut standalone = start_standalone(&[]).await;
    let stdout = standalone.child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });

    let webhook = fixture("achievement_update.json");
    post_ok(&standalone.webhook_url, &webhook).await;

    let line = received
        .recv_timeout(Duration::from_secs(20))
        .expect("no batch printed within 20 s");
    let batch: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        batch["batch"],
        serde_json::json!([expected_event(&webhook)])
    );
    assert!(batch.get("writeKey").is_none(), "{batch}");

    let pid = standalone.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    for _ in 0..300 {
        status = standalone.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("standalone did not exit within 30 s of SIGTERM");
    assert!(status.success(), "standalone exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_delivers_to_segment_with_write_key() {
    let capture = start_capture().await;
    let standalone = start_standalone(&[
        "--segment-write-key",
        WRITE_KEY,
        "--segment-url",
        &capture.url,
    ])
    .await;

    let batch = fixture("batch.json");
    post_ok(&standalone.webhook_url, &batch).await;
    wait_until(Duration::from_secs(20), "three events at capture", || {
        capture.capture.events().len() >= 3
    })
    .await;

    let webhooks: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(&batch).unwrap();
    let events = capture.capture.events();
    assert_eq!(events.len(), 3);
    for webhook in &webhooks {
        assert!(
            events.contains(&expected_event(webhook.get())),
            "missing event for {webhook}"
        );
    }
}
