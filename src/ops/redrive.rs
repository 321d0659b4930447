//! `dlq redrive`: writes selected dead-letter records back to the main topic, so the forwarders
//! deliver them again, for example after a fix to the mapping or to Segment's settings.
//!
//! Each copy keeps the record's key, value and original headers, loses the `gwen-dlq-*` headers
//! and gains `gwen-redriven-at`. The forwarder keeps that header when the copy fails again, and a
//! redrive skips such records unless asked, so a record that keeps failing goes back to the
//! dead-letter topic once instead of cycling.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::{debug, info};

use super::consumer::OpsConsumer;
use super::dlq::{DlqRecord, DlqSelection, DlqSummary, read_selected};
use super::{OpsError, blocking};
use crate::kafka::{KafkaSettings, headers};
use crate::mapping::format_timestamp;

/// Records written and not yet acknowledged at once.
const MAX_UNACKNOWLEDGED: usize = 1_000;
/// Time Kafka has to acknowledge one record, retries included.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct RedriveConfig {
    pub dlq_topic: String,
    /// The main topic the copies are written to.
    pub topic: String,
    pub selection: DlqSelection,
    /// Also selects records that a redrive already wrote back once.
    pub include_redriven: bool,
    /// Whether the copies are written rather than only counted.
    pub execute: bool,
}

#[derive(Debug, Clone)]
pub struct RedriveReport {
    pub dlq_topic: String,
    pub topic: String,
    pub executed: bool,
    /// The `gwen-redriven-at` value of the copies.
    pub redriven_at: String,
    /// The records selected for redrive.
    pub selected: DlqSummary,
    /// First and last selected offset per dead-letter partition.
    pub offsets: BTreeMap<i32, (i64, i64)>,
    /// Records that matched the selection but already carry `gwen-redriven-at`.
    pub skipped_redriven: u64,
    /// Copies Kafka acknowledged.
    pub written: u64,
}

/// Selects records of the dead-letter topic and, with `execute`, writes them to the main topic.
pub async fn redrive(
    settings: &KafkaSettings,
    config: RedriveConfig,
) -> Result<RedriveReport, OpsError> {
    config.selection.validate()?;
    super::check_distinct_topics(&config.topic, &config.dlq_topic)?;
    let producer: Option<FutureProducer> = if config.execute {
        let producer = producer_config(settings)
            .create()
            .map_err(OpsError::kafka("create the Kafka producer"))?;
        Some(producer)
    } else {
        None
    };
    let mut report = RedriveReport {
        dlq_topic: config.dlq_topic.clone(),
        topic: config.topic.clone(),
        executed: config.execute,
        redriven_at: format_timestamp(chrono::Utc::now()),
        selected: DlqSummary::default(),
        offsets: BTreeMap::new(),
        skipped_redriven: 0,
        written: 0,
    };

    // Fails early, before any record is read, when the main topic is missing: a write to it
    // would create it with the broker's defaults, if the broker allows that.
    let lookup_settings = settings.clone();
    let topic = config.topic.clone();
    blocking(move || OpsConsumer::new(&lookup_settings, None)?.partitions(&topic)).await?;

    let mut records = read_selected(settings, &config.dlq_topic, config.selection.clone());
    let mut deliveries = FuturesUnordered::new();
    let mut failure = None;
    while let Some(record) = records.recv().await {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                failure = Some(error.to_string());
                break;
            }
        };
        if record.is_redriven() && !config.include_redriven {
            report.skipped_redriven += 1;
            continue;
        }
        report.selected.add(&record);
        let span = report
            .offsets
            .entry(record.partition)
            .or_insert((record.offset, record.offset));
        span.1 = record.offset;

        let Some(producer) = &producer else {
            continue;
        };
        if deliveries.len() >= MAX_UNACKNOWLEDGED
            && let Some(result) = deliveries.next().await
            && let Err(error) = acknowledge(result, &mut report)
        {
            failure = Some(error);
            break;
        }
        let target = Target {
            topic: config.topic.clone(),
            redriven_at: report.redriven_at.clone(),
        };
        deliveries.push(write_copy(producer.clone(), record, target));
    }
    // Waits for every copy already handed to the producer, so the count of written records is
    // exact even after a failure.
    while let Some(result) = deliveries.next().await {
        if let Err(error) = acknowledge(result, &mut report) {
            failure.get_or_insert(error);
        }
    }
    if let Some(reason) = failure {
        return Err(OpsError::Failed(format!(
            "{reason}. {} record(s) were written to {} before the failure; narrow the selection with --from-offset or --since and run the command again. Copies written twice keep their messageId, so Segment drops the duplicates it sees within its deduplication window",
            report.written, report.topic
        )));
    }

    if report.executed {
        info!(
            dlq_topic = %report.dlq_topic, topic = %report.topic, written = report.written,
            skipped_redriven = report.skipped_redriven, redriven_at = %report.redriven_at,
            "dead-letter records written back to the main topic"
        );
    }
    Ok(report)
}

fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = settings.client_config();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // The receiver's partitioner, so a copy lands on the partition of its userId.
        .set("partitioner", "murmur2_random")
        .set(
            "message.timeout.ms",
            MESSAGE_TIMEOUT.as_millis().to_string(),
        );
    config
}

/// A dead-letter record and where its copy went, or why it failed.
type Delivery = (DlqRecord, Result<(i32, i64), rdkafka::error::KafkaError>);

/// Destination topic of a copy and the `gwen-redriven-at` value it carries.
struct Target {
    topic: String,
    redriven_at: String,
}

async fn write_copy(producer: FutureProducer, record: DlqRecord, target: Target) -> Delivery {
    let mut copy =
        FutureRecord::to(&target.topic).headers(copy_headers(&record, &target.redriven_at));
    if let Some(key) = &record.key {
        copy = copy.key(key);
    }
    if let Some(payload) = &record.payload {
        copy = copy.payload(payload);
    }
    let result = producer
        .send(copy, MESSAGE_TIMEOUT)
        .await
        .map(|delivered| (delivered.partition, delivered.offset))
        .map_err(|(error, _)| error);
    (record, result)
}

/// Counts a written copy, or describes the failed one.
fn acknowledge(delivery: Delivery, report: &mut RedriveReport) -> Result<(), String> {
    let (record, result) = delivery;
    match result {
        Ok((partition, offset)) => {
            debug!(
                dlq_partition = record.partition, dlq_offset = record.offset,
                topic = %report.topic, partition, offset, "dead-letter record written back"
            );
            report.written += 1;
            Ok(())
        }
        Err(error) => Err(format!(
            "cannot write {} partition {} offset {} to {}: {error}",
            report.dlq_topic, record.partition, record.offset, report.topic
        )),
    }
}

/// Returns the original headers without the `gwen-dlq-*` ones and with a fresh
/// `gwen-redriven-at`.
pub fn copy_headers(record: &DlqRecord, redriven_at: &str) -> OwnedHeaders {
    let mut copy = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        if key.starts_with(headers::DLQ_PREFIX) || key == headers::REDRIVEN_AT {
            continue;
        }
        copy = copy.insert(Header {
            key,
            value: value.as_deref(),
        });
    }
    copy.insert(Header {
        key: headers::REDRIVEN_AT,
        value: Some(redriven_at),
    })
}

impl fmt::Display for RedriveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} record(s) of {} selected for {}",
            self.selected.total, self.dlq_topic, self.topic
        )?;
        for (kind, count) in &self.selected.by_kind {
            writeln!(f, "  {kind:<20} {count:>10}")?;
        }
        for (partition, (first, last)) in &self.offsets {
            writeln!(
                f,
                "  {} partition {partition}: offsets {first} to {last}",
                self.dlq_topic
            )?;
        }
        let from_other_topics: u64 = self
            .selected
            .by_source
            .iter()
            .filter(|((source, _), _)| *source != self.topic)
            .map(|(_, count)| count)
            .sum();
        if from_other_topics > 0 {
            writeln!(
                f,
                "{from_other_topics} of them were dead-lettered from another topic than {} (gwen-dlq-source-topic); check --topic",
                self.topic
            )?;
        }
        if self.skipped_redriven > 0 {
            writeln!(
                f,
                "{} record(s) skipped: they failed again after an earlier redrive (gwen-redriven-at); add --include-redriven to select them",
                self.skipped_redriven
            )?;
        }
        if self.executed {
            writeln!(
                f,
                "written: {} record(s), with gwen-redriven-at {}",
                self.written, self.redriven_at
            )
        } else {
            writeln!(f, "dry run, nothing written; add --execute to write them")
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;

    use super::*;

    fn header(name: &str, value: &str) -> (String, Option<Vec<u8>>) {
        (name.to_string(), Some(value.as_bytes().to_vec()))
    }

    #[test]
    fn copy_headers_drop_dead_letter_headers() {
        let record = DlqRecord {
            partition: 0,
            offset: 0,
            timestamp: None,
            key: None,
            payload: None,
            headers: vec![
                header(headers::RECEIVED_AT, "2025-12-04T13:00:00.000Z"),
                header(headers::DLQ_KIND, "missing_user_id"),
                header(headers::DLQ_SOURCE_OFFSET, "4"),
                header(headers::REDRIVEN_AT, "2025-12-01T00:00:00.000Z"),
                header(headers::REQUEST_ID, "req-1"),
            ],
        };
        let copied = copy_headers(&record, "2025-12-05T00:00:00.000Z");
        let names: Vec<(&str, Option<&[u8]>)> = copied.iter().map(|h| (h.key, h.value)).collect();
        assert_eq!(
            names,
            vec![
                (
                    headers::RECEIVED_AT,
                    Some(b"2025-12-04T13:00:00.000Z".as_slice())
                ),
                (headers::REQUEST_ID, Some(b"req-1".as_slice())),
                (
                    headers::REDRIVEN_AT,
                    Some(b"2025-12-05T00:00:00.000Z".as_slice())
                ),
            ]
        );
    }
}
