//! Maps GWEN webhook bytes to a serialized Segment `track` event. Pure: no I/O.

mod decimal;
mod event;
mod event_name;
mod message_id;
mod minify;
mod surrogates;
mod timestamp;

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

pub use decimal::decimal_text;
use event::TrackEvent;
pub use event_name::{EventName, event_name};
pub use message_id::message_id;
pub use minify::minify;
pub use surrogates::{LoneSurrogate, find_lone_surrogate};
pub use timestamp::{TimestampSource, event_timestamp, format_timestamp};

/// Segment rejects a whole batch with 400 when one event in it is larger than this.
pub const MAX_EVENT_BYTES: usize = 32_000;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Handling of webhooks whose `type` GWEN does not document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum UnknownTypes {
    /// Send them to Segment, named by their words in title case.
    #[default]
    Forward,
    /// Send them to the dead-letter topic.
    Dlq,
}

#[derive(Debug, Clone, Default)]
pub struct MappingConfig {
    /// Mixed into every messageId, so two deployments fed the same webhooks can keep their ids
    /// apart.
    pub message_id_namespace: String,
    pub unknown_types: UnknownTypes,
}

/// Reason a record goes to the dead-letter topic, written as the `gwen-dlq-kind` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DlqKind {
    InvalidWebhook,
    MissingUserId,
    EventTooLarge,
    SegmentRejected,
    UnknownType,
}

impl DlqKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DlqKind::InvalidWebhook => "invalid_webhook",
            DlqKind::MissingUserId => "missing_user_id",
            DlqKind::EventTooLarge => "event_too_large",
            DlqKind::SegmentRejected => "segment_rejected",
            DlqKind::UnknownType => "unknown_type",
        }
    }
}

impl fmt::Display for DlqKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook that cannot become a Segment event, with the reason as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: DlqKind,
    pub reason: String,
}

impl Rejection {
    fn new(kind: DlqKind, reason: impl Into<String>) -> Self {
        Rejection {
            kind,
            reason: reason.into(),
        }
    }
}

/// One Segment `track` event, serialized.
#[derive(Debug, Clone)]
pub struct MappedEvent {
    pub json: Vec<u8>,
    pub message_id: String,
    pub event_name: EventName,
}

/// The fields of a webhook that the mapping reads; every other field is passed through.
#[derive(Deserialize)]
struct WebhookFields<'a> {
    #[serde(rename = "type", borrow)]
    webhook_type: Option<&'a RawValue>,
    #[serde(rename = "userId", borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
}

/// Maps one webhook, given as the bytes of a JSON object, to a Segment `track` event.
///
/// `received_at` is the fallback for a missing or unusable webhook timestamp. The webhook's
/// fields become `properties` byte for byte, so numbers keep every digit.
pub fn map_webhook(
    webhook: &[u8],
    received_at: DateTime<Utc>,
    config: &MappingConfig,
) -> Result<MappedEvent, Rejection> {
    let text = std::str::from_utf8(webhook).map_err(|e| {
        Rejection::new(
            DlqKind::InvalidWebhook,
            format!("The webhook is not valid UTF-8: {e}."),
        )
    })?;
    let text = text.trim();
    if !text.starts_with('{') {
        let reason = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => "The webhook is JSON but not an object.".to_string(),
            Err(e) => format!("The webhook is not JSON: {e}."),
        };
        return Err(Rejection::new(DlqKind::InvalidWebhook, reason));
    }
    // This one parse checks the syntax of the whole text, because serde_json 1.0.154 checks the
    // values it skips with the same code that checks a `RawValue`.
    let fields: WebhookFields = serde_json::from_str(text).map_err(|e| invalid_webhook(text, e))?;
    // A pretty-printed webhook keeps its values but loses its line breaks, so the event stays
    // one line. The messageId below is still taken over the bytes as received.
    let properties = minify(text).map_err(|lone| lone_surrogate(lone.position))?;

    let event_name = read_event_name(fields.webhook_type)?;
    if !event_name.known && config.unknown_types == UnknownTypes::Dlq {
        return Err(Rejection::new(
            DlqKind::UnknownType,
            format!(
                "The webhook type {:?} is not a documented GWEN type, and unknown types go to the dead-letter topic.",
                event_name.name
            ),
        ));
    }
    let user_id = read_user_id(fields.user_id)?;
    let (timestamp, source) = event_timestamp(fields.timestamp, received_at);
    let message_id = message_id(&config.message_id_namespace, text.as_bytes());

    let event = TrackEvent {
        event: &event_name.name,
        user_id: &user_id,
        timestamp: &format_timestamp(timestamp),
        message_id: &message_id,
        properties: &properties,
        timestamp_source: source.as_str(),
    };
    let json = event.to_json().map_err(|e| {
        Rejection::new(
            DlqKind::InvalidWebhook,
            format!("The Segment event could not be serialized: {e}."),
        )
    })?;
    if json.len() > MAX_EVENT_BYTES {
        return Err(Rejection::new(
            DlqKind::EventTooLarge,
            format!(
                "The Segment event is {} bytes, over Segment's limit of {MAX_EVENT_BYTES} bytes per event.",
                json.len()
            ),
        ));
    }

    Ok(MappedEvent {
        json,
        message_id,
        event_name,
    })
}

