//! Reads the dead-letter topic for `dlq list` and `dlq show`, and selects records for
//! `dlq redrive`.
//!
//! The reader assigns each partition from its low watermark (or the first selected offset) and
//! stops at the high watermark it saw when it started, so a read is bounded even while the
//! forwarders keep writing. It joins no group and commits nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::warn;

use super::OpsError;
use super::consumer::OpsConsumer;
use crate::kafka::{KafkaSettings, headers};

/// A read fails when no record or end of partition arrives for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Records read ahead of the caller.
const READ_AHEAD: usize = 256;
/// Consumer errors logged during one read; the rest are only counted.
const LOGGED_ERRORS: u32 = 5;

/// One record of the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqRecord {
    pub partition: i32,
    pub offset: i64,
    /// The record's Kafka timestamp: when the forwarder dead-lettered it.
    pub timestamp: Option<DateTime<Utc>>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// Every header in record order, as written.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DlqRecord {
    /// Returns the first header named `name` as text (invalid UTF-8 replaced).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }

    /// Returns the `gwen-dlq-kind` header, or `unknown` when it is missing.
    pub fn kind(&self) -> String {
        self.header(headers::DLQ_KIND)
            .unwrap_or_else(|| "unknown".to_string())
    }

    /// Returns whether `dlq redrive` wrote this record back before it failed again.
    pub fn is_redriven(&self) -> bool {
        self.headers
            .iter()
            .any(|(key, _)| key == headers::REDRIVEN_AT)
    }

    fn from_message(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|list| {
                list.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        DlqRecord {
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// Filter over the records of the dead-letter topic that a command reads. A record is selected
/// when it meets every condition given.
#[derive(Debug, Clone, Default)]
pub struct DlqSelection {
    /// `gwen-dlq-kind` values, or empty for every kind.
    pub kinds: Vec<String>,
    /// Partitions of the dead-letter topic, or `None` for all.
    pub partitions: Option<Vec<i32>>,
    /// First offset, inclusive, in each selected partition.
    pub from_offset: Option<i64>,
    /// Last offset, inclusive, in each selected partition.
    pub to_offset: Option<i64>,
    /// Earliest record time, inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Latest record time, exclusive.
    pub until: Option<DateTime<Utc>>,
}

impl DlqSelection {
    /// Returns whether `record` meets every condition.
    pub fn matches(&self, record: &DlqRecord) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&record.kind()) {
            return false;
        }
        if self.from_offset.is_some_and(|from| record.offset < from)
            || self.to_offset.is_some_and(|to| record.offset > to)
        {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(time) = record.timestamp else {
                return false;
            };
            if self.since.is_some_and(|since| time < since)
                || self.until.is_some_and(|until| time >= until)
            {
                return false;
            }
        }
        true
    }

    /// Rejects a selection that can match nothing, naming both options.
    pub fn validate(&self) -> Result<(), OpsError> {
        if let (Some(from), Some(to)) = (self.from_offset, self.to_offset)
            && from > to
        {
            return Err(OpsError::InvalidOption {
                option: "--from-offset",
                reason: format!("{from} is after --to-offset {to}"),
            });
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since >= until
        {
            return Err(OpsError::InvalidOption {
                option: "--since",
                reason: format!(
                    "{} is not before --until {}",
                    since.to_rfc3339(),
                    until.to_rfc3339()
                ),
            });
        }
        Ok(())
    }
}

/// Starts reading the selected records of `dlq_topic` on a blocking thread. The channel yields
/// them partition by partition as they arrive, then closes. An error is the last item, and
/// dropping the receiver stops the read.
pub fn read_selected(
    settings: &KafkaSettings,
    dlq_topic: &str,
    selection: DlqSelection,
) -> mpsc::Receiver<Result<DlqRecord, OpsError>> {
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    let settings = settings.clone();
    let topic = dlq_topic.to_string();
    tokio::task::spawn_blocking(move || {
        if let Err(error) = read_blocking(&settings, &topic, &selection, &sender) {
            let _ = sender.blocking_send(Err(error));
        }
    });
    receiver
}

/// Range still to read in one partition: up to `end`, exclusive.
struct Remaining {
    end: i64,
}

fn read_blocking(
    settings: &KafkaSettings,
    topic: &str,
    selection: &DlqSelection,
    sender: &mpsc::Sender<Result<DlqRecord, OpsError>>,
) -> Result<(), OpsError> {
    selection.validate()?;
    // librdkafka assigns partitions only to a consumer with a group.id. This one is unique and
    // the reader never joins that group or commits, so the brokers keep nothing of it.
    let reader_group = format!("gwen-segment-dlq-reader-{}", uuid::Uuid::new_v4());
    let consumer = OpsConsumer::new(settings, Some(&reader_group))?;
    let (assignment, mut remaining) = plan_reads(&consumer, topic, selection)?;
    if remaining.is_empty() {
        return Ok(());
    }
    consumer
        .inner()
        .assign(&assignment)
        .map_err(OpsError::kafka(format!("assign the partitions of {topic}")))?;

    let mut last_progress = Instant::now();
    let mut errors = 0u32;
    while !remaining.is_empty() {
        if last_progress.elapsed() > IDLE_TIMEOUT {
            let partitions: Vec<i32> = remaining.keys().copied().collect();
            return Err(OpsError::Failed(format!(
                "reading {topic} stalled: no record arrived for {}s from partitions {partitions:?} ({errors} consumer error(s) meanwhile); check the brokers and run the command again",
                IDLE_TIMEOUT.as_secs()
            )));
        }
        let Some(polled) = consumer.inner().poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = match polled {
            Ok(message) => message,
            Err(KafkaError::PartitionEOF(partition)) => {
                last_progress = Instant::now();
                remaining.remove(&partition);
                continue;
            }
            Err(error) => {
                errors += 1;
                if errors <= LOGGED_ERRORS {
                    warn!(%topic, error = %error, errors, "error while reading the dead-letter topic; still reading until the idle timeout");
                }
                continue;
            }
        };
        last_progress = Instant::now();

        let partition = message.partition();
        let Some(range) = remaining.get(&partition) else {
            continue;
        };
        if message.offset() >= range.end {
            remaining.remove(&partition);
            continue;
        }
        if message.offset() + 1 >= range.end {
            remaining.remove(&partition);
        }
        let record = DlqRecord::from_message(&message);
        if selection.matches(&record) && sender.blocking_send(Ok(record)).is_err() {
            // The caller dropped the receiver because it has the records it needs.
            return Ok(());
        }
    }
    Ok(())
}

/// Computes where each selected partition's read starts and ends, from the watermarks, the
/// offset range and `since` (through the offsets for that time).
fn plan_reads(
    consumer: &OpsConsumer,
    topic: &str,
    selection: &DlqSelection,
) -> Result<(TopicPartitionList, BTreeMap<i32, Remaining>), OpsError> {
    let partitions = consumer.select_partitions(topic, selection.partitions.as_deref())?;
    let since = match selection.since {
        Some(time) => consumer.offsets_at(topic, &partitions, time)?,
        None => BTreeMap::new(),
    };

    let mut assignment = TopicPartitionList::new();
    let mut remaining = BTreeMap::new();
    for partition in partitions {
        let (low, high) = consumer.watermarks(topic, partition)?;
        let mut start = low.max(selection.from_offset.unwrap_or(0));
        if selection.since.is_some() {
            start = start.max(since.get(&partition).copied().flatten().unwrap_or(high));
        }
        let end = selection
            .to_offset
            .map_or(high, |to| high.min(to.saturating_add(1)));
        if start >= end {
            continue;
        }
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(start))
            .map_err(OpsError::kafka(format!("assign the partitions of {topic}")))?;
        remaining.insert(partition, Remaining { end });
    }
    Ok((assignment, remaining))
}

/// Counts of the selected dead-letter records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DlqSummary {
    pub total: u64,
    /// Records per `gwen-dlq-kind`.
    pub by_kind: BTreeMap<String, u64>,
    /// Records per source topic and partition (`gwen-dlq-source-topic`,
    /// `gwen-dlq-source-partition`), with `None` when a header is missing or not a number.
    pub by_source: BTreeMap<(String, Option<i32>), u64>,
    /// Records that `dlq redrive` wrote back before they failed again.
    pub redriven: u64,
}

