//! The forwarder: a consumer-group member that maps webhooks to Segment `track` events, sends
//! them in batches, and commits offsets only over finished messages.

mod context;
mod delivery;
mod dlq;
mod offsets;
mod partitions;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, OwnedMessage};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

pub use context::{ForwarderContext, RebalanceEvent};
pub use dlq::{DeadLetter, DlqWriter, dlq_producer_config};
pub use partitions::BatchLimits;

use crate::backoff::Backoff;
use crate::health::Health;
use crate::kafka::{KafkaSettings, headers};
use crate::mapping::{DlqKind, MappingConfig, map_webhook};
use crate::segment::SegmentClient;
use delivery::{BatchOutcome, Delivery, PartitionGeneration};
use partitions::{Partitions, PendingEvent};

/// Bound of librdkafka's prefetch queue per partition, so fetched but unprocessed data stays small.
const FETCH_QUEUE_KBYTES: &str = "16384";

#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    pub topic: String,
    pub mapping: MappingConfig,
    pub batch: BatchLimits,
    /// Batch requests to Segment that may be unanswered at once, each for distinct partitions.
    pub max_concurrent_batches: usize,
    /// Received but unfinished bytes in memory before the member pauses fetching; each assigned
    /// partition gets an equal share, but never less than two batches' worth.
    pub max_in_flight_bytes: usize,
    pub shutdown_timeout: Duration,
    /// Delays between retries of Segment requests and dead-letter writes.
    pub retry: Backoff,
}

/// The clients a forwarder works with, built by the caller.
pub struct Clients {
    pub consumer: Arc<StreamConsumer<ForwarderContext>>,
    /// Partitions assigned and revoked, from the consumer's context.
    pub rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    pub segment: SegmentClient,
    pub dlq: Arc<DlqWriter>,
}

/// Builds the consumer settings the guarantees rest on. The forwarder alone stores offsets, only
/// over finished messages, and librdkafka commits what is stored. A new group starts at the backlog.
pub fn consumer_config(settings: &KafkaSettings, group_id: &str) -> ClientConfig {
    let mut config = settings.client_config();
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("queued.max.messages.kbytes", FETCH_QUEUE_KBYTES)
        .set("enable.partition.eof", "false");
    config
}

type Task = Pin<Box<dyn Future<Output = Completion> + Send>>;

/// A finished unit of asynchronous work.
enum Completion {
    Batch(BatchOutcome),
    DeadLettered {
        partition: i32,
        generation: u64,
        offset: i64,
    },
}

/// Runs the forwarder until `shutdown` completes: fetches, maps, batches, delivers, commits.
/// On shutdown it stops fetching, lets unanswered batches finish within the shutdown timeout,
/// commits what is finished and leaves the group.
pub async fn run(
    clients: Clients,
    config: ForwarderConfig,
    health: Health,
    shutdown: impl Future<Output = ()>,
) -> Result<(), rdkafka::error::KafkaError> {
    clients.consumer.subscribe(&[&config.topic])?;
    info!(topic = %config.topic, "forwarder started");

    let (delivery, retry_notices) = Delivery::new(clients.segment, config.retry, health.clone());
    let mut forwarder = Forwarder {
        consumer: clients.consumer,
        rebalances: clients.rebalances,
        retry_notices,
        health,
        delivery,
        dlq: clients.dlq,
        config,
        partitions: Partitions::default(),
        tasks: FuturesUnordered::new(),
        batches_in_flight: 0,
        unknown_types: HashSet::new(),
    };
    forwarder.consume(shutdown).await;
    forwarder.drain().await;
    forwarder.finish().await;
    Ok(())
}

struct Forwarder {
    consumer: Arc<StreamConsumer<ForwarderContext>>,
    rebalances: mpsc::UnboundedReceiver<RebalanceEvent>,
    retry_notices: mpsc::UnboundedReceiver<Vec<PartitionGeneration>>,
    delivery: Arc<Delivery>,
    dlq: Arc<DlqWriter>,
    health: Health,
    config: ForwarderConfig,
    partitions: Partitions,
    tasks: FuturesUnordered<Task>,
    batches_in_flight: usize,
    /// Unknown webhook types already logged, so each is logged once.
    unknown_types: HashSet<String>,
}

impl Forwarder {
    async fn consume(&mut self, shutdown: impl Future<Output = ()>) {
        let consumer = self.consumer.clone();
        tokio::pin!(shutdown);
        loop {
            self.apply_rebalances();
            self.dispatch(false);

            let deadline = self.partitions.linger_deadline(self.config.batch.linger);
            let linger = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                    None => std::future::pending().await,
                }
            };

