//! Command-line options of the operator commands `replay`, `dlq` and `topics`, and of
//! `forwarder --start-at`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args, Subcommand};
use gwen_segment::ops::dlq::DlqSelection;
use gwen_segment::ops::replay::ReplayTarget;
use gwen_segment::ops::topics::TopicSpec;

use crate::cli::{ConnectionArgs, positive_byte_count, positive_duration};

/// Values of the `gwen-dlq-kind` header.
const DLQ_KINDS: [&str; 5] = [
    "invalid_webhook",
    "missing_user_id",
    "event_too_large",
    "segment_rejected",
    "unknown_type",
];

/// Parses an RFC 3339 time with an offset, such as 2025-12-04T13:00:00Z.
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            format!("{error}; use RFC 3339 with an offset, for example 2025-12-04T13:00:00Z")
        })
}

#[derive(Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["to_datetime", "to_earliest", "to_latest", "to_offset", "shift_by"])
))]
pub struct ReplayArgs {
    #[command(flatten)]
    pub kafka: ConnectionArgs,

    /// Consumer group whose offsets are reset: the forwarders' --group-id. Its forwarders must be
    /// stopped (scaled to zero).
    #[arg(long, env = "GWEN_GROUP_ID")]
    pub group_id: String,

    /// Kafka topic of the webhooks.
    #[arg(long, env = "GWEN_TOPIC", default_value = "gwen.webhooks")]
    pub topic: String,

    /// Move to the first record at or after this time, RFC 3339 (e.g. 2025-12-04T13:00:00Z); a
    /// partition with no record that recent moves to its end.
    #[arg(long, value_parser = parse_datetime)]
    pub to_datetime: Option<DateTime<Utc>>,

    /// Move to the oldest retained record.
    #[arg(long)]
    pub to_earliest: bool,

    /// Move past the last record: nothing is delivered until new webhooks arrive.
    #[arg(long)]
    pub to_latest: bool,

    /// Move to this offset, in every selected partition.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub to_offset: Option<i64>,

    /// Move by this many offsets from the current position; negative moves back (e.g. -1000).
    #[arg(long, allow_negative_numbers = true)]
    pub shift_by: Option<i64>,

    /// Partitions to reset, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<i32>,

    /// Commit the new offsets; without it the command only prints them.
    #[arg(long)]
    pub execute: bool,
}

impl ReplayArgs {
    pub fn target(&self) -> ReplayTarget {
        if let Some(time) = self.to_datetime {
            ReplayTarget::Datetime(time)
        } else if self.to_earliest {
            ReplayTarget::Earliest
        } else if self.to_latest {
            ReplayTarget::Latest
        } else if let Some(offset) = self.to_offset {
            ReplayTarget::Offset(offset)
        } else {
            // clap requires one target, so the shift is set here.
            ReplayTarget::ShiftBy(self.shift_by.unwrap_or(0))
        }
    }
}

#[derive(Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Counts the dead-letter records by kind and by source partition.
    List(DlqSourceArgs),
    /// Prints dead-letter records with their headers.
    Show(DlqShowArgs),
    /// Writes dead-letter records back to the main topic; a dry run unless --execute is given.
    Redrive(DlqRedriveArgs),
}

/// The dead-letter topic and which of its records a command reads.
#[derive(Args)]
pub struct DlqSourceArgs {
    #[command(flatten)]
    pub kafka: ConnectionArgs,

    /// Kafka topic of the dead-lettered messages.
    #[arg(long, env = "GWEN_DLQ_TOPIC", default_value = "gwen.webhooks.dlq")]
    pub dlq_topic: String,

