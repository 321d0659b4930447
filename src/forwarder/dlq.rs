//! Writes records to the dead-letter topic: the original key, value and headers, plus headers
//! saying why and where from.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use tracing::{error, warn};

use crate::backoff::Backoff;
use crate::kafka::{KafkaProducer, KafkaSettings, headers};
use crate::mapping::{DlqKind, format_timestamp};

/// librdkafka's own retries end after this; the writer then starts over with backoff.
const DLQ_MESSAGE_TIMEOUT: &str = "30000";

/// Why a record is dead-lettered.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub kind: DlqKind,
    pub reason: String,
    pub segment_status: Option<u16>,
}

pub struct DlqWriter {
    producer: KafkaProducer,
    topic: String,
    backoff: Backoff,
}

pub fn dlq_producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = settings.client_config();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", DLQ_MESSAGE_TIMEOUT);
    config
}

impl DlqWriter {
    pub fn new(producer: KafkaProducer, topic: String, backoff: Backoff) -> Arc<Self> {
        Arc::new(DlqWriter {
            producer,
            topic,
            backoff,
        })
    }

    pub fn producer(&self) -> &KafkaProducer {
        &self.producer
    }

    /// Writes the record, retrying until Kafka acknowledges it: its source offset may not be
    /// committed before that.
    pub async fn write(self: Arc<Self>, message: Arc<OwnedMessage>, letter: DeadLetter) {
        let failed_at = format_timestamp(chrono::Utc::now());
        let mut attempt = 0u32;
        loop {
            let mut record = FutureRecord::to(&self.topic)
                .headers(dead_letter_headers(&message, &letter, &failed_at))
                .timestamp(chrono::Utc::now().timestamp_millis());
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            if let Some(key) = message.key() {
                record = record.key(key);
            }

            let result = match self.producer.send_result(record) {
                Ok(delivery) => delivery
                    .await
                    .map_err(|_| rdkafka::error::KafkaError::Canceled)
                    .and_then(|r| r.map_err(|(e, _)| e)),
                Err((error, _)) => Err(error),
            };
            match result {
                Ok(_) => {
                    warn!(
                        topic = message.topic(), partition = message.partition(), offset = message.offset(),
                        kind = %letter.kind, reason = %letter.reason, dlq_topic = %self.topic,
                        redriven_at = redriven_at(&message).unwrap_or_default(),
                        "message written to the dead-letter topic"
                    );
                    return;
                }
                Err(error) => {
                    let wait = self.backoff.delay(attempt).max(Duration::from_millis(100));
                    error!(
                        topic = message.topic(), partition = message.partition(), offset = message.offset(),
                        dlq_topic = %self.topic, error = %error, attempt = attempt + 1, wait_ms = wait.as_millis() as u64,
                        "cannot write to the dead-letter topic; its source offset stays uncommitted, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }
}

fn dead_letter_headers(
    message: &OwnedMessage,
    letter: &DeadLetter,
    failed_at: &str,
) -> OwnedHeaders {
    let mut out = OwnedHeaders::new_with_capacity(message.headers().map_or(0, |h| h.count()) + 7);
    if let Some(original) = message.headers() {
        // Every original header stays, `gwen-redriven-at` included: `dlq redrive` skips records
        // that carry it, so a re-driven record that fails again is not re-driven in a loop.
        // Dead-letter headers from an earlier failure are replaced by this one's.
        for header in original.iter() {
            if header.key.starts_with(headers::DLQ_PREFIX) {
                continue;
            }
            out = out.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }

    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    out = out
        .insert(Header {
            key: headers::DLQ_KIND,
            value: Some(letter.kind.as_str()),
        })
        .insert(Header {
            key: headers::DLQ_REASON,
            value: Some(letter.reason.as_str()),
        })
        .insert(Header {
            key: headers::DLQ_SOURCE_TOPIC,
            value: Some(message.topic()),
        })
        .insert(Header {
            key: headers::DLQ_SOURCE_PARTITION,
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: headers::DLQ_SOURCE_OFFSET,
            value: Some(offset.as_str()),
        })
        .insert(Header {
            key: headers::DLQ_FAILED_AT,
            value: Some(failed_at),
        });
    if let Some(status) = letter.segment_status {
        let status = status.to_string();
        out = out.insert(Header {
            key: headers::DLQ_SEGMENT_STATUS,
            value: Some(status.as_str()),
        });
    }
    out
}

/// Returns the `gwen-redriven-at` header of a message that `dlq redrive` wrote back.
fn redriven_at(message: &OwnedMessage) -> Option<&str> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == headers::REDRIVEN_AT)
        .and_then(|header| std::str::from_utf8(header.value?).ok())
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;

    use super::*;

    #[test]
    fn dead_letter_headers_keep_redriven_at() {
        let original = OwnedHeaders::new()
            .insert(Header {
                key: headers::RECEIVED_AT,
                value: Some("2025-12-04T13:00:00.000Z"),
            })
            .insert(Header {
                key: headers::REDRIVEN_AT,
                value: Some("2025-12-05T08:00:00.000Z"),
            })
            .insert(Header {
                key: headers::DLQ_KIND,
                value: Some("segment_rejected"),
            });
        let message = OwnedMessage::new(
            Some(b"{}".to_vec()),
            None,
            "gwen.webhooks".to_string(),
            Timestamp::NotAvailable,
            2,
            40,
            Some(original),
        );
        let letter = DeadLetter {
            kind: DlqKind::MissingUserId,
            reason: "no userId".to_string(),
            segment_status: None,
        };

        let written = dead_letter_headers(&message, &letter, "2025-12-05T09:00:00.000Z");
        let value = |key: &str| -> Vec<String> {
            written
                .iter()
                .filter(|h| h.key == key)
                .map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
                .collect()
        };
        assert_eq!(value(headers::REDRIVEN_AT), ["2025-12-05T08:00:00.000Z"]);
        assert_eq!(value(headers::RECEIVED_AT), ["2025-12-04T13:00:00.000Z"]);
        assert_eq!(value(headers::DLQ_KIND), ["missing_user_id"]);
        assert_eq!(redriven_at(&message), Some("2025-12-05T08:00:00.000Z"));
    }
}