            tokio::select! {
                () = &mut shutdown => break,
                Some(completion) = self.tasks.next() => self.complete(completion),
                Some(event) = self.rebalances.recv() => self.apply_rebalance(event),
                Some(partitions) = self.retry_notices.recv() => self.mark_retrying(&partitions),
                message = consumer.recv() => match message {
                    Ok(message) => {
                        self.apply_rebalances();
                        self.accept(&message);
                    }
                    Err(error) => warn!(topic = %self.config.topic, error = %error, "Kafka consumer error"),
                },
                () = linger => {}
            }
        }
    }

    /// After shutdown: no more fetching; sends what is pending and waits for unanswered batches
    /// and dead-letter writes, up to the shutdown timeout.
    async fn drain(&mut self) {
        self.health.set_stopping();
        info!(timeout = %humantime::format_duration(self.config.shutdown_timeout), "forwarder stopping; finishing batches in flight");
        let deadline = tokio::time::Instant::now() + self.config.shutdown_timeout;
        loop {
            self.dispatch(true);
            if self.tasks.is_empty() {
                return;
            }
            match tokio::time::timeout_at(deadline, self.tasks.next()).await {
                Ok(Some(completion)) => self.complete(completion),
                Ok(None) => return,
                Err(_) => {
                    warn!(
                        unfinished = self.tasks.len(),
                        "shutdown timeout reached; abandoning unfinished work, which stays uncommitted"
                    );
                    return;
                }
            }
        }
    }

    /// Commits the stored offsets and leaves the group.
    async fn finish(&mut self) {
        self.tasks.clear();
        let consumer = self.consumer.clone();
        let topic = self.config.topic.clone();
        let result = tokio::task::spawn_blocking(move || {
            let committed = consumer.commit_consumer_state(CommitMode::Sync);
            consumer.unsubscribe();
            committed
        })
        .await;
        match result {
            Ok(Ok(())) => info!(%topic, "offsets committed; forwarder stopped"),
            Ok(Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            ))) => {
                info!(%topic, "nothing new to commit; forwarder stopped")
            }
            Ok(Err(error)) => {
                error!(%topic, error = %error, "final offset commit failed; the uncommitted messages will be delivered again")
            }
            Err(error) => error!(%topic, error = %error, "final offset commit did not run"),
        }
    }

    /// Applies the rebalances the consumer reported, before the messages that follow them.
    fn apply_rebalances(&mut self) {
        while let Ok(event) = self.rebalances.try_recv() {
            self.apply_rebalance(event);
        }
    }

    fn apply_rebalance(&mut self, event: RebalanceEvent) {
        match event {
            RebalanceEvent::Assigned(partitions) => {
                for partition in partitions {
                    self.partitions.assign(partition);
                }
                self.health.set_started(true);
            }
            RebalanceEvent::Revoked(partitions) => {
                for partition in partitions {
                    // NOTE: batches in flight for a revoked partition are not awaited: their
                    // responses are ignored, and the new owner delivers those events again.
                    self.partitions.revoke(partition);
                }
            }
        }
    }

    /// Maps one message into a pending event, or starts its dead-letter write.
    fn accept(&mut self, message: &BorrowedMessage<'_>) {
        let partition = message.partition();
        let offset = message.offset();
        if self.partitions.get_mut(partition).is_none() {
            debug!(
                partition,
                offset,
                "message for a partition not assigned here; it will be fetched again by its owner"
            );
            return;
        }

        let payload = message.payload().unwrap_or_default();
        let mapped = map_webhook(payload, received_at(message), &self.config.mapping);
        let owned = Arc::new(message.detach());
        let Some(state) = self.partitions.get_mut(partition) else {
            return;
        };
        // The message is held twice until it is finished: as received and as its event.
        let event_bytes = mapped.as_ref().map_or(0, |event| event.json.len());
        state.watermark.track(offset, payload.len() + event_bytes);
        let generation = state.generation;

        match mapped {
            Ok(event) => {
                if !event.event_name.known
                    && self.unknown_types.insert(event.event_name.name.to_string())
                {
                    info!(event = %event.event_name.name, partition, offset, "forwarding an undocumented GWEN webhook type");
                }
                debug!(partition, offset, message_id = %event.message_id, "event mapped");
                state.push(PendingEvent {
                    partition,
                    generation,
                    offset,
                    json: event.json,
                    message: owned,
                });
            }
            Err(rejection) => {
                let letter = DeadLetter {
                    kind: rejection.kind,
                    reason: rejection.reason,
                    segment_status: None,
                };
                self.dead_letter(owned, generation, letter);
            }
        }
        self.apply_backpressure(partition);
    }

    fn dead_letter(&mut self, message: Arc<OwnedMessage>, generation: u64, letter: DeadLetter) {
        let partition = message.partition();
        let offset = message.offset();
        let write = self.dlq.clone().write(message, letter);
        self.tasks.push(Box::pin(async move {
            write.await;
            Completion::DeadLettered {
                partition,
                generation,
                offset,
            }
        }));
    }

    /// Pauses fetching for partitions whose batch is being retried: their events cannot move
    /// until it succeeds, so fetching more would only fill memory.
    fn mark_retrying(&mut self, partitions: &[PartitionGeneration]) {
        for &(partition, generation) in partitions {
            if let Some(state) = self.partitions.current(partition, generation) {
                state.retrying = true;
                self.apply_backpressure(partition);
            }
        }
    }

    /// Pauses a partition while its batch is retried or its unfinished bytes exceed its share,
    /// and resumes it when neither holds, with the bytes below half the share.
    fn apply_backpressure(&mut self, partition: i32) {
        let share = (self.config.max_in_flight_bytes / self.partitions.len().max(1))
            .max(2 * self.config.batch.max_bytes);
        let Some(state) = self.partitions.get_mut(partition) else {
            return;
        };
        let outstanding = state.watermark.outstanding_bytes();

        let change = if !state.paused && (state.retrying || outstanding > share) {
            Some(true)
        } else if state.paused && !state.retrying && outstanding <= share / 2 {
            Some(false)
        } else {
            None
        };
        let Some(pause) = change else { return };

        let mut list = TopicPartitionList::new();
        list.add_partition(&self.config.topic, partition);
        let result = if pause {
            self.consumer.pause(&list)
        } else {
            self.consumer.resume(&list)
        };
        match result {
            Ok(()) => {
                state.paused = pause;
                debug!(
                    partition,
                    outstanding,
                    paused = pause,
                    "fetching paused or resumed"
                );
            }
            Err(error) => {
                warn!(topic = %self.config.topic, partition, error = %error, "cannot pause or resume fetching")
            }
        }
    }

    /// Starts batch requests while some are due and the concurrency limit allows.
    fn dispatch(&mut self, flush_all: bool) {
        let encoder = &self.delivery.encoder;
        while self.batches_in_flight < self.config.max_concurrent_batches
            && self.partitions.has_pending()
        {
            let due = flush_all
                || self.partitions.fills_batch(&self.config.batch, encoder)
                || self
                    .partitions
                    .linger_deadline(self.config.batch.linger)
                    .is_some_and(|d| d <= std::time::Instant::now());
            if !due {
                return;
            }
            let Some(events) = self.partitions.take_batch(&self.config.batch, encoder) else {
                return;
            };

            debug!(events = events.len(), "sending a batch to Segment");
            self.batches_in_flight += 1;
            let delivery = self.delivery.clone().deliver(events);
            self.tasks
                .push(Box::pin(async move { Completion::Batch(delivery.await) }));
        }
    }

    fn complete(&mut self, completion: Completion) {
        match completion {
            Completion::Batch(outcome) => {
                self.batches_in_flight -= 1;
                self.complete_batch(outcome);
            }
            Completion::DeadLettered {
                partition,
                generation,
                offset,
            } => self.finish_message(partition, generation, offset),
        }
    }

    fn complete_batch(&mut self, outcome: BatchOutcome) {
        let mut rejected = outcome.rejected.into_iter().peekable();
        let mut partitions = Vec::new();
        for (index, event) in outcome.events.into_iter().enumerate() {
            if let Some(state) = self.partitions.current(event.partition, event.generation) {
                state.in_flight = false;
                state.retrying = false;
                partitions.push(event.partition);
            }
            match rejected.next_if(|r| r.index == index) {
                Some(rejection) => {
                    let letter = DeadLetter {
                        kind: DlqKind::SegmentRejected,
                        reason: format!(
                            "Segment answered {} to this event: {}",
                            rejection.status, rejection.body
                        ),
                        segment_status: Some(rejection.status),
                    };
                    self.dead_letter(event.message, event.generation, letter);
                }
                None => self.finish_message(event.partition, event.generation, event.offset),
            }
        }

        partitions.dedup();
        for partition in partitions {
            self.apply_backpressure(partition);
        }
    }

    /// Marks a message finished and stores the new commit position when it moved.
    fn finish_message(&mut self, partition: i32, generation: u64, offset: i64) {
        let Some(state) = self.partitions.current(partition, generation) else {
            debug!(
                partition,
                offset, "ignoring a result for a partition no longer assigned here"
            );
            return;
        };
        let Some(position) = state.watermark.finish(offset) else {
            return;
        };

        let mut list = TopicPartitionList::new();
        if let Err(error) =
            list.add_partition_offset(&self.config.topic, partition, Offset::Offset(position))
        {
            warn!(partition, position, error = %error, "cannot build the offset to store");
            return;
        }
        if let Err(error) = self.consumer.store_offsets(&list) {
            warn!(topic = %self.config.topic, partition, position, error = %error, "cannot store the offset; it will be delivered again after a rebalance");
        }
        self.apply_backpressure(partition);
    }
}

/// Returns the receive time of a message: the receiver's `gwen-received-at` header, else the record's
/// Kafka timestamp, else now.
fn received_at(message: &BorrowedMessage<'_>) -> DateTime<Utc> {
    let from_header = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|header| header.key == headers::RECEIVED_AT)
            .and_then(|header| std::str::from_utf8(header.value?).ok())
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|time| time.with_timezone(&Utc))
    });
    from_header
        .or_else(|| {
            message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis)
        })
        .unwrap_or_else(Utc::now)
}
