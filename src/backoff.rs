//! Exponential backoff with full jitter, for retries that never give up.

use std::time::Duration;

/// Retry delays: attempt `n` waits a random time between zero and `min(max, initial * 2^n)`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// First retry delay of Segment requests and dead-letter writes.
    pub const INITIAL: Duration = Duration::from_millis(200);

    /// Delays from [`Backoff::INITIAL`] up to `max`.
    pub fn up_to(max: Duration) -> Self {
        Backoff {
            initial: Self::INITIAL,
            max,
        }
    }

    /// The delay before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_stays_under_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(60),
        };
        for attempt in 0..100 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(backoff.max);
            assert!(backoff.delay(attempt) <= ceiling, "attempt {attempt}");
        }
    }
}
