//! The forwarder: a consumer-group member that maps webhooks to Segment `track` events, sends
//! them in batches, and commits offsets only over finished messages.

mod context;
mod delivery;
mod dlq;
mod linger;
mod offsets;
mod partitions;
mod schemas;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::{AbortHandle, Abortable};
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
use crate::kafka::{KafkaSettings, headers, set_default};
use crate::mapping::{DlqKind, MappingConfig, map_webhook};
use crate::metrics::{label, metrics};
use crate::registry::SchemaRegistry;
use crate::segment::SegmentClient;
use delivery::{BatchOutcome, Delivery, PartitionGeneration};
use linger::LingerTimer;
use partitions::{Partitions, PendingEvent};
use schemas::{Gate, SchemaGate};

/// Undocumented webhook types logged once each; beyond this many, no more are logged.
const MAX_LOGGED_UNKNOWN_TYPES: usize = 100;

/// How often the age of the oldest unfinished message is published.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// How often librdkafka reports statistics (committed offsets, lag), in milliseconds.
const STATISTICS_INTERVAL_MS: &str = "10000";

/// Bound of librdkafka's prefetch queue per partition, so fetched but unprocessed data stays small.
const FETCH_QUEUE_KBYTES: &str = "16384";

/// How long leaving the group may take after the final commit: a LeaveGroup request and the
/// last rebalance.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Checks the schema ids of framed values; without it they are only unframed.
    pub registry: Option<Arc<SchemaRegistry>>,
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
    // Statistics feed the committed offset and lag metrics. A --kafka-option value wins.
    set_default(
        &mut config,
        "statistics.interval.ms",
        STATISTICS_INTERVAL_MS,
    );
    // With the small prefetch queue above, librdkafka's default wait of 1 s before fetching a
    // full partition again idled the forwarder; 100 ms gave about 5 times the throughput in
    // scripts/bench. A --kafka-option value wins.
    set_default(&mut config, "fetch.queue.backoff.ms", "100");
    config
}

type Task = Pin<Box<dyn Future<Output = Completion> + Send>>;

/// An unanswered batch: the handle that stops it and the partitions it holds.
struct InFlightBatch {
    abort: AbortHandle,
    partitions: Vec<PartitionGeneration>,
}

/// A finished unit of asynchronous work.
enum Completion {
    Batch(u64, BatchOutcome),
    /// A batch whose partitions were all revoked, stopped before Segment acknowledged it.
    BatchAbandoned(u64),
    DeadLettered {
        partition: i32,
        generation: u64,
        offset: i64,
        kind: DlqKind,
    },
    SchemaChecked {
        schema_id: u32,
        verdict: Result<(), String>,
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
        schemas: SchemaGate::new(clients.registry, config.retry),
        config,
        partitions: Partitions::default(),
        tasks: FuturesUnordered::new(),
        batches: HashMap::new(),
        next_batch_id: 0,
        unknown_types: HashSet::new(),
    };
    forwarder.consume(shutdown).await;
    forwarder.drain().await;
    forwarder.finish().await;
    close(forwarder).await;
    Ok(())
}

/// Drops the forwarder and with it the consumer, which leaves the group. The drop serves the last
/// rebalance and may block, so it runs on a blocking thread. If it does not end in time, an error
/// is logged and the process goes on stopping.
async fn close(forwarder: Forwarder) {
    let topic = forwarder.config.topic.clone();
    let closing = tokio::task::spawn_blocking(move || drop(forwarder));
    match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            error!(%topic, error = %error, "closing the Kafka consumer failed; its partitions move to other members after the session timeout")
        }
        Err(_) => {
            error!(%topic, timeout = %humantime::format_duration(CLOSE_TIMEOUT), "the Kafka consumer did not leave the group in time; its partitions move to other members after the session timeout")
        }
    }
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
    /// Unanswered batches by id, with the partitions they hold, so revoked ones can be stopped.
    batches: HashMap<u64, InFlightBatch>,
    next_batch_id: u64,
    /// Unknown webhook types already logged, so each is logged once.
    unknown_types: HashSet<String>,
    schemas: SchemaGate,
}

