//! The forwarder's mapping on a file: webhooks in (a JSON object, an array, or JSON lines), one
//! Segment event per line out, and each input that would be dead-lettered reported with its reason.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::mapping::{DlqKind, MappingConfig, map_webhook};

/// One input that cannot become an event, with where it was.
#[derive(Debug, PartialEq, Eq)]
pub struct BadInput {
    /// `input`, `item N` (1-based, in an array) or `line N` (1-based, in JSON lines).
    pub position: String,
    pub kind: DlqKind,
    pub reason: String,
}

/// Maps every webhook of `input`, writing each event as one line to `events`. Returns the inputs
/// that would go to the dead-letter topic; the good ones are written all the same.
pub fn transform(
    input: &[u8],
    received_at: DateTime<Utc>,
    config: &MappingConfig,
    events: &mut impl Write,
) -> std::io::Result<Vec<BadInput>> {
    let mut bad = Vec::new();
    for (position, webhook) in split_input(input) {
        let result = match webhook {
            Ok(bytes) => map_webhook(bytes, received_at, config).map_err(|r| (r.kind, r.reason)),
            Err(reason) => Err((DlqKind::InvalidWebhook, reason)),
        };
        match result {
            Ok(event) => {
                events.write_all(&event.json)?;
                events.write_all(b"\n")?;
            }
            Err((kind, reason)) => bad.push(BadInput {
                position,
                kind,
                reason,
            }),
        }
    }
    events.flush()?;
    Ok(bad)
}

type Item<'a> = (String, Result<&'a [u8], String>);

/// Splits the input into webhooks, the way the receiver splits a request body: an array gives
/// its elements' exact bytes. Text that is not one JSON value is read as JSON lines.
fn split_input(input: &[u8]) -> Vec<Item<'_>> {
    let text = match std::str::from_utf8(input) {
        Ok(text) => text.trim(),
        // Invalid UTF-8 may sit on one line only: let each line be judged on its own.
        Err(_) => return split_lines(input),
    };

    if text.starts_with('[') {
        return match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| (format!("item {}", index + 1), Ok(item.get().as_bytes())))
                .collect(),
            Err(error) => vec![(
                "input".to_string(),
                Err(format!("The input is not a valid JSON array: {error}.")),
            )],
        };
    }
    if serde_json::from_str::<&RawValue>(text).is_ok() {
        return vec![("input".to_string(), Ok(text.as_bytes()))];
    }
    split_lines(input)
}

fn split_lines(input: &[u8]) -> Vec<Item<'_>> {
    input
        .split(|&byte| byte == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.trim_ascii().is_empty())
        .map(|(index, line)| (format!("line {}", index + 1), Ok(line.trim_ascii())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> (Vec<serde_json::Value>, Vec<BadInput>) {
        let mut out = Vec::new();
        let received_at = DateTime::parse_from_rfc3339("2025-12-04T13:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let bad = transform(
            input.as_bytes(),
            received_at,
            &MappingConfig::default(),
            &mut out,
        )
        .unwrap();
        let events = out
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).unwrap())
            .collect();
        (events, bad)
    }

    #[test]
    fn single_object_gives_one_event() {
        let (events, bad) = run("\n{\"type\":\"wallet_update\",\"userId\":\"u1\"}\n");
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0]["messageId"],
            "gwen-2698c74c5c62248f2485ee35f420b758"
        );
        assert!(bad.is_empty());
    }

    #[test]
    fn array_reports_bad_items_by_position() {
        let (events, bad) =
            run(r#"[{"type":"wallet_update","userId":"u1"}, 5, {"type":"mission_update"}]"#);
        assert_eq!(events.len(), 1);
        assert_eq!(bad.len(), 2);
        assert_eq!(
            (bad[0].position.as_str(), bad[0].kind),
            ("item 2", DlqKind::InvalidWebhook)
        );
        assert_eq!(
            (bad[1].position.as_str(), bad[1].kind),
            ("item 3", DlqKind::MissingUserId)
        );
    }

    #[test]
    fn json_lines_keep_going_after_bad_line() {
        let input = "{\"type\":\"wallet_update\",\"userId\":\"u1\"}\nnot json\n\n{\"type\":\"mission_update\",\"userId\":7}\n";
        let (events, bad) = run(input);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1]["userId"], "7");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].position, "line 2");
        assert_eq!(bad[0].kind, DlqKind::InvalidWebhook);
    }

    #[test]
    fn broken_array_is_one_bad_input() {
        let (events, bad) = run(r#"[{"type":"wallet_update","userId":"u1"},"#);
        assert!(events.is_empty());
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].position, "input");
    }

    #[test]
    fn invalid_utf8_line_reported_alone() {
        let mut input = b"{\"type\":\"wallet_update\",\"userId\":\"u1\"}\n".to_vec();
        input.extend_from_slice(b"{\"type\":\"a\xff\"}\n");
        let mut out = Vec::new();
        let bad = transform(&input, Utc::now(), &MappingConfig::default(), &mut out).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].position, "line 2");
    }
}
