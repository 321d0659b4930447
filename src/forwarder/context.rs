//! The consumer's context: logs rebalances and passes them to the forwarder loop.

use std::collections::BTreeSet;
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::kafka::ClientLog;
use crate::metrics::{label, metrics};

/// A change of the partitions this member owns.
#[derive(Debug)]
pub enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub struct ForwarderContext {
    topic: String,
    events: mpsc::UnboundedSender<RebalanceEvent>,
    /// Partitions owned now. Only these get lag and offset gauges, because a revoked partition's
    /// gauge would otherwise stay and be counted again by its new owner.
    assigned: Mutex<BTreeSet<i32>>,
    client_log: ClientLog,
}

impl ForwarderContext {
    pub fn new(topic: String) -> (Self, mpsc::UnboundedReceiver<RebalanceEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let context = ForwarderContext {
            topic,
            events,
            assigned: Mutex::new(BTreeSet::new()),
            client_log: ClientLog::default(),
        };
        (context, receiver)
    }

    fn partitions(&self, list: &TopicPartitionList) -> Vec<i32> {
        list.elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect()
    }

    fn assigned(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.assigned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits the stored offsets before partitions move. They cover only finished messages, so
    /// the next owner starts right after them; unfinished batches are abandoned and sent again.
    fn commit_finished(&self, consumer: &BaseConsumer<Self>, partitions: &[i32]) {
        // A closed group cannot commit (see `rebalance` for why a request then risks a hang),
        // and the forwarder made its final commit before closing.
        if consumer.closed() {
            return;
        }
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => {
                warn!(topic = %self.topic, ?partitions, error = %error, "offset commit on revocation failed; the next owner delivers those messages again")
            }
        }
    }

    /// Forgets revoked partitions and removes their gauges, so sums over members count each
    /// partition once.
    fn forget(&self, partitions: &[i32]) {
        let mut assigned = self.assigned();
        let metrics = metrics();
        for partition in partitions {
            assigned.remove(partition);
            metrics
                .committed_offset
                .remove(&label("partition", partition));
            metrics.consumer_lag.remove(&label("partition", partition));
        }
    }
}

impl ClientContext for ForwarderContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // librdkafka logs a reset caused by an error (offset out of range: the committed offset
        // left the topic's retention) as a warning; the messages in between are never delivered.
        if facility == "OFFSET"
            && message.contains("offset reset")
            && (level as i32) <= (RDKafkaLogLevel::Warning as i32)
        {
            metrics().offset_resets.inc();
            error!(topic = %self.topic, detail = message, "offset reset: messages between the committed offset and the reset position are skipped");
            return;
        }
        self.client_log.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.client_log.error(&error, reason);
    }

    /// Publishes the committed offset and the lag of each partition of the topic.
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let metrics = metrics();
        let assigned = self.assigned();
        for (partition, stats) in &topic.partitions {
            // Partition -1, librdkafka's internal unassigned partition, is never in the set.
            if !assigned.contains(partition) {
                continue;
            }
            if stats.committed_offset >= 0 {
                metrics
                    .committed_offset
                    .get_or_create(&label("partition", partition))
                    .set(stats.committed_offset);
            }
            if stats.consumer_lag >= 0 {
                metrics
                    .consumer_lag
                    .get_or_create(&label("partition", partition))
                    .set(stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for ForwarderContext {
    /// Applies a rebalance with the incremental calls of the cooperative protocol, which
    /// `consumer_config` always selects. rdkafka's default implementation first requests the
    /// protocol from librdkafka, and that request once hung the forwarder's shutdown forever
    /// inside the consumer's drop. librdkafka 2.12 destroys, without a reply, a request that
    /// reaches the group while it finishes closing, and the caller waits with no timeout
    /// (confluentinc/librdkafka#4041). So this makes as few requests as it can.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(list),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(list),
            _ => Rebalance::Error(KafkaError::Rebalance(err.into())),
        };
        self.pre_rebalance(consumer, &rebalance);

        // NOTE: a request sent just as the group finishes closing can still go unanswered, so
        // the forwarder bounds its wait for the close (see `close` in the forwarder module).
        if consumer.closed() {
            debug!(topic = %self.topic, "consumer group already closed; rebalance not applied");
        } else {
            let applied = match rebalance {
                Rebalance::Assign(_) => consumer.incremental_assign(list),
                // As rdkafka does, an error event gives up the partitions it lists.
                Rebalance::Revoke(_) | Rebalance::Error(_) => consumer.incremental_unassign(list),
            };
            if let Err(error) = applied {
                error!(topic = %self.topic, error = %error, "failed to apply the rebalance to the consumer");
            }
        }

        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions = self.partitions(list);
                info!(topic = %self.topic, ?partitions, "partitions revoked; committing their finished offsets");
                self.commit_finished(consumer, &partitions);
                self.forget(&partitions);
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
            self.assigned().extend(partitions.iter().copied());
            let _ = self.events.send(RebalanceEvent::Assigned(partitions));
        }
    }
}
