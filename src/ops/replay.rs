//! Resets a consumer group's committed offsets, so the forwarders deliver a range again or skip
//! it. Every messageId derives from the webhook bytes, so Segment drops the copies it has already
//! seen within its deduplication window.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use tracing::info;

use super::consumer::{GroupDescription, OpsConsumer, PartitionOffsets, clamp};
use super::{OpsError, blocking};
use crate::kafka::KafkaSettings;

/// Target position of an offset reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayTarget {
    /// The first record whose timestamp is at or after this time, or the end of the partition
    /// when no record is that recent.
    Datetime(DateTime<Utc>),
    Earliest,
    Latest,
    Offset(i64),
    /// The current position plus this many offsets. A negative shift moves back.
    ShiftBy(i64),
}

impl fmt::Display for ReplayTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayTarget::Datetime(time) => write!(f, "datetime {}", time.to_rfc3339()),
            ReplayTarget::Earliest => f.write_str("earliest"),
            ReplayTarget::Latest => f.write_str("latest"),
            ReplayTarget::Offset(offset) => write!(f, "offset {offset}"),
            ReplayTarget::ShiftBy(shift) => write!(f, "shift by {shift}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub group_id: String,
    pub topic: String,
    pub target: ReplayTarget,
    /// Partitions to reset, or `None` for all.
    pub partitions: Option<Vec<i32>>,
    /// Whether the targets are committed rather than only planned.
    pub execute: bool,
}

/// One partition's reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlan {
    pub partition: i32,
    /// The group's committed offset before the reset.
    pub committed: Option<i64>,
    pub low_watermark: i64,
    pub high_watermark: i64,
    /// The offset to commit, within `[low_watermark, high_watermark]`.
    pub target: i64,
}

impl PartitionPlan {
    /// Returns the offset the group would resume from without the reset: the committed offset,
    /// or the low watermark when none is committed or it fell out of the retained range (the
    /// forwarder's `auto.offset.reset=earliest`).
    pub fn position(&self) -> i64 {
        match self.committed {
            Some(offset) if (self.low_watermark..=self.high_watermark).contains(&offset) => offset,
            _ => self.low_watermark,
        }
    }

    /// Returns how many messages the group delivers again after moving back.
    pub fn redelivered(&self) -> i64 {
        (self.position() - self.target).max(0)
    }

    /// Returns how many messages the group never delivers after moving forward.
    pub fn skipped(&self) -> i64 {
        (self.target - self.position()).max(0)
    }
}

#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub group_id: String,
    pub topic: String,
    pub target: ReplayTarget,
    /// The group's state when the offsets were read: `Empty`, or `Dead` for an unknown group.
    pub group_state: String,
    pub executed: bool,
    pub partitions: Vec<PartitionPlan>,
}

impl ReplayReport {
    pub fn redelivered(&self) -> i64 {
        self.partitions.iter().map(PartitionPlan::redelivered).sum()
    }

    pub fn skipped(&self) -> i64 {
        self.partitions.iter().map(PartitionPlan::skipped).sum()
    }
}

/// Plans the reset and, with `execute`, commits it. Rejects the request while the group has
/// members, because a running forwarder would overwrite the offsets with its own.
pub async fn replay(
    settings: &KafkaSettings,
    config: ReplayConfig,
) -> Result<ReplayReport, OpsError> {
    if let ReplayTarget::Offset(offset) = config.target
        && offset < 0
    {
        return Err(OpsError::InvalidOption {
            option: "--to-offset",
            reason: format!("{offset} is negative; use an offset of 0 or more"),
        });
    }
    let settings = settings.clone();
    blocking(move || replay_blocking(&settings, config)).await
}

fn replay_blocking(
    settings: &KafkaSettings,
    config: ReplayConfig,
) -> Result<ReplayReport, OpsError> {
    let consumer = OpsConsumer::new(settings, Some(&config.group_id))?;
    let group = require_inactive(&consumer, &config.group_id)?;
    let partitions = consumer.select_partitions(&config.topic, config.partitions.as_deref())?;
    let plans = plan(&consumer, &config, &partitions)?;
    let mut report = ReplayReport {
        group_id: config.group_id.clone(),
        topic: config.topic.clone(),
        target: config.target,
        group_state: group.state,
        executed: false,
        partitions: plans,
    };
    if !config.execute {
        return Ok(report);
    }

    // A forwarder may have joined since the first look; the brokers would reject the commit
    // then, but this gives the clearer message.
    require_inactive(&consumer, &config.group_id)?;
    let targets: PartitionOffsets = report
        .partitions
        .iter()
        .map(|plan| (plan.partition, plan.target))
        .collect();
    consumer.commit(&config.topic, &targets)?;
    for plan in &report.partitions {
        info!(
            group_id = %config.group_id, topic = %config.topic, partition = plan.partition,
            from = ?plan.committed, to = plan.target, redelivered = plan.redelivered(), skipped = plan.skipped(),
            "committed offset reset"
        );
    }
    report.executed = true;
    Ok(report)
}

