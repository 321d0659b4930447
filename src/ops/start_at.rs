//! `forwarder --start-at`: a group without committed offsets starts at a time instead of the
//! earliest retained offset.
//!
//! Before the forwarder subscribes, this commits for the group, on each partition, the offset of
//! the first record at or after the time (the partition's end when no record is that recent). The
//! subscription then starts from those commits as from any others. This is simpler than seeking
//! on assignment: it runs once, before any member owns a partition, and needs nothing in the
//! rebalance callbacks. A group with any committed offset is left alone, so a restarted
//! forwarder resumes where it stopped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::consumer::{OpsConsumer, PartitionOffsets, clamp};
use super::{OpsError, blocking};
use crate::kafka::KafkaSettings;

/// Outcome of `--start-at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    /// The group had no committed offsets, so these were committed.
    Committed(PartitionOffsets),
    /// The group already had committed offsets on this many partitions, so nothing changed.
    Ignored { committed_partitions: usize },
    /// Another member joined the group first, so the brokers rejected the commit. The group
    /// starts where that member starts.
    Rejected { members: Vec<String> },
}

/// Commits the offsets at `start_at` for a group that has none, and logs what it did.
pub async fn apply_start_at(
    settings: &KafkaSettings,
    group_id: &str,
    topic: &str,
    start_at: DateTime<Utc>,
) -> Result<StartAt, OpsError> {
    let settings = settings.clone();
    let (group_id, topic) = (group_id.to_string(), topic.to_string());
    blocking(move || {
        let outcome = start_at_blocking(&settings, &group_id, &topic, start_at)?;
        log_outcome(&outcome, &group_id, &topic, start_at);
        Ok(outcome)
    })
    .await
}

fn start_at_blocking(
    settings: &KafkaSettings,
    group_id: &str,
    topic: &str,
    start_at: DateTime<Utc>,
) -> Result<StartAt, OpsError> {
    let consumer = OpsConsumer::new(settings, Some(group_id))?;
    let partitions = wait_for_partitions(&consumer, topic)?;
    let committed = consumer.committed(topic, &partitions)?;
    let committed_partitions = committed.values().filter(|o| o.is_some()).count();
    if committed_partitions > 0 {
        return Ok(StartAt::Ignored {
            committed_partitions,
        });
    }

    let found = consumer.offsets_at(topic, &partitions, start_at)?;
    let mut offsets = PartitionOffsets::new();
    for &partition in &partitions {
        let (low, high) = consumer.watermarks(topic, partition)?;
        let offset = found.get(&partition).copied().flatten().unwrap_or(high);
        offsets.insert(partition, clamp(offset, low, high));
    }

    match consumer.commit(topic, &offsets) {
        Ok(()) => Ok(StartAt::Committed(offsets)),
        Err(error) => {
            let group = consumer.describe_group(group_id)?;
            if group.is_inactive() {
                return Err(error);
            }
            Ok(StartAt::Rejected {
                members: group.members,
            })
        }
    }
}

/// Returns the partitions of `topic`, waiting up to 5 s for it to appear: the forwarder may have
/// created it a moment ago, and the metadata can lag behind the creation.
fn wait_for_partitions(consumer: &OpsConsumer, topic: &str) -> Result<Vec<i32>, OpsError> {
    for _ in 0..20 {
        match consumer.partitions(topic) {
            Err(OpsError::TopicNotFound { .. }) => std::thread::sleep(Duration::from_millis(250)),
            found => return found,
        }
    }
    consumer.partitions(topic)
}

fn log_outcome(outcome: &StartAt, group_id: &str, topic: &str, start_at: DateTime<Utc>) {
    let in_future = start_at > Utc::now();
    let start_at = start_at.to_rfc3339();
    match outcome {
        StartAt::Committed(offsets) if in_future => warn!(
            %group_id, %topic, %start_at, ?offsets,
            "--start-at is in the future, so no record is that recent yet unless its timestamp is ahead of this clock: the new group starts at the end of each partition and delivers every record written from now on, including those written before --start-at"
        ),
        StartAt::Committed(offsets) => info!(
            %group_id, %topic, %start_at, ?offsets,
            "new consumer group: committed the offsets at --start-at, so delivery starts there instead of the earliest offset"
        ),
        StartAt::Ignored {
            committed_partitions,
        } => info!(
            %group_id, %topic, %start_at, committed_partitions,
            "--start-at is ignored: the group already has committed offsets and resumes from them; use `gwen-segment replay` to move them"
        ),
        StartAt::Rejected { members } => warn!(
            %group_id, %topic, %start_at, ?members,
            "--start-at is ignored: other forwarders joined the group first and start from the offsets they found"
        ),
    }
}
