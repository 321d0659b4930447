//! Delivers one batch to Segment: retries until Segment takes it, and splits a rejected batch to
//! find the events Segment refuses.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{Instrument, error, info, warn};

use super::partitions::PendingEvent;
use crate::backoff::Backoff;
use crate::health::Health;
use crate::kafka::headers;
use crate::segment::{BatchEncoder, SegmentClient, Verdict};
use crate::telemetry;

/// A halt (401, 403, 404) is logged at most this often.
const HALT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What the delivery needs besides the events; shared by every batch.
pub struct Delivery {
    pub segment: SegmentClient,
    pub encoder: BatchEncoder,
    pub backoff: Backoff,
    pub health: Health,
    /// Tells the forwarder loop which partitions wait on a retried request, so it pauses them.
    retrying: mpsc::UnboundedSender<Vec<PartitionGeneration>>,
    halt_logged_at: Mutex<Option<Instant>>,
}

/// A partition as assigned at one time: its number and the generation of that assignment.
pub type PartitionGeneration = (i32, u64);

/// An event Segment rejected on its own, with the response that rejected it.
#[derive(Debug)]
pub struct RejectedEvent {
    pub index: usize,
    pub status: u16,
    pub body: String,
}

/// The events of a finished batch, and those among them that Segment rejected.
pub struct BatchOutcome {
    pub events: Vec<PendingEvent>,
    pub rejected: Vec<RejectedEvent>,
}

enum Final {
    Delivered,
    Rejected { status: u16, body: String },
}

impl Delivery {
    /// Returns the delivery and the receiver of its retry notices: each is the list of
    /// partitions whose batch failed once and is being retried.
    pub fn new(
        segment: SegmentClient,
        backoff: Backoff,
        health: Health,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Vec<PartitionGeneration>>) {
        let encoder = segment.encoder();
        let (retrying, notices) = mpsc::unbounded_channel();
        let delivery = Delivery {
            segment,
            encoder,
            backoff,
            health,
            retrying,
            halt_logged_at: Mutex::new(None),
        };
        (Arc::new(delivery), notices)
    }

    /// Sends the events until every one is acknowledged or rejected by Segment. Never gives up on
    /// transient failures; the caller abandons the future to stop.
    pub async fn deliver(self: Arc<Self>, events: Vec<PendingEvent>) -> BatchOutcome {
        let traceparents = events
            .iter()
            .map(|event| super::header_text(event.message.as_ref(), headers::TRACEPARENT));
        let span = telemetry::batch_span(events.len(), traceparents);
        let rejected = self
            .deliver_range(&events, 0..events.len())
            .instrument(span.clone())
            .await;
        span.record("rejected", rejected.len() as i64);
        BatchOutcome { events, rejected }
    }

    /// Sends a range; on 400 splits it in halves, in order, down to the single events at fault.
    fn deliver_range<'a>(
        &'a self,
        events: &'a [PendingEvent],
        range: Range<usize>,
    ) -> Pin<Box<dyn Future<Output = Vec<RejectedEvent>> + Send + 'a>> {
        Box::pin(async move {
            match self.send_until_final(&events[range.clone()]).await {
                Final::Delivered => Vec::new(),
                Final::Rejected { status, body } if range.len() == 1 => {
                    vec![RejectedEvent {
                        index: range.start,
                        status,
                        body,
                    }]
                }
                Final::Rejected { status, .. } => {
                    let middle = range.start + range.len() / 2;
                    info!(
                        status,
                        events = range.len(),
                        "Segment rejected a batch; splitting it to find the events at fault"
                    );
                    let mut rejected = self.deliver_range(events, range.start..middle).await;
                    rejected.extend(self.deliver_range(events, middle..range.end).await);
                    rejected
                }
            }
        })
    }

    async fn send_until_final(&self, events: &[PendingEvent]) -> Final {
        let mut attempt = 0u32;
        loop {
            let body = self
                .encoder
                .encode(events.iter().map(|event| event.json.as_slice()));
            let verdict = self.segment.send_batch(body).await;

            let wait = match verdict {
                Verdict::Delivered => {
                    self.set_halted(false);
                    return Final::Delivered;
                }
                Verdict::Rejected { status, body } => {
                    self.set_halted(false);
                    return Final::Rejected { status, body };
                }
                Verdict::Halted { status } => {
                    self.set_halted(true);
                    self.log_halt(status);
                    self.backoff.delay(attempt)
                }
                Verdict::Retry {
                    status,
                    after,
                    error,
                } => {
                    let wait = match after {
                        // Honoured within the backoff's bounds: a zero or past Retry-After would
                        // make a busy loop, a very long one is capped by --retry-max-backoff.
                        Some(after) => after.clamp(
                            self.backoff.initial,
                            self.backoff.max.max(self.backoff.initial),
                        ),
                        None => self.backoff.delay(attempt),
                    };
                    warn!(
                        status = status.map(|s| s.to_string()).unwrap_or_else(|| "network error".into()),
                        error = error.as_deref().unwrap_or(""),
                        events = events.len(),
                        attempt = attempt + 1,
                        wait_ms = wait.as_millis() as u64,
                        first = %events.first().map(PendingEvent::position).unwrap_or_default(),
                        "Segment request failed; retrying the same events"
                    );
                    wait
                }
            };
            if attempt == 0 {
                let mut partitions: Vec<PartitionGeneration> = events
                    .iter()
                    .map(|event| (event.partition, event.generation))
                    .collect();
                partitions.sort_unstable();
                partitions.dedup();
                let _ = self.retrying.send(partitions);
            }
            tokio::time::sleep(wait).await;
            crate::metrics::metrics().segment_retries.inc();
            attempt = attempt.saturating_add(1);
        }
    }

    fn set_halted(&self, halted: bool) {
        self.health.set_halted(halted);
        crate::metrics::metrics().halted.set(i64::from(halted));
    }

    fn log_halt(&self, status: u16) {
        let mut logged_at = self
            .halt_logged_at
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if logged_at.is_some_and(|at| at.elapsed() < HALT_LOG_INTERVAL) {
            return;
        }
        *logged_at = Some(Instant::now());
        error!(
            status,
            segment = %self.segment,
            "Segment refuses the requests: delivery is halted and nothing is committed until this is fixed; \
             check --segment-write-key and that --segment-url matches the source's region"
        );
    }
}
