//! Turns parsed options into each component's configuration and runs the chosen command.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use axum::http::StatusCode;
use gwen_segment::backoff::Backoff;
use gwen_segment::capture::{self, Capture, CaptureConfig, Failure, Script};
use gwen_segment::forwarder::{BatchLimits, ForwarderConfig};
use gwen_segment::health::Health;
use gwen_segment::kafka::{KafkaSettings, TopicPolicy};
use gwen_segment::mapping::MappingConfig;
use gwen_segment::receiver::ReceiverConfig;
use gwen_segment::segment::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS, SegmentClient};
use gwen_segment::service::{self, Credentials, ForwarderOptions, ReceiverOptions};
use rdkafka::mocking::MockCluster;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cli::{
    CaptureArgs, Command, CommonArgs, ForwarderArgs, MappingArgs, ReceiverArgs, StandaloneArgs,
    TransformArgs,
};

/// Segment batch requests that may be unanswered at once, each for distinct partitions.
const MAX_CONCURRENT_BATCHES: usize = 8;

pub async fn run(command: Command) -> anyhow::Result<()> {
    if let Command::Transform(args) = command {
        return transform(args);
    }

    let shutdown = CancellationToken::new();
    service::cancel_on_signal(shutdown.clone());
    let result = match command {
        Command::Receiver(args) => receiver(args, shutdown.clone()).await,
        Command::Forwarder(args) => forwarder(args, shutdown.clone()).await,
        Command::Standalone(args) => standalone(args, shutdown.clone()).await,
        Command::Capture(args) => capture(args, shutdown.clone()).await,
        Command::Replay(args) => crate::commands_ops::replay(args, shutdown.clone()).await,
        Command::Dlq(args) => crate::commands_ops::dlq(args, shutdown.clone()).await,
        Command::Topics(args) => crate::commands_ops::topics(args, shutdown.clone()).await,
        Command::Transform(_) => Ok(()),
    };
    shutdown.cancel();
    result
}

/// The admin endpoint, served until this value is dropped at the end of the command, so
/// `/readyz` keeps responding 503 while the process drains.
struct AdminServer(CancellationToken);

impl AdminServer {
    fn start(listener: TcpListener, components: Vec<Health>) -> Self {
        let stop = CancellationToken::new();
        service::spawn_admin(listener, components, stop.clone());
        AdminServer(stop)
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

async fn bind(address: std::net::SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ({flag}); pick a free address"))
}

fn receiver_options(
    args: &crate::cli::ReceiverOptions,
    common: &CommonArgs,
    kafka: KafkaSettings,
    topics: TopicPolicy,
) -> ReceiverOptions {
    if args.allow_unauthenticated
        && (!args.webhook_keys.is_empty() || !args.webhook_hmac_secrets.is_empty())
    {
        warn!(
            "--allow-unauthenticated has no effect because webhook keys or HMAC secrets are configured: every webhook must still carry valid credentials"
        );
    }
    ReceiverOptions {
        kafka,
        topics,
        config: ReceiverConfig {
            topic: common.topic.clone(),
            max_body_bytes: args.max_body_bytes,
            max_record_bytes: args.max_record_bytes,
            produce_timeout: args.produce_timeout,
            header_read_timeout: args.header_read_timeout,
            body_read_timeout: args.body_read_timeout,
            max_concurrent_requests: args.max_concurrent_requests as usize,
        },
        credentials: Credentials {
            webhook_keys: args.webhook_keys.clone(),
            hmac_secrets: args.webhook_hmac_secrets.clone(),
            signature_header: args.webhook_signature_header.clone(),
        },
        schema_registry_url: common.schema_registry_url.clone(),
        allow_unauthenticated: args.allow_unauthenticated,
    }
}

fn mapping_config(args: &MappingArgs) -> MappingConfig {
    MappingConfig {
        message_id_namespace: args.message_id_namespace.clone(),
        unknown_types: args.unknown_types,
    }
}

fn forwarder_options(
    args: &crate::cli::ForwarderOptions,
    common: &CommonArgs,
    kafka: KafkaSettings,
    topics: TopicPolicy,
    segment: SegmentClient,
) -> ForwarderOptions {
    ForwarderOptions {
        kafka,
        topics,
        group_id: args.group_id.clone(),
        dlq_topic: args.dlq_topic.clone(),
        segment,
        schema_registry_url: common.schema_registry_url.clone(),
        start_at: args.start_at,
        config: ForwarderConfig {
            topic: common.topic.clone(),
            mapping: mapping_config(&args.mapping),
            batch: BatchLimits {
                max_bytes: MAX_BATCH_BYTES,
                max_events: MAX_BATCH_EVENTS,
                linger: args.batch_linger,
            },
            max_concurrent_batches: MAX_CONCURRENT_BATCHES,
            max_in_flight_bytes: args.max_in_flight_bytes,
            shutdown_timeout: args.shutdown_timeout,
            retry: Backoff::up_to(args.retry_max_backoff),
        },
    }
}

/// The Segment client for a write key; `forwarder` requires one.
fn segment_client(args: &crate::cli::ForwarderOptions) -> anyhow::Result<SegmentClient> {
    let write_key = args.segment_write_key.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "no Segment write key; set --segment-write-key or SEGMENT_WRITE_KEY to the write key of your Segment source"
        )
    })?;
    Ok(SegmentClient::new(
        &args.segment_url,
        write_key,
        args.segment_timeout,
        args.segment_ca_file.as_deref(),
    )?)
}