impl Forwarder {
    async fn consume(&mut self, shutdown: impl Future<Output = ()>) {
        let consumer = self.consumer.clone();
        tokio::pin!(shutdown);
        let mut gauges = tokio::time::interval(GAUGE_INTERVAL);
        let mut linger = LingerTimer::new();
        loop {
            self.apply_rebalances();
            self.dispatch(false);
            linger.set(self.partitions.linger_deadline(self.config.batch.linger));

            tokio::select! {
                () = &mut shutdown => break,
                _ = gauges.tick() => self.update_gauges(),
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
                () = linger.sleep(), if linger.is_armed() => linger.fire(),
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
                // A partition paused before it was revoked stays paused in librdkafka when it
                // comes back; its new state starts unpaused, so resume it to match.
                let mut list = TopicPartitionList::new();
                for &partition in &partitions {
                    self.partitions.assign(partition);
                    list.add_partition(&self.config.topic, partition);
                }
                if let Err(error) = self.consumer.resume(&list) {
                    warn!(topic = %self.config.topic, ?partitions, error = %error, "cannot resume fetching for assigned partitions");
                }
                self.health.set_started(true);
            }
            RebalanceEvent::Revoked(partitions) => {
                for partition in partitions {
                    self.partitions.revoke(partition);
                }
                self.abandon_revoked_batches();
            }
        }
    }

    /// Stops the unanswered batches whose partitions are all revoked: the new owners send those
    /// events again, so retrying them here would only duplicate them. A batch that also holds
    /// partitions still owned keeps going, and the results for the revoked ones are ignored.
    fn abandon_revoked_batches(&mut self) {
        for batch in self.batches.values() {
            let all_revoked = batch.partitions.iter().all(|&(partition, generation)| {
                self.partitions
                    .get(partition)
                    .is_none_or(|state| state.generation != generation)
            });
            if all_revoked && !batch.abort.is_aborted() {
                info!(partitions = ?batch.partitions, "abandoning an unanswered batch of revoked partitions");
                batch.abort.abort();
            }
        }
    }

    fn update_gauges(&self) {
        let age = self
            .partitions
            .oldest_unfinished()
            .map_or(0.0, |since| since.elapsed().as_secs_f64());
        metrics().oldest_unfinished_seconds.set(age);
    }

    /// Takes one message in: tracks its offset, then maps it, dead-letters it, or holds it behind
    /// the messages of its partition that wait for a schema id check.
    fn accept(&mut self, message: &BorrowedMessage<'_>) {
        let partition = message.partition();
        let offset = message.offset();
        let Some(state) = self.partitions.get_mut(partition) else {
            debug!(
                partition,
                offset,
                "message for a partition not assigned here; it will be fetched again by its owner"
            );
            return;
        };
        let message = Arc::new(message.detach());
        // Held twice until finished: as received and, about as large, as its event.
        state
            .watermark
            .track(offset, 2 * message.payload().map_or(0, <[u8]>::len));
        let generation = state.generation;

        if !state.waiting.is_empty() {
            state.waiting.push_back(message);
        } else if !self.process(&message, generation)
            && let Some(state) = self.partitions.get_mut(partition)
        {
            state.waiting.push_back(message);
        }
        self.apply_backpressure(partition);
    }

    /// Maps a message into a pending event or starts its dead-letter write. Returns false, and
    /// does nothing else, when the message must wait for its schema id to be checked.
    fn process(&mut self, message: &Arc<OwnedMessage>, generation: u64) -> bool {
        let (partition, offset) = (message.partition(), message.offset());
        let payload = message.payload().unwrap_or_default();
        let mapped = match self.schemas.check(payload) {
            Gate::Map(json) => {
                map_webhook(json, received_at(message.as_ref()), &self.config.mapping)
            }
            Gate::Reject(rejection) => Err(rejection),
            Gate::Wait { lookup } => {
                if let Some(lookup) = lookup {
                    self.tasks.push(Box::pin(async move {
                        let (schema_id, verdict) = lookup.await;
                        Completion::SchemaChecked { schema_id, verdict }
                    }));
                }
                return false;
            }
        };

        match mapped {
            Ok(event) => {
                if !event.event_name.known {
                    self.note_unknown_type(&event.event_name.name, partition, offset);
                }
                debug!(
                    partition,
                    offset,
                    message_id = %event.message_id,
                    request_id = header_text(message.as_ref(), headers::REQUEST_ID).unwrap_or_default(),
                    traceparent = header_text(message.as_ref(), headers::TRACEPARENT).unwrap_or_default(),
                    "event mapped"
                );
                if let Some(state) = self.partitions.current(partition, generation) {
                    state.push(PendingEvent {
                        partition,
                        generation,
                        offset,
                        json: event.json,
                        message: message.clone(),
                    });
                }
            }
            Err(rejection) => {
                let letter = DeadLetter {
                    kind: rejection.kind,
                    reason: rejection.reason,
                    segment_status: None,
                };
                self.dead_letter(message.clone(), generation, letter);
            }
        }
        true
    }

