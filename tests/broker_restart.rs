//! A broker stopped and restarted while webhooks arrive: the receiver responds 503, never 200,
//! for what Kafka did not acknowledge, and every webhook it accepted reaches Segment.
//!
//! The test runs a broker of its own (scripts/kafka-local on free ports), so it can stop it
//! without disturbing the other tests.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gwen_segment::health::Health;
use gwen_segment::kafka::{KafkaSettings, TopicPolicy};
use gwen_segment::mapping::{MappingConfig, map_webhook};
use gwen_segment::secret::Secret;
use gwen_segment::service::{self, Credentials, ReceiverOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A broker of this test's own, stopped when dropped.
struct PrivateBroker {
    port: u16,
    controller_port: u16,
    dir: PathBuf,
}

impl PrivateBroker {
    fn new() -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("kafka"));
        PrivateBroker {
            port: free_port(),
            controller_port: free_port(),
            dir,
        }
    }

    fn script(&self, action: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-local");
        let status = Command::new(script)
            .arg(action)
            .env("KAFKA_LOCAL_PORT", self.port.to_string())
            .env(
                "KAFKA_LOCAL_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .env("KAFKA_LOCAL_DIR", &self.dir)
            .env("KAFKA_LOCAL_SECURITY", "plaintext")
            .status()
            .expect("cannot run scripts/kafka-local");
        assert!(
            status.success(),
            "scripts/kafka-local {action} failed with {status}"
        );
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.script("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Default)]
struct Outcomes {
    accepted: Vec<String>,
    unavailable: usize,
    other: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_never_acknowledges_unwritten_webhooks() {
    init_logs();
    let broker = PrivateBroker::new();
    broker.script("start");

    let kafka = KafkaSettings {
        brokers: broker.brokers(),
        ..kafka_settings()
    };
    let topic = unique("restart-broker");
    let capture = start_capture().await;
    let shutdown = CancellationToken::new();

    let mut config = receiver_config(&topic);
    config.produce_timeout = Duration::from_secs(2);
    let receiver_options = ReceiverOptions {
        kafka: kafka.clone(),
        topics: TopicPolicy {
            create_missing: true,
            partitions: 6,
        },
        config,
        credentials: Credentials::keys(vec![Secret::new(WEBHOOK_KEY)]),
        allow_unauthenticated: false,
        schema_registry_url: None,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/gwen", listener.local_addr().unwrap());
    let receiver_health = Health::new("receiver");
    tokio::spawn(service::run_receiver(
        receiver_options,
        listener,
        receiver_health.clone(),
        shutdown.clone(),
    ));

    let mut forwarder = forwarder_options(&topic, &unique("dlq"), &unique("group"), &capture.url);
    forwarder.kafka = kafka;
    let forwarder_health = Health::new("forwarder");
    tokio::spawn(service::run_forwarder(
        forwarder,
        forwarder_health.clone(),
        shutdown.clone(),
    ));
    wait_until(
        Duration::from_secs(60),
        "receiver and forwarder ready",
        || receiver_health.readiness().is_ok() && forwarder_health.readiness().is_ok(),
    )
    .await;

    // Posts one webhook at a time until told to stop, recording each response.
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let posting = CancellationToken::new();
    let poster = {
        let (outcomes, posting, url) = (outcomes.clone(), posting.clone(), url.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            for n in 0..100_000 {
                if posting.is_cancelled() {
                    return;
                }
                let webhook = format!(
                    r#"{{"type":"wallet_update","userId":"u-{}","timestamp":1764853200,"n":{n}}}"#,
                    n % 7
                );
                let response = client
                    .post(&url)
                    .bearer_auth(WEBHOOK_KEY)
                    .body(webhook.clone())
                    .send()
                    .await;
                {
                    let mut outcomes = outcomes.lock().unwrap();
                    match response.map(|r| r.status().as_u16()) {
                        Ok(200) => outcomes.accepted.push(webhook),
                        Ok(503) => outcomes.unavailable += 1,
                        Ok(status) => outcomes.other.push(format!("status {status}")),
                        Err(error) => outcomes.other.push(error.to_string()),
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let accepted = || outcomes.lock().unwrap().accepted.len();
    wait_until(
        Duration::from_secs(30),
        "webhooks accepted before the stop",
        || accepted() >= 20,
    )
    .await;
    broker.script("stop");
    wait_until(
        Duration::from_secs(30),
        "503 responses while the broker is down",
        || outcomes.lock().unwrap().unavailable >= 3,
    )
    .await;
    let accepted_before_restart = accepted();
    broker.script("start");
    wait_until(
        Duration::from_secs(60),
        "webhooks accepted after the restart",
        || accepted() >= accepted_before_restart + 20,
    )
    .await;
    posting.cancel();
    poster.await.unwrap();

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    assert!(
        outcomes.other.is_empty(),
        "responses other than 200 and 503: {:?}",
        outcomes.other
    );
    let expected: HashSet<String> = outcomes
        .accepted
        .iter()
        .map(|w| {
            map_webhook(w.as_bytes(), chrono::Utc::now(), &MappingConfig::default())
                .unwrap()
                .message_id
        })
        .collect();
    wait_until(
        Duration::from_secs(90),
        "every accepted webhook at capture",
        || {
            capture
                .message_ids()
                .into_iter()
                .collect::<HashSet<_>>()
                .is_superset(&expected)
        },
    )
    .await;

    shutdown.cancel();
    tokio::time::sleep(Duration::from_secs(1)).await;
}
