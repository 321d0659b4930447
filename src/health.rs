//! Readiness of one component (receiver or forwarder), as `/readyz` reports it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared, cheap to clone. A component is ready once started, unless halted or stopping.
#[derive(Clone)]
pub struct Health(Arc<HealthState>);

struct HealthState {
    component: &'static str,
    started: AtomicBool,
    halted: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    pub fn new(component: &'static str) -> Self {
        Health(Arc::new(HealthState {
            component,
            started: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        }))
    }

    /// Marks the component as having reached Kafka (receiver) or joined its group (forwarder).
    pub fn set_started(&self, started: bool) {
        self.0.started.store(started, Ordering::Relaxed);
    }

    /// Marks delivery as halted by a Segment response that needs an operator (401, 403, 404).
    pub fn set_halted(&self, halted: bool) {
        self.0.halted.store(halted, Ordering::Relaxed);
    }

    pub fn set_stopping(&self) {
        self.0.stopping.store(true, Ordering::Relaxed);
    }

    pub fn is_stopping(&self) -> bool {
        self.0.stopping.load(Ordering::Relaxed)
    }

    /// `Ok` when ready, else the reason it is not.
    pub fn readiness(&self) -> Result<(), String> {
        let state = &self.0;
        let component = state.component;
        if state.stopping.load(Ordering::Relaxed) {
            return Err(format!("{component}: shutting down"));
        }
        if state.halted.load(Ordering::Relaxed) {
            return Err(format!(
                "{component}: halted, Segment rejects the write key or the endpoint"
            ));
        }
        if !state.started.load(Ordering::Relaxed) {
            return Err(format!("{component}: starting"));
        }
        Ok(())
    }
}