    /// Logs each undocumented webhook type once, remembering at most `MAX_LOGGED_UNKNOWN_TYPES`.
    fn note_unknown_type(&mut self, name: &str, partition: i32, offset: i64) {
        if self.unknown_types.len() >= MAX_LOGGED_UNKNOWN_TYPES || self.unknown_types.contains(name)
        {
            return;
        }
        self.unknown_types.insert(name.to_string());
        info!(
            event = name,
            partition, offset, "forwarding an undocumented GWEN webhook type"
        );
        if self.unknown_types.len() == MAX_LOGGED_UNKNOWN_TYPES {
            warn!(
                types = MAX_LOGGED_UNKNOWN_TYPES,
                "many undocumented webhook types; further ones are not logged"
            );
        }
    }

    /// Processes, in offset order, the held messages whose schema ids are now checked.
    fn release_waiting(&mut self) {
        for partition in self.partitions.with_waiting() {
            while let Some(state) = self.partitions.get_mut(partition) {
                let Some(message) = state.waiting.front().cloned() else {
                    break;
                };
                let generation = state.generation;
                if !self.process(&message, generation) {
                    break;
                }
                if let Some(state) = self.partitions.get_mut(partition) {
                    state.waiting.pop_front();
                }
            }
            self.apply_backpressure(partition);
        }
    }

    fn dead_letter(&mut self, message: Arc<OwnedMessage>, generation: u64, letter: DeadLetter) {
        let partition = message.partition();
        let offset = message.offset();
        let kind = letter.kind;
        let write = self.dlq.clone().write(message, letter);
        self.tasks.push(Box::pin(async move {
            write.await;
            Completion::DeadLettered {
                partition,
                generation,
                kind,
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

        let blocked = state.retrying || !state.waiting.is_empty();
        let change = if !state.paused && (blocked || outstanding > share) {
            Some(true)
        } else if state.paused && !blocked && outstanding <= share / 2 {
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
        while self.batches.len() < self.config.max_concurrent_batches
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
            let event_bytes = events.iter().map(|event| event.json.len()).sum();
            metrics().batch_events.observe(events.len() as f64);
            metrics()
                .batch_bytes
                .observe(encoder.body_bytes(event_bytes, events.len()) as f64);
            let id = self.next_batch_id;
            self.next_batch_id += 1;
            let mut partitions: Vec<PartitionGeneration> =
                events.iter().map(|e| (e.partition, e.generation)).collect();
            partitions.dedup();
            let (abort, registration) = AbortHandle::new_pair();
            self.batches.insert(id, InFlightBatch { abort, partitions });

            let delivery = Abortable::new(self.delivery.clone().deliver(events), registration);
            self.tasks.push(Box::pin(async move {
                match delivery.await {
                    Ok(outcome) => Completion::Batch(id, outcome),
                    Err(_aborted) => Completion::BatchAbandoned(id),
                }
            }));
        }
    }

    fn complete(&mut self, completion: Completion) {
        match completion {
            Completion::Batch(id, outcome) => {
                self.batches.remove(&id);
                self.complete_batch(outcome);
            }
            Completion::BatchAbandoned(id) => {
                self.batches.remove(&id);
            }
            Completion::DeadLettered {
                partition,
                generation,
                offset,
                kind,
            } => {
                metrics()
                    .dlq_messages
                    .get_or_create(&label("kind", kind))
                    .inc();
                self.finish_message(partition, generation, offset);
            }
            Completion::SchemaChecked { schema_id, verdict } => {
                self.schemas.resolve(schema_id, verdict);
                self.release_waiting();
            }
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
                None => {
                    metrics().events_delivered.inc();
                    self.finish_message(event.partition, event.generation, event.offset);
                }
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

/// Returns a record header as text, when present and UTF-8.
fn header_text<'a, M: Message>(message: &'a M, key: &str) -> Option<&'a str> {
    let headers = message.headers()?;
    let header = headers.iter().find(|header| header.key == key)?;
    std::str::from_utf8(header.value?).ok()
}

/// Returns the receive time of a message: the receiver's `gwen-received-at` header, else the record's
/// Kafka timestamp, else now.
fn received_at(message: &impl Message) -> DateTime<Utc> {
    let from_header = header_text(message, headers::RECEIVED_AT)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc));
    from_header
        .or_else(|| {
            message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis)
        })
        .unwrap_or_else(Utc::now)
}
