//! Delivers one batch to Segment: retries until Segment takes it, and splits a rejected batch to
//! find the events Segment refuses.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::partitions::PendingEvent;
use crate::backoff::Backoff;
use crate::health::Health;
use crate::segment::{BatchEncoder, SegmentClient, Verdict};

/// A halt (401, 403, 404) is logged at most this often.
const HALT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What the delivery needs besides the events; shared by every batch.
pub struct Delivery {
    pub segment: SegmentClient,
    pub encoder: BatchEncoder,
    pub backoff: Backoff,
    pub health: Health,
    halt_logged_at: Mutex<Option<Instant>>,
}

/// An event Segment refused on its own, with the answer that refused it.
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
    pub fn new(segment: SegmentClient, backoff: Backoff, health: Health) -> Arc<Self> {
        let encoder = segment.encoder();
        Arc::new(Delivery {
            segment,
            encoder,
            backoff,
            health,
            halt_logged_at: Mutex::new(None),
        })
    }

    /// Sends the events until every one is acknowledged or rejected by Segment. Never gives up on
    /// transient failures; the caller abandons the future to stop.
    pub async fn deliver(self: Arc<Self>, events: Vec<PendingEvent>) -> BatchOutcome {
        let rejected = self.deliver_range(&events, 0..events.len()).await;
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
                    self.health.set_halted(false);
                    return Final::Delivered;
                }
                Verdict::Rejected { status, body } => {
                    self.health.set_halted(false);
                    return Final::Rejected { status, body };
                }
                Verdict::Halted { status } => {
                    self.health.set_halted(true);
                    self.log_halt(status);
                    self.backoff.delay(attempt)
                }
                Verdict::Retry { status, after } => {
                    let wait = after.unwrap_or_else(|| self.backoff.delay(attempt));
                    warn!(
                        status = status.map(|s| s.to_string()).unwrap_or_else(|| "network error".into()),
                        events = events.len(),
                        attempt = attempt + 1,
                        wait_ms = wait.as_millis() as u64,
                        first = %events.first().map(PendingEvent::position).unwrap_or_default(),
                        "Segment request failed; retrying the same events"
                    );
                    wait
                }
            };
            tokio::time::sleep(wait).await;
            attempt = attempt.saturating_add(1);
        }
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
            "Segment refuses the requests: delivery is halted and nothing is committed until this is fixed; \
             check --segment-write-key and that --segment-url matches the source's region"
        );
    }
}
