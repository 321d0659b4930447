//! The consumer's context: logs rebalances and passes them to the forwarder loop.

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// A change of the partitions this member owns.
#[derive(Debug)]
pub enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub struct ForwarderContext {
    topic: String,
    events: mpsc::UnboundedSender<RebalanceEvent>,
}

impl ForwarderContext {
    pub fn new(topic: String) -> (Self, mpsc::UnboundedReceiver<RebalanceEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        (ForwarderContext { topic, events }, receiver)
    }

    fn partitions(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect()
    }
}

impl ClientContext for ForwarderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        warn!(error = %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for ForwarderContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions = self.partitions(list);
                info!(topic = %self.topic, ?partitions, "partitions revoked; committing their finished offsets");
                // The offsets stored so far cover only finished messages, so the next owner
                // starts right after them. Unfinished batches are abandoned and sent again.
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                    Err(error) => {
                        warn!(topic = %self.topic, ?partitions, error = %error, "offset commit on revocation failed; the next owner delivers those messages again")
                    }
                }
                let _ = self.events.send(RebalanceEvent::Revoked(partitions));
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(error) => {
                error!(topic = %self.topic, error = %error, "rebalance failed")
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let partitions = self.partitions(list);
            info!(topic = %self.topic, ?partitions, "partitions assigned");
            let _ = self.events.send(RebalanceEvent::Assigned(partitions));
        }
    }
}
