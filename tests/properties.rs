//! Property tests over the receiver's body split, the mapping and `transform`: a fuzz run bounded
//! so that this file finishes in CI within about 20 s in a debug build.
//!
//! Set `PROPTEST_CASES` for a longer run; it then replaces every case count below. Failing
//! inputs are saved by proptest next to this file for replay.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use gwen_segment::mapping::{DlqKind, MAX_EVENT_BYTES, MappingConfig, map_webhook, message_id};
use gwen_segment::receiver::split_records;
use gwen_segment::transform::transform;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde::Deserialize;
use serde_json::value::RawValue;

const MAX_RECORD_BYTES: usize = 900_000;

/// Returns a proptest configuration with `cases` cases, unless `PROPTEST_CASES` is set.
/// Shrinking a failure stops after 10 s, so a failing run also ends in bounded time.
fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.max_shrink_time = 10_000;
    config
}

fn received_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-12-04T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

// --- JSON text generators ---------------------------------------------------------------------
//
// The generators build JSON as text, not as serde_json values, so that the tests see what a
// sender may really send: escapes in any style, whitespace between tokens, and numbers that no
// Rust number type holds.

/// Generates whitespace between JSON tokens. JSON lines input must not contain a line feed.
fn whitespace(line_feeds: bool) -> impl Strategy<Value = &'static str> + Clone {
    let mut choices = vec!["", "", "", " ", "\t", "  "];
    if line_feeds {
        choices.extend(["\n", "\r\n", "\n    "]);
    }
    select(choices)
}

/// Writes `decoded` as a JSON string literal. For each character, `styles` picks the raw
/// character, a `\uXXXX` escape (a surrogate pair beyond U+FFFF) or a short escape such as `\n`.
/// Characters that JSON forbids raw are always escaped.
fn encode_string(decoded: &str, styles: &[u8]) -> String {
    let mut text = String::from("\"");
    for (index, character) in decoded.chars().enumerate() {
        let style = styles
            .get(index % styles.len().max(1))
            .copied()
            .unwrap_or(0);
        let short = match character {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = matches!(character, '"' | '\\') || u32::from(character) < 0x20;
        match (style % 3, short) {
            (0, _) if !must_escape => text.push(character),
            (2, Some(short)) => text.push_str(short),
            _ => {
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    text.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    text.push('"');
    text
}

/// Generates a string literal with any Unicode scalar values, as (decoded value, JSON text).
fn string_literal(max_chars: usize) -> impl Strategy<Value = (String, String)> {
    (vec(any::<char>(), 0..max_chars), vec(any::<u8>(), 1..8)).prop_map(|(chars, styles)| {
        let decoded: String = chars.into_iter().collect();
        let text = encode_string(&decoded, &styles);
        (decoded, text)
    })
}

/// Generates numbers as JSON text, including integers beyond i64 and u64 and decimals with more
/// digits than an f64 can represent.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{19,60}",
        "-?(0|[1-9][0-9]{0,20})\\.[0-9]{1,40}",
        "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,25})?[eE][+-]?[0-9]{1,3}",
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |n| n.is_finite())
            .prop_map(|n| format!("{n:?}")),
    ]
}

/// One generated JSON value: its text with whitespace between tokens, and the same value with
/// that whitespace left out, which is what the mapping puts in `properties`.
#[derive(Debug, Clone)]
struct JsonText {
    text: String,
    compact: String,
}

impl JsonText {
    /// Makes a value that has no whitespace between tokens, such as a number or a string.
    fn token(text: String) -> Self {
        JsonText {
            compact: text.clone(),
            text,
        }
    }
}

/// Generates any JSON value, nested up to 4 levels below the webhook object. Object keys are
/// unique by their decoded value, because the receiver rejects duplicate keys.
fn json_value(line_feeds: bool) -> impl Strategy<Value = JsonText> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        number_text(),
        string_literal(12).prop_map(|(_, text)| text),
    ]
    .prop_map(JsonText::token);
    leaf.prop_recursive(4, 48, 6, move |inner| {
        let ws = whitespace(line_feeds);
        prop_oneof![
            vec((inner.clone(), ws.clone(), ws.clone()), 0..6).prop_map(|items| {
                let text: Vec<String> = items
                    .iter()
                    .map(|(value, before, after)| format!("{before}{}{after}", value.text))
                    .collect();
                let compact: Vec<&str> = items
                    .iter()
                    .map(|(value, ..)| value.compact.as_str())
                    .collect();
                JsonText {
                    text: format!("[{}]", text.join(",")),
                    compact: format!("[{}]", compact.join(",")),
                }
            }),
            btree_map(key_chars(), (vec(any::<u8>(), 1..4), inner, ws), 0..6).prop_map(|members| {
                let mut text = Vec::new();
                let mut compact = Vec::new();
                for (key, (styles, value, space)) in members {
                    let key = encode_string(&key, &styles);
                    text.push(format!("{space}{key}{space}:{space}{}", value.text));
                    compact.push(format!("{key}:{}", value.compact));
                }
                JsonText {
                    text: format!("{{{}}}", text.join(",")),
                    compact: format!("{{{}}}", compact.join(",")),
                }
            }),
        ]
    })
}

