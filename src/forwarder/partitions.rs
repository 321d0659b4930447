//! Per-partition state: events waiting for a batch, the commit watermark, and whether a request
//! holding the partition's events is unanswered.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::OwnedMessage;

use super::offsets::Watermark;
use crate::segment::BatchEncoder;

/// A mapped event waiting for Segment, with the message it came from for the dead-letter topic.
pub struct PendingEvent {
    pub partition: i32,
    pub generation: u64,
    pub offset: i64,
    pub json: Vec<u8>,
    pub message: Arc<OwnedMessage>,
}

impl PendingEvent {
    /// `partition/offset`, for logs.
    pub fn position(&self) -> String {
        format!("{}/{}", self.partition, self.offset)
    }
}

/// Limits of one batch request.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_bytes: usize,
    pub max_events: usize,
    pub linger: Duration,
}

#[derive(Default)]
pub struct PartitionState {
    /// Tells results of an earlier assignment of the same partition apart from current ones.
    pub generation: u64,
    pending: VecDeque<PendingEvent>,
    pending_bytes: usize,
    /// When the oldest pending event arrived.
    pending_since: Option<Instant>,
    /// True while a request holding this partition's events is unanswered.
    pub in_flight: bool,
    /// True while that request failed once and is being retried; fetching pauses meanwhile.
    pub retrying: bool,
    /// Messages held, in offset order, until the schema id of the first one is checked.
    pub waiting: VecDeque<Arc<OwnedMessage>>,
    pub watermark: Watermark,
    pub paused: bool,
}

impl PartitionState {
    pub fn push(&mut self, event: PendingEvent) {
        self.pending_since.get_or_insert_with(Instant::now);
        self.pending_bytes += event.json.len();
        self.pending.push_back(event);
    }

    fn eligible(&self) -> bool {
        !self.in_flight && !self.pending.is_empty()
    }
}

/// The partitions this member owns.
#[derive(Default)]
pub struct Partitions {
    states: BTreeMap<i32, PartitionState>,
    next_generation: u64,
    /// The partition a batch starts with rotates, so no partition waits behind the others.
    rotation: usize,
}

impl Partitions {
    pub fn assign(&mut self, partition: i32) {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.states.insert(
            partition,
            PartitionState {
                generation,
                ..PartitionState::default()
            },
        );
    }

    pub fn revoke(&mut self, partition: i32) -> Option<PartitionState> {
        self.states.remove(&partition)
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn get(&self, partition: i32) -> Option<&PartitionState> {
        self.states.get(&partition)
    }

    pub fn get_mut(&mut self, partition: i32) -> Option<&mut PartitionState> {
        self.states.get_mut(&partition)
    }

    /// Returns the state of a partition, unless it was revoked (and maybe reassigned) since `generation`.
    pub fn current(&mut self, partition: i32, generation: u64) -> Option<&mut PartitionState> {
        self.states
            .get_mut(&partition)
            .filter(|state| state.generation == generation)
    }

    /// When the oldest unfinished message of any partition arrived.
    pub fn oldest_unfinished(&self) -> Option<Instant> {
        self.states
            .values()
            .filter_map(|state| state.watermark.oldest())
            .min()
    }

    /// The partitions holding messages that wait for a schema id check.
    pub fn with_waiting(&self) -> Vec<i32> {
        self.states
            .iter()
            .filter(|(_, s)| !s.waiting.is_empty())
            .map(|(p, _)| *p)
            .collect()
    }

    pub fn has_pending(&self) -> bool {
        self.states.values().any(|state| !state.pending.is_empty())
    }

    /// When the next batch is due by linger: the oldest eligible event's arrival plus `linger`.
    pub fn linger_deadline(&self, linger: Duration) -> Option<Instant> {
        self.states
            .values()
            .filter(|s| s.eligible())
            .filter_map(|s| s.pending_since)
            .min()
            .map(|since| since + linger)
    }

    /// True when the eligible events fill a batch by count or size.
    pub fn fills_batch(&self, limits: &BatchLimits, encoder: &BatchEncoder) -> bool {
        let (events, bytes) = self
            .states
            .values()
            .filter(|s| s.eligible())
            .fold((0, 0), |(events, bytes), s| {
                (events + s.pending.len(), bytes + s.pending_bytes)
            });
        events >= limits.max_events || encoder.body_bytes(bytes, events) >= limits.max_bytes
    }

    /// Takes the next batch from partitions with no request in flight, each partition's events
    /// in offset order, and marks those partitions in flight. `None` when nothing is eligible.
    pub fn take_batch(
        &mut self,
        limits: &BatchLimits,
        encoder: &BatchEncoder,
    ) -> Option<Vec<PendingEvent>> {
        let eligible: Vec<i32> = self
            .states
            .iter()
            .filter(|(_, s)| s.eligible())
            .map(|(p, _)| *p)
            .collect();
        if eligible.is_empty() {
            return None;
        }
        self.rotation = self.rotation.wrapping_add(1);
        let start = self.rotation % eligible.len();

        let mut batch = Vec::new();
        let mut event_bytes = 0;
        'partitions: for partition in eligible[start..].iter().chain(&eligible[..start]) {
            let Some(state) = self.states.get_mut(partition) else {
                continue;
            };
            while let Some(event) = state.pending.front() {
                let fits = batch.len() < limits.max_events
                    && encoder.body_bytes(event_bytes + event.json.len(), batch.len() + 1)
                        <= limits.max_bytes;
                if !fits {
                    break 'partitions;
                }
                let Some(event) = state.pending.pop_front() else {
                    break;
                };
                state.pending_bytes -= event.json.len();
                event_bytes += event.json.len();
                state.in_flight = true;
                batch.push(event);
            }
            // Fully taken: a partition cut off above keeps its older arrival time, so it is due at once.
            state.pending_since = None;
        }

        (!batch.is_empty()).then_some(batch)
    }
}
