//! Looks up the topics a process needs at start-up and creates the missing ones.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};
use tracing::info;

use super::KafkaSettings;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error(
        "cannot reach the Kafka brokers {brokers} to look up topic {topic}: {source}; check --brokers and the security settings"
    )]
    Unreachable {
        brokers: String,
        topic: String,
        source: rdkafka::error::KafkaError,
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
        let producer: BaseProducer = config.create()?;
        let metadata = producer.client().fetch_metadata(None, METADATA_TIMEOUT)?;
        Ok::<bool, rdkafka::error::KafkaError>(
            metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic_name && t.error().is_none()),
        )
    });
    match lookup.await {
        Ok(Ok(exists)) => Ok(exists),
        Ok(Err(source)) => Err(TopicError::Unreachable {
            brokers: settings.brokers.clone(),
            topic: topic.to_string(),
            source,
        }),
        Err(join_error) => Err(TopicError::CreateFailed {
            topic: topic.to_string(),
            reason: join_error.to_string(),
        }),
    }
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
