//! Scripted responses for the capture server: fail the next requests, delay every response.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use super::Failure;

/// How the capture server misbehaves. Tests change it while the server runs.
#[derive(Default)]
pub struct Script {
    state: Mutex<ScriptState>,
}

#[derive(Default)]
struct ScriptState {
    failure: Option<Failure>,
    /// How many more requests get `failure`; `u64::MAX` keeps failing until changed.
    remaining_failures: u64,
    latency: Duration,
    /// messageIds whose batches get 400, as Segment answers a batch holding an event it refuses.
    rejected_message_ids: HashSet<String>,
}

impl Script {
    /// Fails the next `count` requests with `failure`.
    pub fn fail_next(&self, failure: Failure, count: u64) {
        let mut state = super::lock(&self.state);
        state.failure = Some(failure);
        state.remaining_failures = count;
    }

    /// Answers normally again.
    pub fn recover(&self) {
        super::lock(&self.state).remaining_failures = 0;
    }

    /// Delays every answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        super::lock(&self.state).latency = latency;
    }

    /// Answers 400 to every request holding the event with this messageId.
    pub fn reject_message_id(&self, message_id: &str) {
        super::lock(&self.state)
            .rejected_message_ids
            .insert(message_id.to_string());
    }

    /// True when the event's messageId was marked with [`Script::reject_message_id`].
    pub(super) fn rejects(&self, message_id: &str) -> bool {
        super::lock(&self.state)
            .rejected_message_ids
            .contains(message_id)
    }

    pub(super) fn rejects_any(&self) -> bool {
        !super::lock(&self.state).rejected_message_ids.is_empty()
    }

    /// The delay and the failure, if any, for the request that just arrived.
    pub(super) fn next_answer(&self) -> (Duration, Option<Failure>) {
        let mut state = super::lock(&self.state);
        if state.remaining_failures == 0 {
            return (state.latency, None);
        }
        if state.remaining_failures != u64::MAX {
            state.remaining_failures -= 1;
        }
        (state.latency, state.failure)
    }
}
