//! Writes the Segment `track` event as compact JSON.

use super::VERSION;

/// The values of one Segment `track` event. Its other keys have fixed values.
pub(super) struct TrackEvent<'a> {
    pub event: &'a str,
    pub user_id: &'a str,
    pub timestamp: &'a str,
    pub message_id: &'a str,
    /// The webhook as compact JSON text, written as it is.
    pub properties: &'a str,
    pub timestamp_source: &'static str,
}

/// Bytes of the event besides `properties` and the escaped strings above, rounded up.
const FIXED_BYTES: usize = 256;

impl TrackEvent<'_> {
    /// Writes the event into one buffer sized for it.
    ///
    /// Keys and values appear in the same order and with the same escaping as `serde_json::to_vec`
    /// of a struct with these fields gives, because each string goes through serde_json.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(self.capacity());

        out.extend_from_slice(br#"{"type":"track","event":"#);
        serde_json::to_writer(&mut out, self.event)?;
        out.extend_from_slice(br#","userId":"#);
        serde_json::to_writer(&mut out, self.user_id)?;
        out.extend_from_slice(br#","timestamp":"#);
        serde_json::to_writer(&mut out, self.timestamp)?;
        out.extend_from_slice(br#","messageId":"#);
        serde_json::to_writer(&mut out, self.message_id)?;
        out.extend_from_slice(br#","properties":"#);
        out.extend_from_slice(self.properties.as_bytes());

        out.extend_from_slice(br#","context":{"integration":{"name":"gwen-webhooks","version":"#);
        serde_json::to_writer(&mut out, VERSION)?;
        out.extend_from_slice(br#"},"library":{"name":"gwen-segment","version":"#);
        serde_json::to_writer(&mut out, VERSION)?;
        out.extend_from_slice(br#"},"gwen":{"timestampSource":"#);
        serde_json::to_writer(&mut out, self.timestamp_source)?;
        out.extend_from_slice(b"}}}");
        Ok(out)
    }

    /// Returns an upper bound of the event's size when no string needs escapes.
    fn capacity(&self) -> usize {
        let strings = self.event.len() + self.user_id.len() + self.timestamp.len();
        FIXED_BYTES + self.properties.len() + strings + self.message_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_fits_event_without_escapes() {
        let event = TrackEvent {
            event: "Webhook verification",
            user_id: "3f6c1b2e-8a4d-4f7e-9b21-5c0d7e9a1f42",
            timestamp: "2025-12-04T13:00:00.000Z",
            message_id: "gwen-0874468eb843e4a5e1c195f5f8042a4f",
            properties: r#"{"type":"webhook_verification"}"#,
            timestamp_source: "received",
        };
        let json = event.to_json().unwrap();
        assert!(json.len() <= event.capacity(), "{} bytes", json.len());
    }
}
