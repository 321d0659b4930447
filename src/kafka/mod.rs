//! Kafka plumbing shared by the receiver and the forwarder: client settings, topics, headers.

mod settings;
mod topics;

pub use settings::{KafkaSettings, OptionError, parse_option};
pub use topics::{TopicError, TopicPolicy, ensure_topics};

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
}