fn require_inactive(consumer: &OpsConsumer, group_id: &str) -> Result<GroupDescription, OpsError> {
    let group = consumer.describe_group(group_id)?;
    if group.is_inactive() {
        return Ok(group);
    }
    Err(OpsError::GroupActive {
        group_id: group_id.to_string(),
        state: group.state,
        members: group.members,
    })
}

fn plan(
    consumer: &OpsConsumer,
    config: &ReplayConfig,
    partitions: &[i32],
) -> Result<Vec<PartitionPlan>, OpsError> {
    let topic = &config.topic;
    let committed = consumer.committed(topic, partitions)?;
    let by_time = match config.target {
        ReplayTarget::Datetime(time) => consumer.offsets_at(topic, partitions, time)?,
        _ => BTreeMap::new(),
    };

    let mut plans = Vec::with_capacity(partitions.len());
    for &partition in partitions {
        let (low, high) = consumer.watermarks(topic, partition)?;
        let mut plan = PartitionPlan {
            partition,
            committed: committed.get(&partition).copied().flatten(),
            low_watermark: low,
            high_watermark: high,
            target: 0,
        };
        let requested = match config.target {
            ReplayTarget::Datetime(_) => by_time.get(&partition).copied().flatten().unwrap_or(high),
            ReplayTarget::Earliest => low,
            ReplayTarget::Latest => high,
            ReplayTarget::Offset(offset) => offset,
            ReplayTarget::ShiftBy(shift) => plan.position().saturating_add(shift),
        };
        plan.target = clamp(requested, low, high);
        plans.push(plan);
    }
    Ok(plans)
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "group {} ({}), topic {}, target {}",
            self.group_id, self.group_state, self.topic, self.target
        )?;
        if self.group_state == "Dead" {
            writeln!(
                f,
                "note: the brokers know no group {}; check --group-id against the forwarders' GWEN_GROUP_ID, or go on to give a new group its first offsets",
                self.group_id
            )?;
        }
        writeln!(
            f,
            "{:>9}  {:>12}  {:>12}  {:>12}  {:>12}  change",
            "partition", "committed", "low", "high", "target"
        )?;
        for plan in &self.partitions {
            let committed = plan
                .committed
                .map_or_else(|| "none".to_string(), |o| o.to_string());
            let change = match (plan.redelivered(), plan.skipped()) {
                (0, 0) => "none".to_string(),
                (again, 0) => format!("{again} delivered again"),
                (_, skipped) => format!("{skipped} skipped"),
            };
            writeln!(
                f,
                "{:>9}  {:>12}  {:>12}  {:>12}  {:>12}  {change}",
                plan.partition, committed, plan.low_watermark, plan.high_watermark, plan.target
            )?;
        }
        let totals = format!(
            "{} message(s) delivered again, {} skipped",
            self.redelivered(),
            self.skipped()
        );
        if self.executed {
            writeln!(f, "committed: {totals}")
        } else {
            writeln!(
                f,
                "dry run, nothing committed: {totals}; add --execute to commit these offsets"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(committed: Option<i64>, low: i64, high: i64, target: i64) -> PartitionPlan {
        PartitionPlan {
            partition: 0,
            committed,
            low_watermark: low,
            high_watermark: high,
            target,
        }
    }

    #[test]
    fn plan_counts_redelivered_when_moving_back() {
        let plan = plan(Some(50), 10, 100, 20);
        assert_eq!(plan.redelivered(), 30);
        assert_eq!(plan.skipped(), 0);
    }

    #[test]
    fn plan_counts_skipped_when_moving_forward() {
        let plan = plan(Some(50), 10, 100, 100);
        assert_eq!(plan.redelivered(), 0);
        assert_eq!(plan.skipped(), 50);
    }

    #[test]
    fn plan_without_commit_starts_at_low_watermark() {
        assert_eq!(plan(None, 10, 100, 10).position(), 10);
        assert_eq!(plan(Some(3), 10, 100, 10).position(), 10);
        assert_eq!(plan(None, 10, 100, 40).skipped(), 30);
    }

    #[test]
    fn clamp_keeps_targets_within_watermarks() {
        assert_eq!(clamp(-5, 10, 100), 10);
        assert_eq!(clamp(500, 10, 100), 100);
        assert_eq!(clamp(42, 10, 100), 42);
        assert_eq!(clamp(7, 0, 0), 0);
    }
}