impl DlqSummary {
    pub fn add(&mut self, record: &DlqRecord) {
        self.total += 1;
        *self.by_kind.entry(record.kind()).or_default() += 1;
        let source_topic = record
            .header(headers::DLQ_SOURCE_TOPIC)
            .unwrap_or_else(|| "unknown".to_string());
        let source_partition = record
            .header(headers::DLQ_SOURCE_PARTITION)
            .and_then(|p| p.parse().ok());
        *self
            .by_source
            .entry((source_topic, source_partition))
            .or_default() += 1;
        if record.is_redriven() {
            self.redriven += 1;
        }
    }
}

/// Counts the selected records of `dlq_topic` by kind and by source partition.
pub async fn list(
    settings: &KafkaSettings,
    dlq_topic: &str,
    selection: DlqSelection,
) -> Result<DlqSummary, OpsError> {
    selection.validate()?;
    let mut records = read_selected(settings, dlq_topic, selection);
    let mut summary = DlqSummary::default();
    while let Some(record) = records.recv().await {
        summary.add(&record?);
    }
    Ok(summary)
}

/// Returns up to `limit` selected records of `dlq_topic`, sorted by partition and offset. The
/// partitions are read at once, so with several of them the records shown are the first to
/// arrive, not the oldest overall.
pub async fn show(
    settings: &KafkaSettings,
    dlq_topic: &str,
    selection: DlqSelection,
    limit: usize,
) -> Result<Vec<DlqRecord>, OpsError> {
    selection.validate()?;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut records = read_selected(settings, dlq_topic, selection);
    let mut selected = Vec::new();
    while let Some(record) = records.recv().await {
        selected.push(record?);
        if selected.len() >= limit {
            break;
        }
    }
    selected.sort_by_key(|r| (r.partition, r.offset));
    Ok(selected)
}

