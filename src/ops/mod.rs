//! Operator commands: resetting a group's offsets (`replay`), inspecting and re-driving the
//! dead-letter topic (`dlq`), and creating and checking the topics (`topics`).
//!
//! Each entry point takes plain configuration and [`KafkaSettings`](crate::kafka::KafkaSettings)
//! and returns a report that the command prints, so tests call the same code as the binary.

mod consumer;
pub mod dlq;
pub mod redrive;
pub mod replay;
pub mod start_at;
pub mod topics;

use rdkafka::error::KafkaError;

/// A failed operator command, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("cannot {action}: {source}; check --brokers and the security settings")]
    Kafka {
        action: String,
        #[source]
        source: KafkaError,
    },
    #[error(
        "topic {topic} does not exist; check the topic name (--topic or --dlq-topic), or create it with `gwen-segment topics ensure`"
    )]
    TopicNotFound { topic: String },
    #[error("topic {topic} has no partition {partition}; its partitions are 0 to {}", .count - 1)]
    PartitionNotFound {
        topic: String,
        partition: i32,
        count: i32,
    },
    #[error(
        "consumer group {group_id} is {state} with {} active member(s) ({}); scale the forwarders of this group to zero first, then run the command again",
        .members.len(),
        .members.join(", ")
    )]
    GroupActive {
        group_id: String,
        state: String,
        members: Vec<String>,
    },
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Failed(String),
}

impl OpsError {
    fn kafka(action: impl Into<String>) -> impl FnOnce(KafkaError) -> OpsError {
        let action = action.into();
        move |source| OpsError::Kafka { action, source }
    }
}

/// Runs blocking librdkafka calls off the async runtime's worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OpsError> + Send + 'static,
) -> Result<T, OpsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| OpsError::Failed(format!("a Kafka request task failed: {error}")))?
}

/// Rejects a dead-letter topic that is also the main topic: its records would be read and
/// dead-lettered again, or re-driven onto themselves.
pub(crate) fn check_distinct_topics(topic: &str, dlq_topic: &str) -> Result<(), OpsError> {
    if topic == dlq_topic {
        return Err(OpsError::InvalidOption {
            option: "--dlq-topic",
            reason: format!(
                "{dlq_topic:?} is also the --topic; the dead-letter topic must be a topic of its own"
            ),
        });
    }
    Ok(())
}
