//! Looks up the topics a process needs at start-up and creates the missing ones.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};
use tracing::info;

use super::{ClientLog, KafkaSettings};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error(
        "cannot reach the Kafka brokers {brokers} to look up topic {topic}: {reason}; check --brokers and the security settings"
    )]
    Unreachable {
        brokers: String,
        topic: String,
        reason: String,
    },
    #[error(
        "topic {topic} does not exist and --no-create-topics is set; create it with `gwen-segment topics ensure` or your cluster's tools"
    )]
    Missing { topic: String },
    #[error(
        "topic {topic} does not exist and could not be created ({reason}); create it with `gwen-segment topics ensure` or your cluster's tools"
    )]
    CreateFailed { topic: String, reason: String },
}

/// Handling of missing topics at start-up.
#[derive(Debug, Clone, Copy)]
pub struct TopicPolicy {
    pub create_missing: bool,
    pub partitions: i32,
}

/// Ensures every topic exists: looks each one up and, when allowed, creates the missing ones with
/// `cleanup.policy=delete` and the broker's default replication factor.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[&str],
    policy: TopicPolicy,
) -> Result<(), TopicError> {
    for topic in topics {
        if topic_exists(settings, topic).await? {
            continue;
        }
        if !policy.create_missing {
            return Err(TopicError::Missing {
                topic: topic.to_string(),
            });
        }
        create_topic(settings, topic, policy.partitions).await?;
    }
    Ok(())
}

async fn topic_exists(settings: &KafkaSettings, topic: &str) -> Result<bool, TopicError> {
    let config = settings.client_config();
    let topic_name = topic.to_string();
    let lookup = tokio::task::spawn_blocking(move || {
        // A metadata request naming the topic would make a broker with automatic topic creation
        // create it with its defaults; asking for all topics does not.
        let producer: BaseProducer<LookupContext> = config
            .create_with_context(LookupContext::default())
            .map_err(|e| e.to_string())?;
        let metadata = producer
            .client()
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map_err(|error| {
                // The metadata error only reports a transport failure; the broker's own words (an
                // authentication failure, say) wait in the client's queue until it is polled.
                producer.poll(Duration::from_millis(100));
                match producer.context().last_error() {
                    Some(cause) => format!("{error}; last broker error: {cause}"),
                    None => error.to_string(),
                }
            })?;
        Ok::<bool, String>(
            metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic_name && t.error().is_none()),
        )
    });
    match lookup.await {
        Ok(Ok(exists)) => Ok(exists),
        Ok(Err(reason)) => Err(TopicError::Unreachable {
            brokers: settings.brokers.clone(),
            topic: topic.to_string(),
            reason,
        }),
        Err(join_error) => Err(TopicError::CreateFailed {
            topic: topic.to_string(),
            reason: join_error.to_string(),
        }),
    }
}

/// Keeps the last error librdkafka reported while looking up topics, to explain a failure.
#[derive(Default)]
struct LookupContext {
    last_error: Mutex<Option<String>>,
    log: ClientLog,
}

impl LookupContext {
    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ClientContext for LookupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
        // "All brokers down" follows every failed connection and would hide the cause.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        }
    }
}

impl rdkafka::producer::ProducerContext for LookupContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

async fn create_topic(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
) -> Result<(), TopicError> {
    let failed = |reason: String| TopicError::CreateFailed {
        topic: topic.to_string(),
        reason,
    };
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config()
        .create()
        .map_err(|e| failed(e.to_string()))?;

    // A replication factor of -1 takes the broker's `default.replication.factor`.
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "delete");
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| failed(e.to_string()))?;

    for result in results {
        match result {
            Ok(name) => info!(topic = %name, partitions, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(failed(code.to_string())),
        }
    }
    Ok(())
}