fn key_chars() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_]{0,10}",
        vec(any::<char>(), 0..6).prop_map(|chars| chars.into_iter().collect()),
    ]
}

/// Generates a webhook `type` that names an event: a documented type, made-up words with
/// separators, or arbitrary text that ends in a letter, so it has at least one word.
fn webhook_type() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "achievement_update",
            "progression_update",
            "mission_update",
            "shop_item_update",
            "wallet_update",
            "webhook_verification",
            "Wallet-Update",
        ])
        .prop_map(str::to_string),
        "[A-Za-z][A-Za-z0-9]{0,8}([_ -]{1,2}[A-Za-z0-9]{1,8}){0,3}",
        (vec(any::<char>(), 0..8), "[a-zA-Zà-ö]").prop_map(|(chars, letter)| {
            let mut text: String = chars.into_iter().collect();
            text.push_str(&letter);
            text
        }),
    ]
}

/// Generates a usable `userId`, as (the Segment userId it gives, JSON text).
fn user_id() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        string_literal(16).prop_filter("userId must not be empty", |(decoded, _)| {
            !decoded.is_empty()
        }),
        any::<i64>().prop_map(|n| (n.to_string(), n.to_string())),
        "-?[1-9][0-9]{19,40}".prop_map(|n| (n.clone(), n)),
    ]
}

/// Generates a `timestamp` field value: absent, a plausible time, or any JSON value.
fn timestamp(line_feeds: bool) -> impl Strategy<Value = Option<JsonText>> {
    prop_oneof![
        Just(None),
        (1_600_000_000i64..1_800_000_000).prop_map(|s| Some(JsonText::token(s.to_string()))),
        (1_600_000_000_000i64..1_800_000_000_000)
            .prop_map(|ms| Some(JsonText::token(format!("\"{ms}\"")))),
        Just(Some(JsonText::token(
            "\"2025-12-04T14:30:00.5+01:00\"".to_string()
        ))),
        json_value(line_feeds).prop_map(Some),
    ]
}

/// One generated webhook: its exact JSON text, the same without whitespace between tokens, and
/// the Segment userId it should give.
#[derive(Debug, Clone)]
struct Webhook {
    text: String,
    compact: String,
    user_id: String,
}

