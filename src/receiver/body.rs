//! Splits a webhook request body into records: one per JSON object, as its exact bytes.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::validate::{WebhookHead, check_json, check_webhook};

/// One webhook of a request: its bytes as received and the Kafka key taken from `userId`.
#[derive(Debug)]
pub struct Record<'a> {
    pub bytes: &'a [u8],
    pub key: Option<Cow<'a, str>>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Invalid(String),
    #[error("webhook {index} is {size} bytes, over --max-record-bytes ({limit})")]
    RecordTooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
}

/// Splits and checks a body: one JSON object or an array of them, each with a non-empty string
/// `type`. Any failure rejects the whole body, so nothing of a bad request is produced.
pub fn split_records(body: &[u8], max_record_bytes: usize) -> Result<Vec<Record<'_>>, BodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| BodyError::Invalid(format!("the body is not valid UTF-8: {e}")))?;
    let text = text.trim_matches([' ', '\t', '\n', '\r']);

    let objects: Vec<&RawValue> = match text.as_bytes().first() {
        Some(b'{') => vec![parse_json(text)?],
        Some(b'[') => parse_json(text)?,
        Some(_) => {
            return Err(BodyError::Invalid(
                "the body must be a JSON object or an array of objects".into(),
            ));
        }
        None => return Err(BodyError::Invalid("the body is empty".into())),
    };
    if objects.is_empty() {
        return Err(BodyError::Invalid("the array contains no webhooks".into()));
    }

    objects
        .into_iter()
        .enumerate()
        .map(|(index, object)| check_record(index, object, max_record_bytes))
        .collect()
}

fn parse_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, BodyError> {
    serde_json::from_str(text)
        .map_err(|e| BodyError::Invalid(format!("the body is not valid JSON: {e}")))
}

fn check_record(
    index: usize,
    object: &RawValue,
    max_record_bytes: usize,
) -> Result<Record<'_>, BodyError> {
    let text = object.get();
    if !text.starts_with('{') {
        return Err(BodyError::Invalid(format!(
            "webhook {index} is not a JSON object"
        )));
    }
    if text.len() > max_record_bytes {
        return Err(BodyError::RecordTooLarge {
            index,
            size: text.len(),
            limit: max_record_bytes,
        });
    }

    let head = match check_webhook(text) {
        Some(head) => head,
        None => check_separately(index, text)?,
    };
    if head.webhook_type.as_deref().is_none_or(str::is_empty) {
        return Err(BodyError::Invalid(format!(
            "webhook {index} has no `type`: a non-empty string is required"
        )));
    }

    Ok(Record {
        bytes: text.as_bytes(),
        key: record_key(head.user_id),
    })
}

/// Runs the checks of `check_webhook` one after the other, so the error names the first problem
/// in a fixed order, with strict JSON before the `type` and `userId` fields.
fn check_separately(index: usize, text: &str) -> Result<WebhookHead<'_>, BodyError> {
    check_json(text).map_err(|e| BodyError::Invalid(format!("webhook {index} is invalid: {e}")))?;
    serde_json::from_str(text).map_err(|e| {
        BodyError::Invalid(format!("webhook {index} is not a valid GWEN webhook: {e}"))
    })
}

/// Derives the Kafka key: `userId` as a string, a number as its decimal text, none when absent.
fn record_key(user_id: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let text = user_id?.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<str>>(text)
            .ok()
            .filter(|key| !key.is_empty()),
        b'-' | b'0'..=b'9' => Some(crate::mapping::decimal_text(text)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 900_000;

    fn keys(body: &str) -> Vec<Option<String>> {
        split_records(body.as_bytes(), LIMIT)
            .unwrap()
            .into_iter()
            .map(|r| r.key.map(Cow::into_owned))
            .collect()
    }

    #[test]
    fn single_object_is_one_record_without_whitespace() {
        let records = split_records(b" {\"type\":\"a\",\"userId\":\"u1\"}\n", LIMIT).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].bytes, br#"{"type":"a","userId":"u1"}"#);
    }

    #[test]
    fn array_gives_each_object_span() {
        let records = split_records(
            b"[ {\"type\":\"a\"} ,\n{\"type\":\"b\", \"x\": [1, 2]}]",
            LIMIT,
        )
        .unwrap();
        let spans: Vec<&[u8]> = records.iter().map(|r| r.bytes).collect();
        assert_eq!(
            spans,
            vec![
                br#"{"type":"a"}"#.as_slice(),
                br#"{"type":"b", "x": [1, 2]}"#.as_slice()
            ]
        );
    }

    #[test]
    fn user_id_becomes_key() {
        let body = r#"[{"type":"a","userId":"u\u0031"},{"type":"a","userId":42},{"type":"a"},{"type":"a","userId":""},{"type":"a","userId":null},{"type":"a","userId":2.5e1}]"#;
        assert_eq!(
            keys(body),
            vec![
                Some("u1".into()),
                Some("42".into()),
                None,
                None,
                None,
                Some("25".into())
            ]
        );
    }

    #[test]
    fn invalid_bodies_rejected() {
        for body in [
            "",
            "  ",
            "not json",
            "42",
            "\"text\"",
            "[]",
            "[1]",
            r#"[{"type":"a"}, 2]"#,
            r#"{"type":"a""#,
            r#"{"userId":"u1"}"#,
            r#"{"type":"","userId":"u1"}"#,
            r#"{"type":5}"#,
            r#"{"type":"a"} {"type":"b"}"#,
        ] {
            assert!(
                matches!(
                    split_records(body.as_bytes(), LIMIT),
                    Err(BodyError::Invalid(_))
                ),
                "body {body:?} was accepted"
            );
        }
    }

    #[test]
    fn invalid_utf8_rejected() {
        assert!(matches!(
            split_records(b"{\"type\":\"\xff\"}", LIMIT),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn lone_surrogate_escape_rejected() {
        let body = r#"{"type":"a","name":"\ud800"}"#;
        assert!(matches!(
            split_records(body.as_bytes(), LIMIT),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn duplicate_keys_rejected() {
        let body = r#"[{"type":"a"},{"type":"a","userId":"u1","userId":"u2"}]"#;
        let error = split_records(body.as_bytes(), LIMIT).unwrap_err();
        assert!(
            error.to_string().contains("webhook 1") && error.to_string().contains("duplicate key"),
            "{error}"
        );
    }

    #[test]
    fn deep_nesting_rejected() {
        let body = format!(
            r#"{{"type":"a","state":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(matches!(
            split_records(body.as_bytes(), LIMIT),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn number_token_key_checked_separately() {
        let later = r#"{"type":"a","$serde_json::private::Number":"1"}"#;
        assert_eq!(split_records(later.as_bytes(), LIMIT).unwrap().len(), 1);

        let first = r#"{"$serde_json::private::Number":"1","type":"a"}"#;
        let error = split_records(first.as_bytes(), LIMIT).unwrap_err();
        assert!(
            error.to_string().contains("invalid use of the key"),
            "{error}"
        );
    }

    #[test]
    fn oversized_record_named() {
        let body = format!(
            r#"[{{"type":"a"}},{{"type":"a","pad":"{}"}}]"#,
            "x".repeat(100)
        );
        let error = split_records(body.as_bytes(), 50).unwrap_err();
        assert!(
            matches!(error, BodyError::RecordTooLarge { index: 1, .. }),
            "{error:?}"
        );
    }
}
