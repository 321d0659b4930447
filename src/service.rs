//! Process wiring shared by the commands: builds the Kafka and Segment clients from settings,
//! ensures the topics, and runs a component until its shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::HeaderName;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::Producer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::forwarder::{self, Clients, DlqWriter, ForwarderConfig, ForwarderContext};
use crate::health::Health;
use crate::kafka::{ClientLog, KafkaProducer, KafkaSettings, TopicPolicy, ensure_topics};
use crate::receiver::{self, Authenticator, Receiver, ReceiverConfig};
use crate::registry::SchemaRegistry;
use crate::secret::Secret;
use crate::segment::SegmentClient;

/// Time the producers get to deliver what they still hold when the process stops.
const PRODUCER_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ReceiverOptions {
    pub kafka: KafkaSettings,
    pub topics: TopicPolicy,
    pub config: ReceiverConfig,
    pub credentials: Credentials,
    pub allow_unauthenticated: bool,
    /// With a Schema Registry, values are framed with the webhook schema's id.
    pub schema_registry_url: Option<String>,
}

/// What authenticates a webhook: any key, or an HMAC signature under any secret.
#[derive(Clone)]
pub struct Credentials {
    pub webhook_keys: Vec<Secret>,
    pub hmac_secrets: Vec<Secret>,
    /// Header carrying the HMAC signature.
    pub signature_header: String,
}

impl Credentials {
    /// Webhook keys only, with the default signature header.
    pub fn keys(webhook_keys: Vec<Secret>) -> Self {
        Credentials {
            webhook_keys,
            hmac_secrets: Vec::new(),
            signature_header: receiver::DEFAULT_SIGNATURE_HEADER.to_string(),
        }
    }

    /// Checks the credentials and builds the authenticator, failing with the flag to fix.
    fn authenticator(self, allow_unauthenticated: bool) -> anyhow::Result<Authenticator> {
        if self.webhook_keys.is_empty() && self.hmac_secrets.is_empty() && !allow_unauthenticated {
            anyhow::bail!(
                "no webhook key or HMAC secret is configured; set --webhook-keys (GWEN_WEBHOOK_KEYS) or --webhook-hmac-secrets (GWEN_WEBHOOK_HMAC_SECRETS), or pass --allow-unauthenticated to accept unauthenticated webhooks"
            );
        }
        if self.webhook_keys.iter().any(|key| key.expose().is_empty()) {
            anyhow::bail!("--webhook-keys contains an empty key; remove the extra comma");
        }
        if self
            .hmac_secrets
            .iter()
            .any(|secret| secret.expose().is_empty())
        {
            anyhow::bail!(
                "--webhook-hmac-secrets contains an empty secret; remove the extra comma"
            );
        }
        let header = HeaderName::try_from(self.signature_header.as_str()).with_context(|| {
            format!("invalid --webhook-signature-header {:?}: use a header name such as X-Gwen-Signature", self.signature_header)
        })?;

        let authenticator = Authenticator::new(self.webhook_keys, self.hmac_secrets, header);
        if authenticator.is_open() {
            warn!(
                "--allow-unauthenticated: anyone who can reach the receiver can write to the topic"
            );
        }
        Ok(authenticator)
    }
}

pub struct ForwarderOptions {
    pub kafka: KafkaSettings,
    pub topics: TopicPolicy,
    pub group_id: String,
    pub dlq_topic: String,
    pub segment: SegmentClient,
    /// A Confluent-compatible Schema Registry to check framed values' schema ids against.
    pub schema_registry_url: Option<String>,
    /// Where a group with no committed offsets starts, instead of the oldest retained record.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    pub config: ForwarderConfig,
}

/// Builds the client for `--schema-registry-url` and checks the URL before anything connects.
fn schema_registry(url: Option<&str>) -> anyhow::Result<Option<Arc<SchemaRegistry>>> {
    Ok(url.map(SchemaRegistry::new).transpose()?.map(Arc::new))
}