/// Generates a webhook object with a usable `type` and `userId` and extra fields of any JSON value,
/// in any order. With `padding`, one webhook in eight also gets a string field that brings its
/// event near Segment's 32 000-byte limit.
fn webhook(line_feeds: bool, padding: bool) -> impl Strategy<Value = Webhook> {
    let pad_lengths = if padding {
        prop_oneof![7 => Just(0usize), 1 => 31_400usize..32_400].boxed()
    } else {
        Just(0usize).boxed()
    };
    (
        (webhook_type(), vec(any::<u8>(), 1..4)),
        user_id(),
        timestamp(line_feeds),
        btree_map(key_chars(), json_value(line_feeds), 0..6),
        pad_lengths,
        whitespace(line_feeds),
    )
        .prop_flat_map(
            move |((kind, styles), (user_id, user_id_text), timestamp, extra, pad, space)| {
                // Each field as (text, compact text).
                let kind = encode_string(&kind, &styles);
                let mut fields = vec![
                    (
                        format!("\"type\"{space}:{space}{kind}"),
                        format!("\"type\":{kind}"),
                    ),
                    (
                        format!("\"userId\":{space}{user_id_text}"),
                        format!("\"userId\":{user_id_text}"),
                    ),
                ];
                if let Some(timestamp) = timestamp {
                    fields.push((
                        format!("\"timestamp\":{}", timestamp.text),
                        format!("\"timestamp\":{}", timestamp.compact),
                    ));
                }
                if pad > 0 {
                    let pad = format!("\"pad\":\"{}\"", "x".repeat(pad));
                    fields.push((pad.clone(), pad));
                }
                for (key, value) in extra {
                    if !matches!(key.as_str(), "type" | "userId" | "timestamp" | "pad") {
                        let key = encode_string(&key, &[0]);
                        fields.push((
                            format!("{key}:{}", value.text),
                            format!("{key}:{}", value.compact),
                        ));
                    }
                }
                (Just(fields).prop_shuffle(), Just(user_id), Just(space))
            },
        )
        .prop_map(|(fields, user_id, space)| {
            let text: Vec<&str> = fields.iter().map(|(text, _)| text.as_str()).collect();
            let compact: Vec<&str> = fields.iter().map(|(_, compact)| compact.as_str()).collect();
            Webhook {
                text: format!("{{{space}{}{space}}}", text.join(&format!(",{space}"))),
                compact: format!("{{{}}}", compact.join(",")),
                user_id,
            }
        })
}

/// The parts of a mapped event that the properties compare; `properties` stays raw text.
#[derive(Deserialize)]
struct EventParts<'a> {
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(borrow)]
    properties: &'a RawValue,
}

// --- (a) Arbitrary input never panics ---------------------------------------------------------

/// Generates bytes from JSON's alphabet, so that the parsers get past their first byte more often
/// than with uniformly random bytes.
fn json_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(
        select(b"{}[]\":,\\ \n0123456789.eE+-tfnrulasuxyzAF\xff\xc3\xa9".to_vec()),
        0..200,
    )
}

/// Generates a valid webhook with one byte deleted, inserted or replaced.
fn damaged_webhook() -> impl Strategy<Value = Vec<u8>> {
    (
        webhook(true, false),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..3u8,
    )
        .prop_map(|(webhook, index, byte, damage)| {
            let mut bytes = webhook.text.into_bytes();
            let at = index.index(bytes.len());
            match damage {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, byte),
                _ => bytes[at] = byte,
            }
            bytes
        })
}

