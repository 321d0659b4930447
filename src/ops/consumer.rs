//! A consumer for the look-ups and commits of the operator commands. It never subscribes, so it
//! does not join the group whose offsets it reads or commits.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, warn};

use super::OpsError;
use crate::kafka::KafkaSettings;

/// Time one request to the brokers may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Offsets per partition, ordered by partition.
pub type PartitionOffsets = BTreeMap<i32, i64>;

pub(crate) struct OpsConsumer {
    consumer: BaseConsumer<OpsContext>,
}

/// A client context that logs errors, except the end-of-partition events these reads request.
pub(crate) struct OpsContext;

impl ClientContext for OpsContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // With enable.partition.eof, librdkafka sometimes also reports a partition's end as a
        // client-wide error. The reads handle the end themselves.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            debug!(reason, "end of partition reported as a client error");
            return;
        }
        warn!(error = %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for OpsContext {}

/// A consumer group as the brokers describe it.
#[derive(Debug, Clone)]
pub(crate) struct GroupDescription {
    /// `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance`, or `Dead` for a group the
    /// brokers do not know.
    pub state: String,
    /// Each member as `client.id@host`.
    pub members: Vec<String>,
}

impl GroupDescription {
    /// Returns whether no consumer is in the group, so its offsets may be changed from outside.
    pub fn is_inactive(&self) -> bool {
        self.members.is_empty() && (self.state == "Empty" || self.state == "Dead")
    }
}

impl OpsConsumer {
    /// Creates the consumer. With a group id it reads and commits that group's offsets.
    pub fn new(settings: &KafkaSettings, group_id: Option<&str>) -> Result<Self, OpsError> {
        let mut config = settings.client_config();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true");
        if let Some(group_id) = group_id {
            config.set("group.id", group_id);
        }
        let consumer = config
            .create_with_context(OpsContext)
            .map_err(OpsError::kafka("create a Kafka consumer"))?;
        Ok(OpsConsumer { consumer })
    }

    pub fn inner(&self) -> &BaseConsumer<OpsContext> {
        &self.consumer
    }

    /// Returns the partition ids of `topic`. It requests the metadata of all topics because a
    /// request naming the topic would make a broker with automatic topic creation create it.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>, OpsError> {
        let metadata = self
            .consumer
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(OpsError::kafka(format!(
                "fetch the metadata of topic {topic}"
            )))?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .ok_or_else(|| OpsError::TopicNotFound {
                topic: topic.to_string(),
            })?;
        let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    /// Returns the requested partitions after checking that each exists, or all of them.
    pub fn select_partitions(
        &self,
        topic: &str,
        requested: Option<&[i32]>,
    ) -> Result<Vec<i32>, OpsError> {
        let all = self.partitions(topic)?;
        let Some(requested) = requested else {
            return Ok(all);
        };
        let mut selected = Vec::with_capacity(requested.len());
        for &partition in requested {
            if !all.contains(&partition) {
                return Err(OpsError::PartitionNotFound {
                    topic: topic.to_string(),
                    partition,
                    count: all.len() as i32,
                });
            }
            if !selected.contains(&partition) {
                selected.push(partition);
            }
        }
        selected.sort_unstable();
        Ok(selected)
    }

    /// Returns the low and high watermarks: the first retained offset and the offset after the
    /// last record.
    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), OpsError> {
        self.consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .map_err(OpsError::kafka(format!(
                "fetch the watermarks of {topic} partition {partition}"
            )))
    }

    /// Returns the group's committed offset per partition, `None` where nothing is committed.
    pub fn committed(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, Option<i64>>, OpsError> {
        let mut list = TopicPartitionList::new();
        for &partition in partitions {
            list.add_partition(topic, partition);
        }
        let action = || format!("fetch the committed offsets of topic {topic}");
        let committed = self
            .consumer
            .committed_offsets(list, REQUEST_TIMEOUT)
            .map_err(OpsError::kafka(action()))?;

        let mut offsets = BTreeMap::new();
        for element in committed.elements() {
            element.error().map_err(OpsError::kafka(action()))?;
            let offset = match element.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            };
            offsets.insert(element.partition(), offset);
        }
        Ok(offsets)
    }

    /// Returns per partition the offset of the first record whose timestamp is at or after
    /// `time`, or `None` when no record is that recent.
    pub fn offsets_at(
        &self,
        topic: &str,
        partitions: &[i32],
        time: DateTime<Utc>,
    ) -> Result<BTreeMap<i32, Option<i64>>, OpsError> {
        let action = || {
            format!(
                "look up the offsets of topic {topic} at {}",
                time.to_rfc3339()
            )
        };
        let mut list = TopicPartitionList::new();
        for &partition in partitions {
            list.add_partition_offset(topic, partition, Offset::Offset(time.timestamp_millis()))
                .map_err(OpsError::kafka(action()))?;
        }
        let found = self
            .consumer
            .offsets_for_times(list, REQUEST_TIMEOUT)
            .map_err(OpsError::kafka(action()))?;

        let mut offsets = BTreeMap::new();
        for element in found.elements() {
            element.error().map_err(OpsError::kafka(action()))?;
            let offset = match element.offset() {
                Offset::Offset(offset) if offset >= 0 => Some(offset),
                _ => None,
            };
            offsets.insert(element.partition(), offset);
        }
        Ok(offsets)
    }

    /// Commits `offsets` for the consumer's group: assigns the partitions without subscribing,
    /// commits synchronously, then reads the offsets back to confirm them. The brokers accept
    /// such a commit only while the group has no members.
    pub fn commit(&self, topic: &str, offsets: &PartitionOffsets) -> Result<(), OpsError> {
        let action = || format!("commit offsets of topic {topic}");
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in offsets {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(OpsError::kafka(action()))?;
        }

        self.consumer
            .assign(&list)
            .map_err(OpsError::kafka(action()))?;
        let committed = self.consumer.commit(&list, CommitMode::Sync);
        let _ = self.consumer.unassign();
        committed.map_err(OpsError::kafka(action()))?;

        let partitions: Vec<i32> = offsets.keys().copied().collect();
        let stored = self.committed(topic, &partitions)?;
        for (&partition, &offset) in offsets {
            let found = stored.get(&partition).copied().flatten();
            if found != Some(offset) {
                return Err(OpsError::Failed(format!(
                    "committed offset {offset} of {topic} partition {partition}, but the group now has {}; run the command again",
                    found.map_or("none".to_string(), |o| o.to_string())
                )));
            }
        }
        Ok(())
    }

    /// Describes `group_id` with the classic DescribeGroups request.
    // NOTE: a group that uses Kafka 4's consumer protocol (group.protocol=consumer) may not be
    // described by this request; the forwarder uses the classic protocol.
    pub fn describe_group(&self, group_id: &str) -> Result<GroupDescription, OpsError> {
        let groups = self
            .consumer
            .fetch_group_list(Some(group_id), REQUEST_TIMEOUT)
            .map_err(OpsError::kafka(format!(
                "describe consumer group {group_id}"
            )))?;
        let Some(group) = groups.groups().iter().find(|g| g.name() == group_id) else {
            // The brokers list no such group: it never existed or its offsets expired.
            return Ok(GroupDescription {
                state: "Dead".to_string(),
                members: Vec::new(),
            });
        };
        let members = group
            .members()
            .iter()
            .map(|m| format!("{}@{}", m.client_id(), m.client_host()))
            .collect();
        Ok(GroupDescription {
            state: group.state().to_string(),
            members,
        })
    }
}

/// Returns `offset` moved into the retained range `[low, high]`.
pub(crate) fn clamp(offset: i64, low: i64, high: i64) -> i64 {
    offset.max(low).min(high.max(low))
}
