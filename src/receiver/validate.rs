//! Strict checks of one webhook's JSON beyond syntax: no duplicate keys, a bounded depth, and
//! strings that decode to Unicode (no lone surrogate escapes).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Deepest nesting of objects and arrays a webhook may have; the object itself is depth 1.
pub const MAX_JSON_DEPTH: usize = 64;

/// Checks `text`, which must be one JSON value. The error names the problem and where it is.
pub fn check_json(text: &str) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Checked { depth: 1 }
        .deserialize(&mut deserializer)
        .map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())
}

/// The members of a webhook that the receiver reads: `type` decoded, `userId` as written.
#[derive(Debug, Deserialize)]
pub struct WebhookHead<'a> {
    #[serde(rename = "type", borrow)]
    pub webhook_type: Option<Cow<'a, str>>,
    #[serde(rename = "userId", borrow)]
    pub user_id: Option<&'a RawValue>,
}

/// Checks `text`, which must be a JSON object, as `check_json` does and reads its `WebhookHead`
/// in the same pass.
///
/// Returns `None` when a check fails or `type` is neither a string nor null. It also returns
/// `None` for an object with the key that `arbitrary_precision` reserves for numbers, which
/// `check_json` treats specially. The caller then runs `check_json` and a `WebhookHead` parse to
/// word the error.
pub fn check_webhook(text: &str) -> Option<WebhookHead<'_>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let head = deserializer.deserialize_map(HeadVisitor).ok()?;
    deserializer.end().ok()?;
    Some(head)
}

/// Visits the webhook object: checks every member, and keeps `type` and `userId`.
struct HeadVisitor;

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = WebhookHead<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WebhookHead<'de>, A::Error> {
        let members = Checked { depth: 1 }.members()?;
        let mut head = WebhookHead {
            webhook_type: None,
            user_id: None,
        };
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == NUMBER_TOKEN {
                return Err(de::Error::custom("reserved key"));
            }
            if keys.contains(&key) {
                return Err(de::Error::custom("duplicate key"));
            }

            match key.as_ref() {
                "type" => {
                    let raw: &'de RawValue = map.next_value()?;
                    check_member(raw, members).map_err(de::Error::custom)?;
                    head.webhook_type =
                        serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
                }
                "userId" => {
                    let raw: &'de RawValue = map.next_value()?;
                    check_member(raw, members).map_err(de::Error::custom)?;
                    // A derived `Option<&RawValue>` field reads `null` as no value, too.
                    head.user_id = (raw.get() != "null").then_some(raw);
                }
                _ => map.next_value_seed(members)?,
            }
            keys.push(key);
        }
        Ok(head)
    }
}

/// Checks a member of the webhook, taken as raw text, at the depth of the webhook's members.
fn check_member(raw: &RawValue, members: Checked) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    members.deserialize(&mut deserializer)?;
    deserializer.end()
}

/// Visits a value at `depth`, failing on duplicate keys, excess depth and undecodable strings.
#[derive(Clone, Copy)]
struct Checked {
    depth: usize,
}