/// Runs both entry points on `input` and checks what holds for any input: accepted records are
/// spans of the body, and an accepted webhook gives an event within Segment's size limit.
fn check_any_input(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(records) = split_records(input, MAX_RECORD_BYTES) {
        prop_assert!(!records.is_empty());
        for record in records {
            let start = (record.bytes.as_ptr() as usize).checked_sub(input.as_ptr() as usize);
            prop_assert!(
                start.is_some_and(|start| start + record.bytes.len() <= input.len()),
                "a record is not a span of the body"
            );
            prop_assert_eq!(record.bytes.first(), Some(&b'{'));
            prop_assert_eq!(record.bytes.last(), Some(&b'}'));
        }
    }

    let config = MappingConfig::default();
    if let Ok(event) = map_webhook(input, received_at(), &config) {
        prop_assert!(event.json.len() <= MAX_EVENT_BYTES);
        let parts: EventParts = serde_json::from_slice(&event.json)
            .map_err(|e| TestCaseError::fail(format!("the event is not JSON: {e}")))?;
        prop_assert_eq!(parts.message_id, event.message_id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn arbitrary_bytes_never_panic(input in vec(any::<u8>(), 0..300)) {
        check_any_input(&input)?;
    }

    #[test]
    fn json_like_bytes_never_panic(input in json_like_bytes()) {
        check_any_input(&input)?;
    }
}

proptest! {
    #![proptest_config(config(1_500))]

    #[test]
    fn damaged_webhooks_never_panic(input in damaged_webhook()) {
        check_any_input(&input)?;
    }
}

// --- (b) Valid webhooks are accepted and mapped with every value kept -------------------------

proptest! {
    #![proptest_config(config(1_500))]

    #[test]
    fn valid_webhook_accepted_and_mapped(
        webhook in webhook(true, true),
        outer in whitespace(true),
    ) {
        let bytes = webhook.text.as_bytes();

        // The receiver accepts the webhook alone, with whitespace around it, and in an array.
        let body = format!("{outer}{}{outer}", webhook.text);
        let records = split_records(body.as_bytes(), MAX_RECORD_BYTES)
            .map_err(|e| {
                TestCaseError::fail(format!("the receiver rejects {}: {e}", webhook.text))
            })?;
        prop_assert_eq!(records.len(), 1);
        prop_assert_eq!(records[0].bytes, bytes);
        prop_assert_eq!(records[0].key.as_deref(), Some(webhook.user_id.as_str()));

        let array = format!("[{outer}{}{outer},{}]", webhook.text, webhook.text);
        let records = split_records(array.as_bytes(), MAX_RECORD_BYTES)
            .map_err(|e| {
                let message = format!("the receiver rejects an array of {}: {e}", webhook.text);
                TestCaseError::fail(message)
            })?;
        prop_assert_eq!(records.len(), 2);
        prop_assert_eq!(records[0].bytes, bytes);
        prop_assert_eq!(records[1].bytes, bytes);

        // The forwarder maps it, or dead-letters it only for its size.
        match map_webhook(bytes, received_at(), &MappingConfig::default()) {
            Ok(event) => {
                prop_assert!(event.json.len() <= MAX_EVENT_BYTES);
                let parts: EventParts = serde_json::from_slice(&event.json)
                    .map_err(|e| TestCaseError::fail(format!("the event is not JSON: {e}")))?;
                // Whitespace between tokens goes, so the event stays on one line; every string
                // and number is kept byte for byte.
                prop_assert_eq!(parts.properties.get(), webhook.compact.as_str());
                prop_assert_eq!(&parts.message_id, &message_id("", bytes));
                prop_assert_eq!(&event.message_id, &parts.message_id);
                prop_assert_eq!(&parts.user_id, &webhook.user_id);
            }
            Err(rejection) => {
                prop_assert_eq!(rejection.kind, DlqKind::EventTooLarge, "{}", rejection.reason);
                // The event's other fields take well under 1 000 bytes for these webhooks, so only
                // a webhook near the limit may give an event over it.
                prop_assert!(bytes.len() > MAX_EVENT_BYTES - 1_000, "{}", rejection.reason);
            }
        }
    }
}

// --- (c) transform prints one line per good input ---------------------------------------------

/// One line of a JSON lines input: a generated webhook or an input the forwarder dead-letters.
#[derive(Debug, Clone)]
enum Line {
    Good(Webhook),
    Bad(&'static str, DlqKind),
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        4 => webhook(false, false).prop_map(Line::Good),
        1 => select(vec![
            (r#"{"type":"wallet_update"}"#, DlqKind::MissingUserId),
            (r#"{"type":"wallet_update","userId":""}"#, DlqKind::MissingUserId),
            (r#"{"type":"wallet_update","userId":null}"#, DlqKind::MissingUserId),
            (r#"{"type":"wallet_update","userId":true}"#, DlqKind::InvalidWebhook),
            (r#"{"type":" _-","userId":"u1"}"#, DlqKind::InvalidWebhook),
            (r#"{"type":"wallet_update","userId":"u1""#, DlqKind::InvalidWebhook),
            ("not json", DlqKind::InvalidWebhook),
            ("42", DlqKind::InvalidWebhook),
        ])
        .prop_map(|(text, kind)| Line::Bad(text, kind)),
    ]
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn transform_prints_line_per_good_input(
        lines in vec(line(), 2..8),
        separator in select(vec!["\n", "\r\n", "\n\n"]),
    ) {
        let texts: Vec<&str> = lines
            .iter()
            .map(|line| match line {
                Line::Good(webhook) => webhook.text.as_str(),
                Line::Bad(text, _) => text,
            })
            .collect();
        let input = texts.join(separator);

        let mut output = Vec::new();
        let bad = transform(input.as_bytes(), received_at(), &MappingConfig::default(), &mut output)
            .map_err(|e| TestCaseError::fail(format!("transform failed: {e}")))?;
        let output = String::from_utf8(output)
            .map_err(|e| TestCaseError::fail(format!("the output is not UTF-8: {e}")))?;
        let printed: Vec<&str> = output.split_terminator('\n').collect();

        let good: Vec<&Webhook> = lines
            .iter()
            .filter_map(|line| match line {
                Line::Good(webhook) => Some(webhook),
                Line::Bad(..) => None,
            })
            .collect();
        prop_assert_eq!(printed.len(), good.len(), "output:\n{}", output);
        for (event, webhook) in printed.iter().zip(&good) {
            let parts: EventParts = serde_json::from_str(event)
                .map_err(|e| TestCaseError::fail(format!("output line is not JSON: {e}")))?;
            prop_assert_eq!(parts.properties.get(), webhook.compact.as_str());
            prop_assert_eq!(&parts.message_id, &message_id("", webhook.text.as_bytes()));
        }

        let expected_bad: Vec<(String, DlqKind)> = lines
            .iter()
            .enumerate()
            .filter_map(|(index, line)| match line {
                Line::Bad(_, kind) => Some((index, *kind)),
                Line::Good(_) => None,
            })
            .map(|(index, kind)| {
                // Blank lines count: "\n\n" puts each input on every second line.
                let line_number = if separator == "\n\n" { 2 * index + 1 } else { index + 1 };
                (format!("line {line_number}"), kind)
            })
            .collect();
        let reported: Vec<(String, DlqKind)> =
            bad.into_iter().map(|input| (input.position, input.kind)).collect();
        prop_assert_eq!(reported, expected_bad);
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// `transform` promises one event per output line for every input form, an array included,
    /// whose webhooks may be pretty-printed over several lines.
    #[test]
    fn transform_prints_line_per_array_item(webhooks in vec(webhook(true, false), 1..5)) {
        let texts: Vec<&str> = webhooks.iter().map(|w| w.text.as_str()).collect();
        let input = format!("[\n{}\n]", texts.join(",\n"));

        let mut output = Vec::new();
        let bad = transform(input.as_bytes(), received_at(), &MappingConfig::default(), &mut output)
            .map_err(|e| TestCaseError::fail(format!("transform failed: {e}")))?;
        prop_assert!(bad.is_empty(), "{:?}", bad);
        let output = String::from_utf8(output)
            .map_err(|e| TestCaseError::fail(format!("the output is not UTF-8: {e}")))?;
        let printed: Vec<&str> = output.split_terminator('\n').collect();
        prop_assert_eq!(printed.len(), webhooks.len(), "output:\n{}", output);
        for (event, webhook) in printed.iter().zip(&webhooks) {
            let parts: EventParts = serde_json::from_str(event)
                .map_err(|e| TestCaseError::fail(format!("output line is not JSON: {e}")))?;
            prop_assert_eq!(parts.properties.get(), webhook.compact.as_str());
            prop_assert_eq!(&parts.message_id, &message_id("", webhook.text.as_bytes()));
        }
    }
}

/// Checks that the webhook generator adds extra fields, so that a generator bug that drops them
/// fails here instead of silently weakening the properties above.
#[test]
fn generator_makes_extra_fields() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = webhook(true, false);
    let mut webhooks_by_field_count: BTreeMap<usize, u32> = BTreeMap::new();
    for _ in 0..200 {
        let webhook = strategy.new_tree(&mut runner).unwrap().current();
        let fields: BTreeMap<String, &RawValue> = serde_json::from_str(&webhook.text)
            .unwrap_or_else(|e| {
                panic!(
                    "generated webhook is not a JSON object ({e}): {}",
                    webhook.text
                )
            });
        *webhooks_by_field_count
            .entry(fields.len().min(5))
            .or_default() += 1;
    }
    let with_extras: u32 = webhooks_by_field_count
        .iter()
        .filter(|&(&count, _)| count >= 4)
        .map(|(_, webhooks)| webhooks)
        .sum();
    assert!(
        with_extras >= 50,
        "too few generated webhooks have extra fields: {webhooks_by_field_count:?}"
    );
}

/// JSON puts no limit on the size of numbers, and the receiver keeps every digit, so numbers
/// beyond the range of f64 must pass as well.
#[test]
fn numbers_beyond_f64_range_kept() {
    let huge_integer = format!("9{}", "0".repeat(400));
    let webhook = format!(
        r#"{{"type":"wallet_update","userId":"u1","state":{{"exponent":1e400,"negative":-2.5E+999,"integer":{huge_integer},"small":1e-400}}}}"#
    );
    let bytes = webhook.as_bytes();

    let records = split_records(bytes, MAX_RECORD_BYTES)
        .unwrap_or_else(|e| panic!("the receiver rejects {webhook}: {e}"));
    assert_eq!(records[0].bytes, bytes);

    let event = map_webhook(bytes, received_at(), &MappingConfig::default())
        .unwrap_or_else(|r| panic!("the mapping rejects {webhook}: {}", r.reason));
    let parts: EventParts = serde_json::from_slice(&event.json).unwrap();
    assert_eq!(parts.properties.get(), webhook);
}

/// Checks that the padded webhooks reach both sides of Segment's event size limit, so that
/// `valid_webhook_accepted_and_mapped` tests the `event_too_large` path as well.
#[test]
fn generator_reaches_event_size_limit() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = webhook(true, true);
    let (mut mapped, mut too_large) = (0, 0);
    for _ in 0..300 {
        let webhook = strategy.new_tree(&mut runner).unwrap().current();
        match map_webhook(
            webhook.text.as_bytes(),
            received_at(),
            &MappingConfig::default(),
        ) {
            Ok(_) => mapped += 1,
            Err(rejection) if rejection.kind == DlqKind::EventTooLarge => too_large += 1,
            Err(rejection) => panic!("{} for {}", rejection.reason, webhook.text),
        }
    }
    assert!(
        too_large >= 5,
        "only {too_large} of 300 events are too large"
    );
    assert!(mapped >= 200, "only {mapped} of 300 events are mapped");
}

/// Checks that each generated webhook's compact text is the same JSON value as its text, so that
/// the expected `properties` in the tests above are right.
#[test]
fn generator_compact_text_same_value() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = webhook(true, false);
    for _ in 0..200 {
        let webhook = strategy.new_tree(&mut runner).unwrap().current();
        let value: serde_json::Value = serde_json::from_str(&webhook.text)
            .unwrap_or_else(|e| panic!("generated webhook is not JSON ({e}): {}", webhook.text));
        let compact: serde_json::Value = serde_json::from_str(&webhook.compact)
            .unwrap_or_else(|e| panic!("compact webhook is not JSON ({e}): {}", webhook.compact));
        assert_eq!(value, compact, "{}", webhook.text);
        assert!(
            !webhook.compact.contains(['\n', '\r', '\t']),
            "compact webhook has whitespace: {}",
            webhook.compact
        );
    }
}
