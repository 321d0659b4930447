//! Writes a request's records to Kafka and waits for every delivery report.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use super::body::Record;
use crate::kafka::{KafkaProducer, KafkaSettings, set_default};
use crate::kafka::{framing, headers};

/// Upper bound of the producer's local queue, so a slow cluster turns into 503s, not memory.
const QUEUE_MAX_KBYTES: &str = "131072";
/// The producer's `linger.ms` unless a `--kafka-option` sets it.
const DEFAULT_LINGER_MS: &str = "1";

/// Headers every record of one request gets.
pub struct RequestHeaders<'a> {
    /// The Schema Registry id to frame values with; plain JSON values without it.
    pub schema_id: Option<u32>,
    pub received_at: &'a str,
    pub request_id: &'a str,
    pub content_type: &'a str,
    pub traceparent: Option<&'a str>,
}

#[derive(Debug)]
pub enum ProduceError {
    /// The record is larger than the broker or the producer accepts.
    TooLarge(KafkaError),
    /// Not acknowledged in time, queue full, or any other failure worth retrying.
    NotAcknowledged(KafkaError),
}

/// Builds the producer settings for webhooks: idempotent, `acks=all`, Java-compatible partitioning, and a
/// delivery timeout equal to `produce_timeout`.
pub fn producer_config(settings: &KafkaSettings, produce_timeout: Duration) -> ClientConfig {
    let mut config = settings.client_config();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set(
            "message.timeout.ms",
            produce_timeout.as_millis().max(1).to_string(),
        )
        .set("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES);
    // Every request waits for its own records' acknowledgement, so the linger is paid by every
    // request: 1 ms instead of librdkafka's 5 ms more than doubled throughput in scripts/bench.
    // A --kafka-option value wins.
    set_default(&mut config, "linger.ms", DEFAULT_LINGER_MS);
    config
}

/// Checks that `produce_timeout` is longer than the producer's linger, which librdkafka requires
/// of `message.timeout.ms`. The error names `--produce-timeout`, its value and the linger.
pub fn check_produce_timeout(
    settings: &KafkaSettings,
    produce_timeout: Duration,
) -> Result<(), String> {
    let config = producer_config(settings, produce_timeout);
    let timeout_ms = produce_timeout.as_millis().max(1) as f64;
    // `queue.buffering.max.ms` is librdkafka's other name for `linger.ms`.
    for key in ["linger.ms", "queue.buffering.max.ms"] {
        // A value librdkafka cannot parse is left for librdkafka to report.
        let Some(linger_ms) = config.get(key).and_then(|v| v.trim().parse::<f64>().ok()) else {
            continue;
        };
        if timeout_ms <= linger_ms {
            let from_option = settings.options.iter().any(|(option, _)| option == key);
            let source = if from_option {
                "set by --kafka-option"
            } else {
                "the receiver's default"
            };
            return Err(format!(
                "invalid --produce-timeout {}: it must be longer than the producer's {key} ({linger_ms} ms, {source}); use a timeout of a few seconds, such as the default 5s",
                humantime::format_duration(produce_timeout)
            ));
        }
    }
    Ok(())
}

/// Produces every record, then waits for all delivery reports. Records enqueued before a
/// failure may still be written: the sender's retry then duplicates them with the same messageId.
pub async fn produce_all(
    producer: &KafkaProducer,
    topic: &str,
    records: &[Record<'_>],
    request: &RequestHeaders<'_>,
) -> Result<(), ProduceError> {
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        // Framed with the Confluent header when a registry is in use; the JSON bytes stay as received.
        let framed = request.schema_id.map(|id| framing::frame(id, record.bytes));
        let value = framed.as_deref().unwrap_or(record.bytes);
        let mut kafka_record = FutureRecord::to(topic)
            .payload(value)
            .headers(record_headers(request));
        if let Some(key) = &record.key {
            kafka_record = kafka_record.key(key.as_bytes());
        }
        match producer.send_result(kafka_record) {
            Ok(delivery) => deliveries.push(delivery),
            Err((error, _)) => return Err(classify(error)),
        }
    }

    for delivery in futures::future::join_all(deliveries).await {
        match delivery {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(classify(error)),
            Err(_canceled) => return Err(ProduceError::NotAcknowledged(KafkaError::Canceled)),
        }
    }
    Ok(())
}

fn record_headers(request: &RequestHeaders<'_>) -> OwnedHeaders {
    let headers = OwnedHeaders::new_with_capacity(4)
        .insert(Header {
            key: headers::RECEIVED_AT,
            value: Some(request.received_at),
        })
        .insert(Header {
            key: headers::REQUEST_ID,
            value: Some(request.request_id),
        })
        .insert(Header {
            key: headers::CONTENT_TYPE,
            value: Some(request.content_type),
        });
    match request.traceparent {
        Some(traceparent) => headers.insert(Header {
            key: headers::TRACEPARENT,
            value: Some(traceparent),
        }),
        None => headers,
    }
}

fn classify(error: KafkaError) -> ProduceError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
            ProduceError::TooLarge(error)
        }
        _ => ProduceError::NotAcknowledged(error),
    }
}
