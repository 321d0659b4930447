//! Prometheus metrics, served as text on the admin endpoint at `/metrics`.
//!
//! Labels stay low in cardinality: status classes, dead-letter kinds and partition numbers, never
//! a userId or a request id.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric of the process. Components record into the one instance from [`metrics`].
pub struct Metrics {
    registry: Registry,
    /// Receiver requests by response status.
    pub receiver_requests: Family<Labels, Counter>,
    /// Webhooks accepted by the receiver.
    pub receiver_webhooks_accepted: Counter,
    /// Time from handing a request's records to the producer to the last acknowledgement.
    pub produce_seconds: Histogram,
    /// Events Segment acknowledged.
    pub events_delivered: Counter,
    /// Segment requests by status class (`2xx`, `3xx`, `4xx`, `5xx`, `error`).
    pub segment_requests: Family<Labels, Counter>,
    pub segment_request_seconds: Histogram,
    /// Segment requests sent again after a failure.
    pub segment_retries: Counter,
    /// Messages written to the dead-letter topic, by kind.
    pub dlq_messages: Family<Labels, Counter>,
    pub batch_events: Histogram,
    pub batch_bytes: Histogram,
    /// The group's committed offset and the consumer lag, by partition, from librdkafka's statistics.
    pub committed_offset: Family<Labels, Gauge>,
    pub consumer_lag: Family<Labels, Gauge>,
    /// Age of the oldest received message that is neither acknowledged nor dead-lettered.
    pub oldest_unfinished_seconds: Gauge<f64, AtomicU64>,
    /// Offset resets, when a committed offset had fallen out of the topic's retention.
    pub offset_resets: Counter,
    /// 1 while Segment refuses the write key or the endpoint (3xx, 401, 403, 404).
    pub halted: Gauge,
}

/// Returns the process's metrics, registered on first use.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Renders the metrics in the Prometheus text exposition format.
pub fn render() -> String {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &metrics().registry) {
        tracing::warn!(error = %error, "cannot encode the metrics");
    }
    text
}

/// Builds a label set of one label.
pub fn label(name: &'static str, value: impl ToString) -> Labels {
    vec![(name, value.to_string())]
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("gwen");
        let seconds = || Histogram::new(exponential_buckets(0.001, 2.0, 16));

        let metrics = Metrics {
            receiver_requests: Family::default(),
            receiver_webhooks_accepted: Counter::default(),
            produce_seconds: seconds(),
            events_delivered: Counter::default(),
            segment_requests: Family::default(),
            segment_request_seconds: seconds(),
            segment_retries: Counter::default(),
            dlq_messages: Family::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            batch_bytes: Histogram::new(exponential_buckets(1024.0, 2.0, 10)),
            committed_offset: Family::default(),
            consumer_lag: Family::default(),
            oldest_unfinished_seconds: Gauge::default(),
            offset_resets: Counter::default(),
            halted: Gauge::default(),
            registry: Registry::default(),
        };

        registry.register(
            "receiver_requests",
            "Receiver requests by response status",
            metrics.receiver_requests.clone(),
        );
        registry.register(
            "receiver_webhooks_accepted",
            "Webhooks the receiver accepted",
            metrics.receiver_webhooks_accepted.clone(),
        );
        registry.register(
            "receiver_produce_seconds",
            "Time for Kafka to acknowledge a request's records",
            metrics.produce_seconds.clone(),
        );
        registry.register(
            "forwarder_events_delivered",
            "Events Segment acknowledged",
            metrics.events_delivered.clone(),
        );
        registry.register(
            "segment_requests",
            "Segment requests by status class",
            metrics.segment_requests.clone(),
        );
        registry.register(
            "segment_request_seconds",
            "Segment request latency",
            metrics.segment_request_seconds.clone(),
        );
        registry.register(
            "segment_retries",
            "Segment requests sent again after a failure",
            metrics.segment_retries.clone(),
        );
        registry.register(
            "dlq_messages",
            "Messages written to the dead-letter topic, by kind",
            metrics.dlq_messages.clone(),
        );
        registry.register(
            "forwarder_batch_events",
            "Events per Segment batch",
            metrics.batch_events.clone(),
        );
        registry.register(
            "forwarder_batch_bytes",
            "Bytes per Segment batch body",
            metrics.batch_bytes.clone(),
        );
        registry.register(
            "consumer_committed_offset",
            "Committed offset by partition",
            metrics.committed_offset.clone(),
        );
        registry.register(
            "consumer_lag",
            "Messages behind the end of the partition",
            metrics.consumer_lag.clone(),
        );
        registry.register(
            "forwarder_oldest_unfinished_seconds",
            "Age of the oldest message neither acknowledged nor dead-lettered",
            metrics.oldest_unfinished_seconds.clone(),
        );
        registry.register(
            "consumer_offset_resets",
            "Offset resets after the committed offset left retention",
            metrics.offset_resets.clone(),
        );
        registry.register(
            "forwarder_halted",
            "1 while Segment refuses the write key or the endpoint",
            metrics.halted.clone(),
        );

        Metrics {
            registry,
            ..metrics
        }
    }
}

/// Returns the status class of an HTTP status, or `error` for no response.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_recorded_metrics() {
        metrics()
            .dlq_messages
            .get_or_create(&label("kind", "missing_user_id"))
            .inc();
        let text = render();
        assert!(
            text.contains("gwen_dlq_messages_total{kind=\"missing_user_id\"}"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE gwen_forwarder_halted gauge"),
            "{text}"
        );
    }
}