    /// Only records of these kinds (gwen-dlq-kind), comma-separated [default: all].
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(DLQ_KINDS))]
    pub kind: Vec<String>,

    /// Only these partitions of the dead-letter topic, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub partitions: Vec<i32>,

    /// First offset to read, inclusive, in each selected partition of the dead-letter topic.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub from_offset: Option<i64>,

    /// Last offset to read, inclusive, in each selected partition of the dead-letter topic.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    pub to_offset: Option<i64>,

    /// Only records dead-lettered at or after this time, RFC 3339.
    #[arg(long, value_parser = parse_datetime)]
    pub since: Option<DateTime<Utc>>,

    /// Only records dead-lettered before this time, RFC 3339.
    #[arg(long, value_parser = parse_datetime)]
    pub until: Option<DateTime<Utc>>,
}

impl DlqSourceArgs {
    pub fn selection(&self) -> DlqSelection {
        DlqSelection {
            kinds: self.kind.clone(),
            partitions: (!self.partitions.is_empty()).then(|| self.partitions.clone()),
            from_offset: self.from_offset,
            to_offset: self.to_offset,
            since: self.since,
            until: self.until,
        }
    }
}

#[derive(Args)]
pub struct DlqShowArgs {
    #[command(flatten)]
    pub source: DlqSourceArgs,

    /// Records to print at most.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,

    /// Also print each payload: the webhook as received, which may hold personal data.
    #[arg(long)]
    pub show_payload: bool,
}

#[derive(Args)]
pub struct DlqRedriveArgs {
    #[command(flatten)]
    pub source: DlqSourceArgs,

    /// Kafka topic of the webhooks, which the records are written back to.
    #[arg(long, env = "GWEN_TOPIC", default_value = "gwen.webhooks")]
    pub topic: String,

    /// Also select records that already failed again after an earlier redrive.
    #[arg(long)]
    pub include_redriven: bool,

    /// Write the records; without it the command only counts them.
    #[arg(long)]
    pub execute: bool,
}

#[derive(Args)]
pub struct TopicsArgs {
    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Creates the main and dead-letter topics when missing, and reports existing topics whose
    /// settings differ, without changing them.
    Ensure(TopicSpecArgs),
    /// Compares the topics with the expected settings; exits with status 1 when they differ.
    Check(TopicSpecArgs),
}

#[derive(Args)]
pub struct TopicSpecArgs {
    #[command(flatten)]
    pub kafka: ConnectionArgs,

    /// Kafka topic of the webhooks.
    #[arg(long, env = "GWEN_TOPIC", default_value = "gwen.webhooks")]
    pub topic: String,

    /// Kafka topic of the dead-lettered messages.
    #[arg(long, env = "GWEN_DLQ_TOPIC", default_value = "gwen.webhooks.dlq")]
    pub dlq_topic: String,

    /// Partitions of each topic; more partitions allow more forwarder replicas.
    #[arg(long, env = "GWEN_TOPIC_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,

    /// Replicas of each partition; 3 on a production cluster.
    #[arg(long, env = "GWEN_REPLICATION_FACTOR", value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: i32,

    /// retention.ms of each topic (e.g. 7d); keep it above the longest Segment outage you plan
    /// for [default: the broker's].
    #[arg(long, env = "GWEN_RETENTION", value_parser = positive_duration)]
    pub retention: Option<Duration>,

    /// min.insync.replicas of each topic, at most --replication-factor [default: the broker's].
    #[arg(long, env = "GWEN_MIN_INSYNC_REPLICAS", value_parser = clap::value_parser!(i32).range(1..))]
    pub min_insync_replicas: Option<i32>,

    /// The receiver's --max-record-bytes; the topics' max.message.bytes must fit such a record.
    #[arg(long, env = "GWEN_MAX_RECORD_BYTES", default_value_t = 900_000, value_parser = positive_byte_count)]
    pub max_record_bytes: usize,
}

impl TopicSpecArgs {
    pub fn spec(&self) -> TopicSpec {
        TopicSpec {
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            retention: self.retention,
            min_insync_replicas: self.min_insync_replicas,
            max_record_bytes: self.max_record_bytes,
        }
    }
}
