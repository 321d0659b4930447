//! Shared harness for the tests that run against a real Kafka broker (`scripts/kafka-local
//! start`, or the brokers in `KAFKA_BROKERS`) and the in-process capture server.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gwen_segment::backoff::Backoff;
use gwen_segment::capture::{Capture, CaptureConfig, Script};
use gwen_segment::forwarder::{BatchLimits, ForwarderConfig};
use gwen_segment::health::Health;
use gwen_segment::kafka::{KafkaSettings, TopicPolicy};
use gwen_segment::mapping::MappingConfig;
use gwen_segment::receiver::ReceiverConfig;
use gwen_segment::secret::Secret;
use gwen_segment::segment::SegmentClient;
use gwen_segment::service::{self, Credentials, ForwarderOptions, ReceiverOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const WRITE_KEY: &str = "test-write-key";
pub const WEBHOOK_KEY: &str = "test-webhook-key";
/// Short enough that a killed member's partitions move within seconds (the broker's minimum).
pub const SESSION_TIMEOUT_MS: &str = "6000";

pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

/// Client settings for tests: short sessions and frequent commits, so checks settle quickly.
pub fn kafka_settings() -> KafkaSettings {
    let option = |key: &str, value: &str| (key.to_string(), Secret::new(value));
    KafkaSettings {
        brokers: brokers(),
        options: vec![
            option("session.timeout.ms", SESSION_TIMEOUT_MS),
            option("auto.commit.interval.ms", "200"),
        ],
        ..KafkaSettings::default()
    }
}

/// Sends the product's logs to the test's output, shown when a test fails.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,gwen_segment=debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Fails the test, never skips it, when the broker does not respond.
pub fn require_broker() {
    init_logs();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    if let Err(error) = consumer.fetch_metadata(None, Duration::from_secs(10)) {
        panic!(
            "no Kafka broker answers at {} ({error}); start one with `scripts/kafka-local start` or set KAFKA_BROKERS",
            brokers()
        );
    }
}

/// Returns a name no other test or run uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/gwen/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Polls `condition` every 100 ms until it is true or `timeout` passes.
pub async fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct CaptureServer {
    pub capture: Arc<Capture>,
    pub url: String,
    pub shutdown: CancellationToken,
}

pub async fn start_capture() -> CaptureServer {
    let capture = Capture::new(CaptureConfig {
        write_key: Some(Secret::new(WRITE_KEY)),
        output: Box::new(std::io::sink()),
        keep_in_memory: true,
        script: Script::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(gwen_segment::capture::run(
        listener,
        capture.clone(),
        None,
        shutdown.clone().cancelled_owned(),
    ));
    CaptureServer {
        capture,
        url,
        shutdown,
    }
}

impl CaptureServer {
    pub fn message_ids(&self) -> Vec<String> {
        self.capture
            .events()
            .iter()
            .map(|e| e["messageId"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

pub struct ReceiverServer {
    pub url: String,
    pub health: Health,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn receiver_config(topic: &str) -> ReceiverConfig {
    ReceiverConfig {
        topic: topic.to_string(),
        max_body_bytes: 1_048_576,
        max_record_bytes: 900_000,
        produce_timeout: Duration::from_secs(5),
        header_read_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(30),
        max_concurrent_requests: 1024,
    }
}

pub async fn start_receiver(topic: &str) -> ReceiverServer {
    start_receiver_with(receiver_config(topic)).await
}

pub async fn start_receiver_with_registry(topic: &str, registry_url: &str) -> ReceiverServer {
    start_receiver_options(receiver_config(topic), Some(registry_url.to_string())).await
}

pub async fn start_receiver_with(config: ReceiverConfig) -> ReceiverServer {
    start_receiver_options(config, None).await
}

async fn start_receiver_options(
    config: ReceiverConfig,
    schema_registry_url: Option<String>,
) -> ReceiverServer {
    let options = ReceiverOptions {
        kafka: kafka_settings(),
        topics: TopicPolicy {
            create_missing: true,
            partitions: 6,
        },
        config,
        credentials: Credentials::keys(vec![Secret::new(WEBHOOK_KEY)]),
        allow_unauthenticated: false,
        schema_registry_url,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/gwen", listener.local_addr().unwrap());
    let health = Health::new("receiver");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(service::run_receiver(
        options,
        listener,
        health.clone(),
        shutdown.clone(),
    ));
    wait_until(Duration::from_secs(30), "the receiver to be ready", || {
        health.readiness().is_ok() || task.is_finished()
    })
    .await;
    assert!(!task.is_finished(), "the receiver stopped at start-up");
    ReceiverServer {
        url,
        health,
        shutdown,
        task,
    }
}

pub struct ForwarderRun {
    pub health: Health,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn forwarder_options(
    topic: &str,
    dlq_topic: &str,
    group_id: &str,
    segment_url: &str,
) -> ForwarderOptions {
    ForwarderOptions {
        kafka: kafka_settings(),
        topics: TopicPolicy {
            create_missing: true,
            partitions: 6,
        },
        group_id: group_id.to_string(),
        dlq_topic: dlq_topic.to_string(),
        segment: SegmentClient::new(
            segment_url,
            Secret::new(WRITE_KEY),
            Duration::from_secs(10),
            None,
        )
        .unwrap(),
        schema_registry_url: None,
        start_at: None,
        config: ForwarderConfig {
            topic: topic.to_string(),
            mapping: MappingConfig::default(),
            batch: BatchLimits {
                max_bytes: 475_000,
                max_events: 2_500,
                linger: Duration::from_millis(50),
            },
            max_concurrent_batches: 8,
            max_in_flight_bytes: 64 * 1024 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            retry: Backoff::up_to(Duration::from_secs(1)),
        },
    }
}

pub async fn start_forwarder(options: ForwarderOptions) -> ForwarderRun {
    let health = Health::new("forwarder");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(service::run_forwarder(
        options,
        health.clone(),
        shutdown.clone(),
    ));
    wait_until(
        Duration::from_secs(60),
        "the forwarder to join its group",
        || health.readiness().is_ok() || task.is_finished(),
    )
    .await;
    assert!(!task.is_finished(), "the forwarder stopped at start-up");
    ForwarderRun {
        health,
        shutdown,
        task,
    }
}

impl ForwarderRun {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let Ok(result) = tokio::time::timeout(Duration::from_secs(30), self.task).await else {
            // A panic would not end this test: dropping the runtime waits for the worker thread
            // the forwarder holds, so the whole test binary would hang instead of failing.
            eprintln!("the forwarder did not stop within 30 s; ending the test process");
            std::process::exit(101);
        };
        result.unwrap().unwrap();
    }
}

pub async fn post(url: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .basic_auth(WEBHOOK_KEY, Some(""))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

pub async fn post_ok(url: &str, body: &str) {
    let response = post(url, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "webhook not accepted: {text}");
}

pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap()
}

/// Produces a record straight to the topic, bypassing the receiver.
pub async fn produce(topic: &str, partition: i32, key: Option<&str>, value: &[u8]) -> i64 {
    let producer = producer();
    let mut record = FutureRecord::to(topic).partition(partition).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    let delivery = producer
        .send(record, Duration::from_secs(10))
        .await
        .unwrap_or_else(|(e, _)| panic!("produce failed: {e}"));
    delivery.offset
}

/// Fetches the group's committed offset per partition of `topic` (`None` when nothing is committed).
pub fn committed_offsets(
    group_id: &str,
    topic: &str,
    partitions: i32,
) -> HashMap<i32, Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group_id)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// Fetches the offset after the last record of each partition.
pub fn end_offsets(topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    (0..partitions)
        .map(|partition| {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .unwrap();
            (partition, high)
        })
        .collect()
}

/// Reads every record of `topic` until `count` arrived (or the timeout passes).
pub fn read_topic(topic: &str, count: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let start = Instant::now();
    let mut messages = Vec::new();
    while messages.len() < count && start.elapsed() < timeout {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            messages.push(message.detach());
        }
    }
    messages
}

/// Returns a record header as text.
pub fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Returns a port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the forwarder binary as its own process, so a test can kill it, and waits until its
/// admin endpoint responds (by then it handles SIGTERM).
pub async fn spawn_forwarder(
    topic: &str,
    dlq_topic: &str,
    group_id: &str,
    segment_url: &str,
    extra: &[&str],
) -> Child {
    let admin = format!("127.0.0.1:{}", free_port());
    spawn_forwarder_at(&admin, topic, dlq_topic, group_id, segment_url, extra).await
}

/// Starts the forwarder binary with its admin endpoint on `admin`, as [`spawn_forwarder`] does.
pub async fn spawn_forwarder_at(
    admin: &str,
    topic: &str,
    dlq_topic: &str,
    group_id: &str,
    segment_url: &str,
    extra: &[&str],
) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gwen-segment"))
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
            admin,
            "--batch-linger",
            "50ms",
        ])
        .args([
            "--kafka-option",
            &format!("session.timeout.ms={SESSION_TIMEOUT_MS}"),
        ])
        .args(["--kafka-option", "auto.commit.interval.ms=200"])
        .args(extra)
        .env("SEGMENT_WRITE_KEY", WRITE_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the forwarder binary");

    wait_for_status(
        &mut child,
        &format!("http://{admin}/healthz"),
        "the forwarder",
    )
    .await;
    child
}

/// Waits up to 30 s until `url` responds with 200, failing the test if the process exits first.
pub async fn wait_for_status(child: &mut Child, url: &str, process: &str) {
    for _ in 0..300 {
        if reqwest::get(url).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{process} exited at start-up with {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{process} did not answer 200 at {url} within 30 s");
}

/// Sends SIGTERM and waits up to 30 s for the process to exit.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
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

/// A child process that is killed when dropped, so a failing test leaves no process behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