/// Runs the receiver on `listener` until `shutdown` is cancelled, then flushes the producer.
pub async fn run_receiver(
    options: ReceiverOptions,
    listener: TcpListener,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let authenticator = options
        .credentials
        .authenticator(options.allow_unauthenticated)?;
    let registry = schema_registry(options.schema_registry_url.as_deref())?;

    let topic = options.config.topic.clone();
    let producer: KafkaProducer =
        receiver::producer_config(&options.kafka, options.config.produce_timeout)
            .create_with_context(ClientLog::default())
            .context("cannot create the Kafka producer")?;
    ensure_topics(&options.kafka, &[&topic], options.topics).await?;
    health.set_started(true);

    let mut receiver = Receiver::new(
        options.config,
        authenticator,
        producer.clone(),
        health.clone(),
    );
    if let Some(registry) = registry {
        receiver = receiver.with_registry(registry);
    }
    let receiver = Arc::new(receiver);
    let stopping = health.clone();
    let stop = shutdown.clone();
    receiver::run(listener, receiver, async move {
        stop.cancelled().await;
        stopping.set_stopping();
        info!("receiver stopping; responding to requests in flight");
    })
    .await
    .context("receiver server failed")?;

    flush(&producer, "receiver").await;
    info!(%topic, "receiver stopped");
    Ok(())
}

/// Runs the forwarder until `shutdown` is cancelled.
pub async fn run_forwarder(
    options: ForwarderOptions,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topic = options.config.topic.clone();
    if options.dlq_topic == topic {
        anyhow::bail!(
            "--dlq-topic {:?} is also the --topic: every dead letter would be read, fail and be dead-lettered again, without end; give the DLQ a topic of its own, such as {:?}",
            options.dlq_topic,
            format!("{topic}.dlq")
        );
    }
    let registry = schema_registry(options.schema_registry_url.as_deref())?;
    ensure_topics(
        &options.kafka,
        &[&topic, &options.dlq_topic],
        options.topics,
    )
    .await?;
    if let Some(start_at) = options.start_at {
        // Commits the offsets at that time for a new group before this member subscribes.
        crate::ops::start_at::apply_start_at(&options.kafka, &options.group_id, &topic, start_at)
            .await
            .context("cannot apply --start-at")?;
    }

    let dlq_producer: KafkaProducer = forwarder::dlq_producer_config(&options.kafka)
        .create_with_context(ClientLog::default())
        .context("cannot create the dead-letter producer")?;
    let (context, rebalances) = ForwarderContext::new(topic.clone());
    let consumer: StreamConsumer<ForwarderContext> =
        forwarder::consumer_config(&options.kafka, &options.group_id)
            .create_with_context(context)
            .context("cannot create the Kafka consumer")?;
    info!(%topic, group_id = %options.group_id, segment = %options.segment, "forwarder connecting");

    let clients = Clients {
        consumer: Arc::new(consumer),
        rebalances,
        segment: options.segment,
        dlq: DlqWriter::new(
            dlq_producer.clone(),
            options.dlq_topic,
            options.config.retry,
        ),
        registry,
    };
    forwarder::run(clients, options.config, health, shutdown.cancelled_owned())
        .await
        .context("forwarder failed")?;

    flush(&dlq_producer, "dead-letter").await;
    Ok(())
}

async fn flush(producer: &KafkaProducer, name: &'static str) {
    let producer = producer.clone();
    let flushed = tokio::task::spawn_blocking(move || producer.flush(PRODUCER_FLUSH_TIMEOUT)).await;
    match flushed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            warn!(producer = name, error = %error, "producer flush failed; unacknowledged records may be lost")
        }
        Err(error) => warn!(producer = name, error = %error, "producer flush did not run"),
    }
}

/// Runs the receiver and the forwarder in one process, sharing one shutdown: when one fails, the
/// other stops too.
pub async fn run_standalone(
    receiver: ReceiverOptions,
    forwarder: ForwarderOptions,
    listener: TcpListener,
    health: (Health, Health),
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let stop_on_error = |result: anyhow::Result<()>| {
        if result.is_err() {
            shutdown.cancel();
        }
        result
    };
    let (received, forwarded) = tokio::join!(
        async { stop_on_error(run_receiver(receiver, listener, health.0, shutdown.clone()).await) },
        async { stop_on_error(run_forwarder(forwarder, health.1, shutdown.clone()).await) },
    );
    received.and(forwarded)
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
pub fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    warn!(error = %error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT received; shutting down"),
            () = terminate => info!("SIGTERM received; shutting down"),
        }
        shutdown.cancel();
    });
}

/// Serves the admin endpoint on `listener` until `shutdown` is cancelled.
pub fn spawn_admin(listener: TcpListener, components: Vec<Health>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        if let Err(error) =
            crate::admin::run(listener, components, shutdown.cancelled_owned()).await
        {
            warn!(error = %error, "admin endpoint failed");
        }
    });
}
