//! librdkafka's log lines and client errors as `tracing` events, with repeats held back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use tracing::{debug, error, info, warn};

/// Shortest time between two lines of one kind. A broker that stays down makes librdkafka report
/// the same failure several times a second.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(30);

/// Writes librdkafka's log lines and client errors through `tracing`. A kind of line (a log
/// facility at one level, or an error code) that comes again within `REPEAT_INTERVAL` is only
/// counted, and the next line of that kind carries the count as `repeats_left_out`. Debug lines
/// are never held back.
#[derive(Default)]
pub struct ClientLog {
    kinds: Mutex<HashMap<String, Kind>>,
}

struct Kind {
    logged_at: Instant,
    left_out: u64,
}

impl ClientLog {
    /// Returns how many lines of `kind` were left out since the last one logged, or `None` when
    /// this one is left out too.
    fn admit(&self, kind: String) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match kinds.get_mut(&kind) {
            Some(seen) if now.duration_since(seen.logged_at) < REPEAT_INTERVAL => {
                seen.left_out += 1;
                None
            }
            Some(seen) => {
                let left_out = seen.left_out;
                *seen = Kind {
                    logged_at: now,
                    left_out: 0,
                };
                Some(left_out)
            }
            None => {
                kinds.insert(
                    kind,
                    Kind {
                        logged_at: now,
                        left_out: 0,
                    },
                );
                Some(0)
            }
        }
    }

    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if matches!(level, RDKafkaLogLevel::Debug) {
            debug!(target: "librdkafka", facility, "{message}");
            return;
        }
        let Some(repeats_left_out) = self.admit(format!("log {facility} {}", level as i32)) else {
            return;
        };
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                error!(target: "librdkafka", facility, repeats_left_out, "{message}")
            }
            RDKafkaLogLevel::Warning => {
                warn!(target: "librdkafka", facility, repeats_left_out, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => {
                info!(target: "librdkafka", facility, repeats_left_out, "{message}")
            }
        }
    }

    pub fn error(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let Some(repeats_left_out) = self.admit(format!("error {code:?}")) else {
            return;
        };
        warn!(error = %error, reason, repeats_left_out, "Kafka client error");
    }
}

impl ClientContext for ClientLog {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        ClientLog::log(self, level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        ClientLog::error(self, &error, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_holds_back_repeats_and_counts_them() {
        let log = ClientLog::default();
        assert_eq!(log.admit("a".into()), Some(0));
        assert_eq!(log.admit("a".into()), None);
        assert_eq!(log.admit("a".into()), None);
        assert_eq!(log.admit("b".into()), Some(0));

        log.kinds.lock().unwrap().get_mut("a").unwrap().logged_at -= REPEAT_INTERVAL;
        assert_eq!(log.admit("a".into()), Some(2));
        assert_eq!(log.admit("a".into()), None);
    }
}
