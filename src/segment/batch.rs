//! The body of a `POST /v1/batch` request.

use bytes::Bytes;

use crate::mapping::format_timestamp;
use crate::secret::Secret;

/// Segment's limit is 500 000 bytes a request; this leaves room for proxies that add to it.
pub const MAX_BATCH_BYTES: usize = 475_000;
/// Segment accepts at most this many events a batch request.
pub const MAX_BATCH_EVENTS: usize = 2_500;

const PREFIX: &[u8] = b"{\"batch\":[";
/// `"2025-12-04T13:00:00.000Z"`: the length of `sentAt` with its quotes.
const SENT_AT_BYTES: usize = 26;

/// Writes batch bodies: `{"batch":[...],"sentAt":"...","writeKey":"..."}`.
#[derive(Clone)]
pub struct BatchEncoder {
    /// `],"sentAt":` is written before the timestamp, this after it.
    write_key_suffix: Vec<u8>,
}

impl BatchEncoder {
    /// An encoder that writes `writeKey` into every body, or leaves it out when `None`.
    pub fn new(write_key: Option<&Secret>) -> Self {
        let suffix = match write_key {
            Some(key) => {
                let key =
                    serde_json::to_string(key.expose()).unwrap_or_else(|_| "\"\"".to_string());
                format!(",\"writeKey\":{key}}}")
            }
            None => "}".to_string(),
        };
        BatchEncoder {
            write_key_suffix: suffix.into_bytes(),
        }
    }

    /// Returns the bytes a batch body takes besides its events and the commas between them.
    pub fn envelope_bytes(&self) -> usize {
        PREFIX.len() + b"],\"sentAt\":".len() + SENT_AT_BYTES + self.write_key_suffix.len()
    }

    /// Returns the serialized size of a batch of events with these sizes.
    pub fn body_bytes(&self, event_bytes: usize, events: usize) -> usize {
        self.envelope_bytes() + event_bytes + events.saturating_sub(1)
    }

    /// Writes the body for these serialized events, stamped with the current time as `sentAt`.
    pub fn encode<'a>(&self, events: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
        let mut body = Vec::with_capacity(MAX_BATCH_BYTES / 4);
        body.extend_from_slice(PREFIX);
        for (index, event) in events.into_iter().enumerate() {
            if index > 0 {
                body.push(b',');
            }
            body.extend_from_slice(event);
        }
        body.extend_from_slice(b"],\"sentAt\":\"");
        body.extend_from_slice(format_timestamp(chrono::Utc::now()).as_bytes());
        body.push(b'"');
        body.extend_from_slice(&self.write_key_suffix);
        Bytes::from(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_batch_is_json_with_write_key() {
        let encoder = BatchEncoder::new(Some(&Secret::new("key\"1")));
        let body = encoder.encode([br#"{"a":1}"#.as_slice(), br#"{"b":2}"#.as_slice()]);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["batch"], serde_json::json!([{"a": 1}, {"b": 2}]));
        assert_eq!(value["writeKey"], "key\"1");
        assert!(value["sentAt"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn batch_without_write_key_omits_it() {
        let body = BatchEncoder::new(None).encode([br#"{"a":1}"#.as_slice()]);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["batch"], serde_json::json!([{"a": 1}]));
        assert!(value.get("writeKey").is_none());
    }

    #[test]
    fn body_bytes_predicts_encoded_size() {
        let encoder = BatchEncoder::new(Some(&Secret::new("write-key")));
        let events = [
            br#"{"a":1}"#.as_slice(),
            br#"{"bb":22}"#.as_slice(),
            b"{}".as_slice(),
        ];
        let event_bytes: usize = events.iter().map(|e| e.len()).sum();
        assert_eq!(
            encoder.body_bytes(event_bytes, events.len()),
            encoder.encode(events).len()
        );
        assert_eq!(encoder.body_bytes(0, 0), encoder.encode([]).len());
    }
}
