//! Kafka plumbing shared by the receiver and the forwarder: client settings, topics, headers.

mod client_log;
pub mod framing;
mod settings;
mod topics;

pub use client_log::{ClientLog, REPEAT_INTERVAL};
pub use settings::{KafkaSettings, OptionError, parse_option, set_default};
pub use topics::{TopicError, TopicPolicy, ensure_topics};

/// A producer whose librdkafka log lines and errors go through `ClientLog`.
pub type KafkaProducer = rdkafka::producer::FutureProducer<ClientLog>;

/// Record header names written by the receiver and read by the forwarder.
pub mod headers {
    pub const RECEIVED_AT: &str = "gwen-received-at";
    pub const REQUEST_ID: &str = "gwen-request-id";
    pub const CONTENT_TYPE: &str = "content-type";
    pub const TRACEPARENT: &str = "traceparent";

    pub const DLQ_KIND: &str = "gwen-dlq-kind";
    pub const DLQ_REASON: &str = "gwen-dlq-reason";
    pub const DLQ_SOURCE_TOPIC: &str = "gwen-dlq-source-topic";
    pub const DLQ_SOURCE_PARTITION: &str = "gwen-dlq-source-partition";
    pub const DLQ_SOURCE_OFFSET: &str = "gwen-dlq-source-offset";
    pub const DLQ_FAILED_AT: &str = "gwen-dlq-failed-at";
    pub const DLQ_SEGMENT_STATUS: &str = "gwen-dlq-segment-status";
    /// Prefix of every header the forwarder adds to a dead-lettered record.
    pub const DLQ_PREFIX: &str = "gwen-dlq-";

    /// RFC 3339 time at which `dlq redrive` wrote the record back to the main topic. The forwarder
    /// keeps it when the record is dead-lettered again, so a redrive skips it by default.
    pub const REDRIVEN_AT: &str = "gwen-redriven-at";
}
