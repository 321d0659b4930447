//! The Segment `timestamp` of a webhook, with the receive-time fallback.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::value::RawValue;

/// Unix times below this are seconds, larger ones milliseconds (10^11 s is in the year 5138).
const MILLISECONDS_THRESHOLD: f64 = 1e11;

/// How far after the receive time a webhook timestamp may lie before it is distrusted.
const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::hours(24);

/// Origin of the event's timestamp, reported as `context.gwen.timestampSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampSource {
    Webhook,
    Received,
}

impl TimestampSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TimestampSource::Webhook => "webhook",
            TimestampSource::Received => "received",
        }
    }
}

/// Picks the event timestamp: the webhook's own `timestamp` when it is usable, else the receive
/// time.
///
/// Usable means a positive unix time (number or numeric string, seconds below 10^11, else
/// milliseconds) or an RFC 3339 string with an offset, at most 24 hours after `received_at`.
pub fn event_timestamp(
    raw: Option<&RawValue>,
    received_at: DateTime<Utc>,
) -> (DateTime<Utc>, TimestampSource) {
    match raw.and_then(parse_webhook_timestamp) {
        Some(timestamp) if timestamp <= received_at + MAX_FUTURE_SKEW => {
            (timestamp, TimestampSource::Webhook)
        }
        _ => (received_at, TimestampSource::Received),
    }
}

fn parse_webhook_timestamp(raw: &RawValue) -> Option<DateTime<Utc>> {
    let text = raw.get();
    if text.starts_with('"') {
        let text: String = serde_json::from_str(text).ok()?;
        let text = text.trim();
        if is_decimal_number(text) {
            return from_unix_number(text);
        }
        return DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|timestamp| timestamp.with_timezone(&Utc))
            .filter(|timestamp| timestamp.timestamp_millis() > 0);
    }
    from_unix_number(text)
}

/// True for text such as `1764853200` or `1764853200.5`; rejects `inf`, `NaN` and empty text,
/// which `f64::from_str` would take.
fn is_decimal_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn from_unix_number(text: &str) -> Option<DateTime<Utc>> {
    let number: f64 = text.parse().ok()?;
    if !number.is_finite() || number <= 0.0 {
        return None;
    }

    let millis = if number < MILLISECONDS_THRESHOLD {
        number * 1000.0
    } else {
        number
    };
    // Beyond i64 milliseconds chrono has no date anyway, and such a time is far in the future.
    if millis >= i64::MAX as f64 {
        return None;
    }
    DateTime::from_timestamp_millis(millis.round() as i64)
}

/// Formats a timestamp as Segment expects it: ISO 8601 in UTC with milliseconds.
pub fn format_timestamp(timestamp: DateTime<Utc>) -> String {
    timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received_at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-12-04T13:00:00.000Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn pick(json: &str) -> (String, TimestampSource) {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        let (timestamp, source) = event_timestamp(Some(&raw), received_at());
        (format_timestamp(timestamp), source)
    }

    const RECEIVED: &str = "2025-12-04T13:00:00.000Z";

    #[test]
    fn unix_seconds_number() {
        assert_eq!(
            pick("1764853200"),
            ("2025-12-04T13:00:00.000Z".into(), TimestampSource::Webhook)
        );
    }

    #[test]
    fn unix_seconds_with_fraction() {
        assert_eq!(
            pick("1764853200.25"),
            ("2025-12-04T13:00:00.250Z".into(), TimestampSource::Webhook)
        );
    }

    #[test]
    fn unix_milliseconds_number() {
        assert_eq!(
            pick("1764853200123"),
            ("2025-12-04T13:00:00.123Z".into(), TimestampSource::Webhook)
        );
    }

    #[test]
    fn numeric_strings_as_numbers() {
        assert_eq!(
            pick(r#""1764853200""#),
            ("2025-12-04T13:00:00.000Z".into(), TimestampSource::Webhook)
        );
        assert_eq!(
            pick(r#"" 1764853200123.0 ""#),
            ("2025-12-04T13:00:00.123Z".into(), TimestampSource::Webhook)
        );
    }

    #[test]
    fn rfc3339_with_offset() {
        assert_eq!(
            pick(r#""2025-12-04T14:30:00.5+01:00""#),
            ("2025-12-04T13:30:00.500Z".into(), TimestampSource::Webhook)
        );
        assert_eq!(
            pick(r#""2025-12-04T12:00:00Z""#),
            ("2025-12-04T12:00:00.000Z".into(), TimestampSource::Webhook)
        );
    }

    #[test]
    fn unusable_values_fall_back_to_receive_time() {
        for json in [
            "0",
            "-5",
            "null",
            "true",
            "{}",
            "[]",
            r#""""#,
            r#""yesterday""#,
            r#""inf""#,
            r#""NaN""#,
            r#""2025-12-04 12:00""#,
            "1e300",
        ] {
            assert_eq!(
                pick(json),
                (RECEIVED.into(), TimestampSource::Received),
                "for {json}"
            );
        }
    }

    #[test]
    fn far_future_falls_back_to_receive_time() {
        // 24 h and one second after the receive time.
        assert_eq!(
            pick("1764939601"),
            (RECEIVED.into(), TimestampSource::Received)
        );
        // Exactly 24 h after is still trusted.
        assert_eq!(
            pick("1764939600"),
            ("2025-12-05T13:00:00.000Z".into(), TimestampSource::Webhook)
        );
    }

    #[test]
    fn missing_timestamp_falls_back_to_receive_time() {
        let (timestamp, source) = event_timestamp(None, received_at());
        assert_eq!(format_timestamp(timestamp), RECEIVED);
        assert_eq!(source, TimestampSource::Received);
    }
}
