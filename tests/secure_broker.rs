//! The receiver and the forwarder against a broker reached over SASL_SSL with SCRAM-SHA-512: a
//! webhook travels end to end, and a wrong password stops start-up without showing the password.
//!
//! The test runs a broker of its own (scripts/kafka-local with KAFKA_LOCAL_SECURITY=sasl_ssl, on
//! free ports), which makes a test CA, a broker certificate and a SCRAM user when it starts.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gwen_segment::health::Health;
use gwen_segment::kafka::{KafkaSettings, TopicPolicy};
use gwen_segment::mapping::message_id;
use gwen_segment::secret::Secret;
use gwen_segment::service::{self, Credentials, ReceiverOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Time run_receiver may take to give up on a broker that rejects its login.
const START_FAILURE_TIMEOUT: Duration = Duration::from_secs(60);

/// A sasl_ssl broker of this test's own, stopped and deleted when dropped.
struct SecureBroker {
    port: u16,
    controller_port: u16,
    sasl_ssl_port: u16,
    dir: PathBuf,
}

impl SecureBroker {
    fn start() -> Self {
        let broker = SecureBroker {
            port: free_port(),
            controller_port: free_port(),
            sasl_ssl_port: free_port(),
            dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("kafka-sasl-ssl")),
        };
        let status = broker.script("start");
        assert!(
            status.success(),
            "scripts/kafka-local start (sasl_ssl) failed with {status}"
        );
        broker
    }

    fn script(&self, action: &str) -> std::process::ExitStatus {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-local");
        Command::new(script)
            .arg(action)
            .env("KAFKA_LOCAL_SECURITY", "sasl_ssl")
            .env("KAFKA_LOCAL_PORT", self.port.to_string())
            .env(
                "KAFKA_LOCAL_CONTROLLER_PORT",
                self.controller_port.to_string(),
            )
            .env("KAFKA_LOCAL_SASL_SSL_PORT", self.sasl_ssl_port.to_string())
            .env("KAFKA_LOCAL_DIR", &self.dir)
            .status()
            .expect("cannot run scripts/kafka-local")
    }

    fn client_file_path(&self, name: &str) -> PathBuf {
        self.dir.join("sasl-ssl/client").join(name)
    }

    /// Reads one of the files that scripts/kafka-local writes for SASL_SSL clients.
    fn client_file(&self, name: &str) -> String {
        let path = self.client_file_path(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .trim()
            .to_string()
    }

    fn password(&self) -> String {
        self.client_file("password")
    }

    /// Builds client settings for the SASL_SSL listener that log in with `password`.
    fn settings(&self, password: &str) -> KafkaSettings {
        KafkaSettings {
            brokers: self.client_file("bootstrap.servers"),
            security_protocol: Some("SASL_SSL".to_string()),
            sasl_mechanism: Some("SCRAM-SHA-512".to_string()),
            sasl_username: Some(self.client_file("username")),
            sasl_password: Some(Secret::new(password)),
            ssl_ca_location: Some(self.client_file_path("ca.pem").display().to_string()),
            ..kafka_settings()
        }
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        // No assert here: a panic while the test already panics would abort the run.
        let status = self.script("stop");
        if !status.success() {
            eprintln!("scripts/kafka-local stop failed with {status}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Log output of the whole test binary, so that the test can search it for secrets.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        std::io::stderr().write_all(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Sends the product's and librdkafka's logs to a buffer and to stderr. This must run before
/// anything calls `common::init_logs`, whose subscriber would otherwise win.
fn capture_logs() -> LogBuffer {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,gwen_segment=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("another log subscriber was installed first");
    buffer
}

fn receiver_options(kafka: KafkaSettings, topic: &str) -> ReceiverOptions {
    ReceiverOptions {
        kafka,
        topics: TopicPolicy {
            create_missing: true,
            partitions: 3,
        },
        config: receiver_config(topic),
        credentials: Credentials::keys(vec![Secret::new(WEBHOOK_KEY)]),
        allow_unauthenticated: false,
        schema_registry_url: None,
    }
}

/// Runs the receiver with a wrong SASL password and checks that start-up fails in bounded time
/// with an error that names the failed authentication but neither the wrong nor the real password.
async fn check_wrong_password_fails(broker: &SecureBroker, logs: &LogBuffer) {
    let wrong_password = format!("wrong-{}", unique("password"));
    let options = receiver_options(broker.settings(&wrong_password), &unique("sasl-wrong"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();

    let started = Instant::now();
    let run = service::run_receiver(
        options,
        listener,
        Health::new("receiver"),
        CancellationToken::new(),
    );
    let result = tokio::time::timeout(START_FAILURE_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "run_receiver did not fail within {START_FAILURE_TIMEOUT:?} with a wrong SASL password"
            )
        });
    let error = result.expect_err("run_receiver started with a wrong SASL password");
    eprintln!(
        "wrong password: run_receiver failed after {:.1} s with: {error:#}",
        started.elapsed().as_secs_f64()
    );

    let message = format!("{error:#}\n{error:?}");
    assert!(
        !message.contains(&wrong_password),
        "the start-up error shows the SASL password: {message}"
    );
    assert!(
        !message.contains(&broker.password()),
        "the start-up error shows the broker's real SASL password: {message}"
    );
    assert!(
        !logs.text().contains(&wrong_password),
        "the logs show the SASL password"
    );
    // librdkafka logs "SASL authentication error: ... invalid credentials", and the operator
    // needs that cause in the error that stops the process, not only a transport failure.
    assert!(
        message.to_lowercase().contains("authentication"),
        "the start-up error does not say that authentication failed: {message}"
    );
}

/// Sends a webhook through a receiver and a forwarder that both log in over SASL_SSL, and waits
/// for its event at the capture server.
async fn check_webhook_delivered(broker: &SecureBroker) {
    let settings = broker.settings(&broker.password());
    let topic = unique("sasl-ssl");
    let capture = start_capture().await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/gwen", listener.local_addr().unwrap());
    let receiver_health = Health::new("receiver");
    let receiver_shutdown = CancellationToken::new();
    let receiver = tokio::spawn(service::run_receiver(
        receiver_options(settings.clone(), &topic),
        listener,
        receiver_health.clone(),
        receiver_shutdown.clone(),
    ));
    wait_until(
        Duration::from_secs(60),
        "the receiver to be ready over SASL_SSL",
        || receiver_health.readiness().is_ok() || receiver.is_finished(),
    )
    .await;
    assert!(
        !receiver.is_finished(),
        "the receiver stopped at start-up: {:?}",
        receiver.await
    );

    let mut options = forwarder_options(
        &topic,
        &unique("sasl-dlq"),
        &unique("sasl-group"),
        &capture.url,
    );
    options.kafka = settings;
    let forwarder = start_forwarder(options).await;

    let webhook = fixture("achievement_update.json");
    let expected_id = message_id("", webhook.trim().as_bytes());
    let posted = Instant::now();
    post_ok(&url, &webhook).await;
    wait_until(
        Duration::from_secs(30),
        "the webhook's event at the capture server",
        || capture.message_ids().contains(&expected_id),
    )
    .await;
    eprintln!(
        "end to end: event captured {:.2} s after the POST",
        posted.elapsed().as_secs_f64()
    );

    forwarder.stop().await;
    receiver_shutdown.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(30), receiver)
        .await
        .expect("the receiver did not stop within 30 s");
    stopped.unwrap().expect("the receiver failed");
    capture.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_delivery_and_wrong_password() {
    let logs = capture_logs();
    let started = Instant::now();
    let broker = SecureBroker::start();
    eprintln!(
        "sasl_ssl broker started in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    check_webhook_delivered(&broker).await;
    check_wrong_password_fails(&broker, &logs).await;

    assert!(
        !logs.text().contains(&broker.password()),
        "the logs show the SASL password"
    );
    eprintln!("test body took {:.1} s", started.elapsed().as_secs_f64());
}