/// Explains why the `WebhookFields` parse failed. Whatever that parse stopped at, a syntax error
/// anywhere is reported first, then a lone surrogate escape, then the parse's own error (such as
/// a duplicate `type`).
fn invalid_webhook(text: &str, fields_error: serde_json::Error) -> Rejection {
    if let Err(e) = serde_json::from_str::<&RawValue>(text) {
        return Rejection::new(
            DlqKind::InvalidWebhook,
            format!("The webhook is not valid JSON: {e}."),
        );
    }
    if let Some(position) = find_lone_surrogate(text) {
        return lone_surrogate(position);
    }
    Rejection::new(
        DlqKind::InvalidWebhook,
        format!("The webhook is not a valid GWEN webhook: {fields_error}."),
    )
}

fn lone_surrogate(position: usize) -> Rejection {
    Rejection::new(
        DlqKind::InvalidWebhook,
        format!(
            "The webhook contains a lone UTF-16 surrogate escape at byte {position}, which is not valid Unicode."
        ),
    )
}

fn read_event_name(raw: Option<&RawValue>) -> Result<EventName, Rejection> {
    let missing = || {
        Rejection::new(
            DlqKind::InvalidWebhook,
            "The webhook has no `type`: a non-empty string is required.",
        )
    };
    let raw = raw.ok_or_else(missing)?;
    let webhook_type: Cow<str> = serde_json::from_str(raw.get()).map_err(|_| {
        Rejection::new(
            DlqKind::InvalidWebhook,
            format!("The webhook `type` is {}, not a string.", raw.get()),
        )
    })?;
    event_name(&webhook_type).ok_or_else(|| {
        Rejection::new(
            DlqKind::InvalidWebhook,
            format!(
                "The webhook `type` {webhook_type:?} has no words, only separators or nothing."
            ),
        )
    })
}

/// Reads `userId` as Segment wants it: a string, with a number written as its decimal text.
fn read_user_id(raw: Option<&RawValue>) -> Result<Cow<'_, str>, Rejection> {
    let missing = || {
        Rejection::new(
            DlqKind::MissingUserId,
            "The webhook has no `userId`, and Segment drops track calls without one.",
        )
    };
    let Some(raw) = raw else {
        return Err(missing());
    };

    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let user_id: Cow<str> = serde_json::from_str(text).map_err(|e| {
                Rejection::new(
                    DlqKind::InvalidWebhook,
                    format!("The webhook `userId` is not a valid string: {e}."),
                )
            })?;
            if user_id.is_empty() {
                Err(missing())
            } else {
                Ok(user_id)
            }
        }
        Some(b'-' | b'0'..=b'9') => Ok(decimal_text(text)),
        _ if text == "null" => Err(missing()),
        _ => Err(Rejection::new(
            DlqKind::InvalidWebhook,
            format!("The webhook `userId` is {text}: a string or a number is required."),
        )),
    }
}

#[cfg(test)]
mod tests;
