//! The consumer's context: logs rebalances and passes them to the forwarder loop.

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::TopicPartitionList;
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
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions = self.partitions(list);
                info!(topic = %self.topic, ?partitions, "partitions revoked");
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
