//! Scripted answers for the capture server: fail the next requests, delay every answer.

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
}

impl Script {
    /// Answers the next `count` requests with `failure`.
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