async fn receiver(args: ReceiverArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let options = receiver_options(
        &args.receiver,
        &args.common,
        args.kafka.settings()?,
        args.kafka.topic_policy(),
    );
    let listener = bind(args.receiver.listen, "--listen").await?;
    let admin = bind(args.common.admin_listen, "--admin-listen").await?;

    let health = Health::new("receiver");
    let _admin = AdminServer::start(admin, vec![health.clone()]);
    service::run_receiver(options, listener, health, shutdown).await
}

async fn forwarder(args: ForwarderArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let segment = segment_client(&args.forwarder)?;
    let options = forwarder_options(
        &args.forwarder,
        &args.common,
        args.kafka.settings()?,
        args.kafka.topic_policy(),
        segment,
    );
    let admin = bind(args.common.admin_listen, "--admin-listen").await?;

    let health = Health::new("forwarder");
    let _admin = AdminServer::start(admin, vec![health.clone()]);
    service::run_forwarder(options, health, shutdown).await
}

async fn standalone(args: StandaloneArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let topics = args.kafka.topic_policy();
    // Kept alive until the command ends: dropping it stops the embedded broker.
    let mut embedded = None;
    let brokers = match &args.kafka.connection.brokers {
        Some(brokers) => brokers.clone(),
        None => {
            let cluster = embedded_cluster(&args, topics.partitions)?;
            let brokers = cluster.bootstrap_servers();
            embedded = Some(cluster);
            brokers
        }
    };
    let kafka = args.kafka.connection.settings_for(&brokers)?;

    let segment = match &args.forwarder.segment_write_key {
        Some(_) => segment_client(&args.forwarder)?,
        None => {
            info!(
                "no --segment-write-key: each Segment batch is printed to stdout instead of being sent"
            );
            SegmentClient::stdout()
        }
    };
    let receiver = receiver_options(&args.receiver, &args.common, kafka.clone(), topics);
    let forwarder = forwarder_options(&args.forwarder, &args.common, kafka, topics, segment);
    let listener = bind(args.receiver.listen, "--listen").await?;
    let admin = bind(args.common.admin_listen, "--admin-listen").await?;

    let health = (Health::new("receiver"), Health::new("forwarder"));
    let _admin = AdminServer::start(admin, vec![health.0.clone(), health.1.clone()]);
    let result = service::run_standalone(receiver, forwarder, listener, health, shutdown).await;
    drop(embedded);
    result
}

/// Starts librdkafka's in-memory mock cluster with both topics, which it cannot create through
/// the admin API.
fn embedded_cluster(
    args: &StandaloneArgs,
    partitions: i32,
) -> anyhow::Result<MockCluster<'static, rdkafka::producer::DefaultProducerContext>> {
    warn!(
        "standalone: no --brokers given, so Kafka is an embedded in-memory broker (librdkafka's mock cluster). \
         Data lives only in this process, each partition keeps only a few MiB, and a restart loses everything: \
         for trying gwen-segment only"
    );
    let cluster = MockCluster::new(1).context("cannot start the embedded Kafka broker")?;
    for topic in [&args.common.topic, &args.forwarder.dlq_topic] {
        cluster
            .create_topic(topic, partitions, 1)
            .with_context(|| format!("cannot create topic {topic} on the embedded broker"))?;
    }
    Ok(cluster)
}

fn transform(args: TransformArgs) -> anyhow::Result<()> {
    let input = if args.input.as_os_str() == "-" {
        let mut input = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut input)
            .context("cannot read stdin")?;
        input
    } else {
        std::fs::read(&args.input)
            .with_context(|| format!("cannot read {}", args.input.display()))?
    };
    let received_at = match &args.received_at {
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|time| time.with_timezone(&chrono::Utc))
            .with_context(|| {
                format!(
                    "invalid --received-at {text:?}: use RFC 3339, for example 2025-12-04T13:00:00Z"
                )
            })?,
        None => chrono::Utc::now(),
    };

    let mut bad = Vec::new();
    crate::commands_ops::write_stdout(|stdout| {
        let mut stdout = std::io::BufWriter::new(stdout);
        let config = mapping_config(&args.mapping);
        bad = gwen_segment::transform::transform(&input, received_at, &config, &mut stdout)?;
        Ok(())
    })?;

    let mut stderr = std::io::stderr().lock();
    for input in &bad {
        let _ = writeln!(
            stderr,
            "{}: {}: {}",
            input.position, input.kind, input.reason
        );
    }
    if !bad.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

async fn capture(args: CaptureArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let output: Box<dyn Write + Send> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.output)
            .with_context(|| format!("cannot open --output {}", args.output.display()))?;
        Box::new(std::io::BufWriter::new(file))
    };

    let script = Script::default();
    script.set_latency(args.latency);
    if let (Some(status), Some(count)) = (args.fail_status, args.fail_count) {
        let status = StatusCode::from_u16(status).with_context(|| {
            format!("invalid --fail-status {status}: use an HTTP status such as 500")
        })?;
        let retry_after = args.retry_after.map(std::time::Duration::from_secs);
        script.fail_next(
            Failure {
                status,
                retry_after,
            },
            count,
        );
    }

    let capture = Capture::new(CaptureConfig {
        write_key: args.segment_write_key,
        output,
        keep_in_memory: false,
        script,
    });
    let listener = bind(args.listen, "--listen").await?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(certificate), Some(key)) => Some(
            gwen_segment::http_server::tls_acceptor(certificate, key)
                .map_err(|e| anyhow::anyhow!("invalid --tls-cert or --tls-key: {e}"))?,
        ),
        _ => None,
    };
    capture::run(
        listener,
        Arc::clone(&capture),
        tls,
        shutdown.cancelled_owned(),
    )
    .await?;
    Ok(())
}