impl fmt::Display for DlqSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} record(s), {} of them already re-driven once",
            self.total, self.redriven
        )?;
        if self.total == 0 {
            return Ok(());
        }
        writeln!(f, "by kind:")?;
        for (kind, count) in &self.by_kind {
            writeln!(f, "  {kind:<20} {count:>10}")?;
        }
        writeln!(f, "by source:")?;
        for ((topic, partition), count) in &self.by_source {
            let partition = partition.map_or_else(|| "unknown".to_string(), |p| p.to_string());
            writeln!(f, "  {topic} partition {partition:<8} {count:>10}")?;
        }
        Ok(())
    }
}

/// Formats a record for `dlq show`: position, time, key and headers; the payload only when
/// `show_payload` is set, because it may hold personal data.
pub struct ShowRecord<'a> {
    pub record: &'a DlqRecord,
    pub show_payload: bool,
}

impl fmt::Display for ShowRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let record = self.record;
        let time = record
            .timestamp
            .map_or_else(|| "unknown".to_string(), |t| t.to_rfc3339());
        writeln!(
            f,
            "partition {} offset {} at {time}",
            record.partition, record.offset
        )?;
        let key = record.key.as_deref().map_or_else(
            || "(none)".to_string(),
            |k| String::from_utf8_lossy(k).into_owned(),
        );
        writeln!(f, "  key: {key}")?;
        for (name, value) in &record.headers {
            let value = value.as_deref().map_or_else(
                || "(null)".to_string(),
                |v| String::from_utf8_lossy(v).into_owned(),
            );
            writeln!(f, "  {name}: {value}")?;
        }
        let size = record.payload.as_ref().map_or(0, Vec::len);
        if self.show_payload {
            let payload = record
                .payload
                .as_deref()
                .map_or_else(String::new, |p| String::from_utf8_lossy(p).into_owned());
            writeln!(f, "  payload ({size} bytes): {payload}")
        } else {
            writeln!(
                f,
                "  payload: {size} bytes (add --show-payload to print it)"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, kind: &str, millis: i64) -> DlqRecord {
        DlqRecord {
            partition: 0,
            offset,
            timestamp: DateTime::from_timestamp_millis(millis),
            key: None,
            payload: Some(b"{}".to_vec()),
            headers: vec![(
                headers::DLQ_KIND.to_string(),
                Some(kind.as_bytes().to_vec()),
            )],
        }
    }

    #[test]
    fn selection_filters_by_kind() {
        let selection = DlqSelection {
            kinds: vec!["missing_user_id".to_string()],
            ..DlqSelection::default()
        };
        assert!(selection.matches(&record(0, "missing_user_id", 0)));
        assert!(!selection.matches(&record(0, "invalid_webhook", 0)));
    }

    #[test]
    fn selection_offset_range_is_inclusive() {
        let selection = DlqSelection {
            from_offset: Some(5),
            to_offset: Some(7),
            ..DlqSelection::default()
        };
        let selected: Vec<i64> = (0..10)
            .filter(|&o| selection.matches(&record(o, "x", 0)))
            .collect();
        assert_eq!(selected, vec![5, 6, 7]);
    }

    #[test]
    fn selection_time_range_excludes_until() {
        let selection = DlqSelection {
            since: DateTime::from_timestamp_millis(1_000),
            until: DateTime::from_timestamp_millis(2_000),
            ..DlqSelection::default()
        };
        assert!(!selection.matches(&record(0, "x", 999)));
        assert!(selection.matches(&record(0, "x", 1_000)));
        assert!(selection.matches(&record(0, "x", 1_999)));
        assert!(!selection.matches(&record(0, "x", 2_000)));
    }

    #[test]
    fn selection_rejects_reversed_ranges() {
        let offsets = DlqSelection {
            from_offset: Some(8),
            to_offset: Some(7),
            ..DlqSelection::default()
        };
        assert!(offsets.validate().is_err());
        let times = DlqSelection {
            since: DateTime::from_timestamp_millis(2_000),
            until: DateTime::from_timestamp_millis(2_000),
            ..DlqSelection::default()
        };
        assert!(times.validate().is_err());
    }

    #[test]
    fn record_without_kind_header_is_unknown() {
        let mut record = record(0, "x", 0);
        record.headers.clear();
        assert_eq!(record.kind(), "unknown");
        assert!(!record.is_redriven());
    }

    #[test]
    fn show_hides_payload_unless_asked() {
        let record = record(3, "missing_user_id", 0);
        let hidden = ShowRecord {
            record: &record,
            show_payload: false,
        }
        .to_string();
        assert!(
            hidden.contains("gwen-dlq-kind: missing_user_id"),
            "{hidden}"
        );
        assert!(!hidden.contains("{}"), "{hidden}");
        let with_payload = ShowRecord {
            record: &record,
            show_payload: true,
        }
        .to_string();
        assert!(with_payload.contains("{}"), "{with_payload}");
    }
}
