//! The timer that wakes the forwarder when the oldest pending event has lingered long enough.

use std::pin::Pin;
use std::time::Instant;

use tokio::time::Sleep;

/// One `Sleep` for the whole consume loop, reset only when the linger deadline changes, so a
/// message that leaves the deadline as it was costs no timer registration.
pub(super) struct LingerTimer {
    sleep: Pin<Box<Sleep>>,
    deadline: Option<Instant>,
    fired: bool,
}

impl LingerTimer {
    pub fn new() -> Self {
        LingerTimer {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            deadline: None,
            fired: false,
        }
    }

    /// Sets the deadline, and `None` stops the timer.
    ///
    /// A deadline that already fired stays silent until it changes. While it is past, the
    /// forwarder waits for a free batch slot, and a finished or abandoned batch wakes the loop.
    pub fn set(&mut self, deadline: Option<Instant>) {
        if deadline == self.deadline {
            return;
        }
        if let Some(deadline) = deadline {
            self.sleep.as_mut().reset(deadline.into());
        }
        self.deadline = deadline;
        self.fired = false;
    }

    /// True while a deadline is set and has not fired. Await `sleep` only then.
    pub fn is_armed(&self) -> bool {
        self.deadline.is_some() && !self.fired
    }

    /// Returns the pinned sleep to await in `select!`, guarded by `is_armed`.
    pub fn sleep(&mut self) -> &mut Pin<Box<Sleep>> {
        &mut self.sleep
    }

    /// Records that the sleep completed.
    pub fn fire(&mut self) {
        self.fired = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn timer_fires_once_per_deadline() {
        let mut timer = LingerTimer::new();
        assert!(!timer.is_armed());

        let deadline = Instant::now() + Duration::from_millis(20);
        timer.set(Some(deadline));
        assert!(timer.is_armed());
        tokio::time::timeout(Duration::from_secs(5), timer.sleep())
            .await
            .expect("the linger timer fires");
        timer.fire();

        timer.set(Some(deadline));
        assert!(!timer.is_armed(), "a fired deadline rearmed itself");

        let later = deadline + Duration::from_millis(20);
        timer.set(Some(later));
        assert!(timer.is_armed());
        assert!(timer.sleep().deadline() >= later.into());

        timer.set(None);
        assert!(!timer.is_armed());
    }
}