impl Checked {
    /// The seed for the members of the object or array being visited.
    fn members<E: de::Error>(self) -> Result<Checked, E> {
        if self.depth > MAX_JSON_DEPTH {
            return Err(E::custom(format_args!(
                "nesting deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        Ok(Checked {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    // serde_json hands strings over decoded, which fails on lone surrogate escapes.
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let element = self.members()?;
        while seq.next_element_seed(element)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            // With `arbitrary_precision`, serde_json presents a number as a one-entry map under
            // this key, so numbers of any size and precision pass unparsed.
            if keys.is_empty() && key == NUMBER_TOKEN {
                let digits: Cow<'de, str> = map.next_value()?;
                return match map.next_key::<Cow<'de, str>>()? {
                    None => Ok(()),
                    Some(_) => Err(de::Error::custom(format_args!(
                        "invalid use of the key {NUMBER_TOKEN:?} ({digits})"
                    ))),
                };
            }
            if keys.contains(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            map.next_value_seed(self.members()?)?;
            keys.push(key);
        }
        Ok(())
    }
}

/// The key serde_json's `arbitrary_precision` feature uses for numbers.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_json_passes() {
        assert_eq!(
            check_json(
                r#"{"a":[1,{"b":"\u00e9\ud83d\ude00"}],"c":null,"d":1e400,"e":123456789012345678901234567890}"#
            ),
            Ok(())
        );
    }

    #[test]
    fn duplicate_keys_rejected_at_any_depth() {
        assert!(
            check_json(r#"{"a":1,"a":2}"#)
                .unwrap_err()
                .contains("duplicate key \"a\"")
        );
        assert!(
            check_json(r#"{"x":{"b":1,"b":1}}"#)
                .unwrap_err()
                .contains("duplicate key")
        );
        assert!(
            check_json(r#"{"a":1,"\u0061":2}"#)
                .unwrap_err()
                .contains("duplicate key")
        );
    }

    #[test]
    fn lone_surrogates_rejected() {
        assert!(check_json(r#"{"a":"\ud800"}"#).is_err());
        assert!(check_json(r#"{"\udc00":1}"#).is_err());
    }

    /// Returns `type` and `userId` as `check_json` and then a `WebhookHead` parse read them.
    fn head_checked_separately(text: &str) -> Option<(Option<String>, Option<String>)> {
        check_json(text).ok()?;
        let head: WebhookHead = serde_json::from_str(text).ok()?;
        Some(summary(head))
    }

    fn summary(head: WebhookHead) -> (Option<String>, Option<String>) {
        (
            head.webhook_type.map(Cow::into_owned),
            head.user_id.map(|raw| raw.get().to_string()),
        )
    }

    fn assert_same_as_separate_checks(text: &str) {
        let separately = head_checked_separately(text);
        match check_webhook(text) {
            Some(head) => assert_eq!(Some(summary(head)), separately, "for {text}"),
            // The caller leaves objects with the reserved number key to the separate checks.
            None if text.contains(NUMBER_TOKEN) => {}
            None => assert_eq!(separately, None, "for {text}"),
        }
    }

    #[test]
    fn webhook_head_read_in_check_pass() {
        let head = check_webhook(r#"{"x":[1],"type":"a\u0062","userId":42}"#).unwrap();
        assert_eq!(head.webhook_type.as_deref(), Some("ab"));
        assert_eq!(head.user_id.map(RawValue::get), Some("42"));
    }

    #[test]
    fn webhook_head_matches_separate_checks() {
        let deep = format!(
            r#"{{"type":"a","userId":{}1{}}}"#,
            "[".repeat(MAX_JSON_DEPTH - 1),
            "]".repeat(MAX_JSON_DEPTH - 1)
        );
        let too_deep = format!(
            r#"{{"type":"a","userId":{}1{}}}"#,
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        let cases = [
            r#"{"type":"a","userId":"u1"}"#,
            r#"{ "type" : "a" , "userId" : 1.5E3 , "n" : null }"#,
            r#"{"type":null,"userId":null}"#,
            r#"{"type":5,"userId":"u1"}"#,
            r#"{"type":"a","type":"b"}"#,
            r#"{"type":"a","\u0074ype":"b"}"#,
            r#"{"type":"a","userId":"u1","userId":"u2"}"#,
            r#"{"type":"\ud800"}"#,
            r#"{"type":"a","userId":{"k":1,"k":2}}"#,
            r#"{"type":"a","userId":["\udc00"]}"#,
            r#"{"type":"a","x":{"y":"\ud83d\ude00"}}"#,
            r#"{"type":"a","$serde_json::private::Number":"1"}"#,
            r#"{"type":["a"]}"#,
            deep.as_str(),
            too_deep.as_str(),
        ];
        for text in cases {
            assert_same_as_separate_checks(text);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3_000))]

        #[test]
        fn token_soup_head_matches_separate_checks(
            tokens in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "[", "]", ":", ",", " ", r#""type""#, r#""userId""#, r#""x""#,
                    r#""a""#, r#""""#, r#""\ud800""#, r#""\ud83d\ude00""#, r#""\u0074ype""#,
                    "0", "-1.50E3", "null", "true",
                ]),
                0..20,
            )
        ) {
            let text = format!("{{{}", tokens.concat());
            // Only syntactically valid objects reach the check, after the body is split.
            if serde_json::from_str::<&RawValue>(&text).is_ok() {
                assert_same_as_separate_checks(&text);
            }
        }
    }

    #[test]
    fn depth_limit_enforced() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(check_json(&nested(MAX_JSON_DEPTH)), Ok(()));
        let innermost_number = format!(
            "{}1{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert_eq!(check_json(&innermost_number), Ok(()));
        assert!(
            check_json(&nested(MAX_JSON_DEPTH + 1))
                .unwrap_err()
                .contains("nesting deeper")
        );
    }
}
